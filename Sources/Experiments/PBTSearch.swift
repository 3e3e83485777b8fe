import Foundation
import TensorCore
import _Support

/// Population-based training (Jaderberg et al. 2017), asynchronous as in the paper (`--search pbt --population N
/// --exploit-every E`).
///
/// N members, their settings drawn from the axes as a random search draws them, train E epochs at a time; each such
/// segment is a setting of the sweep (with `epochs` set to where it ends) that continues, from its last checkpoint
/// (parameters and optimizer state) and its epochs, the segment before it (`origin(ofSetting:)`). When a member's
/// segment has finished, the search ranks the members by their latest segment's score (the mean over seeds of the
/// last epoch's validation score; a diverged segment scores worst): a member in the bottom quarter copies a member of
/// the top quarter that is not done (exploit) and multiplies each of its numeric axes by 0.8 or 1.2, kept inside the
/// axis's range (explore); any other member goes on as it was. Every exploit is kept (`exploits`), and the sweep's
/// report draws each member's lineage. The state is Codable, in sweep.json: `--resume` continues the same population.
public struct PBTSearch: Searcher {
  public static let name = "pbt"
  public let axes: [SweepAxis]
  public let population: Int
  public let exploitEvery: Int
  /// The epochs of a whole member.
  public let epochs: Int
  /// The sweep's seeds per setting: a segment is finished when all of its trials are.
  public let seeds: Int
  public let seed: UInt64
  public private(set) var proposed = 0
  var rng: RandomSource
  /// Every segment proposed, by setting index.
  public private(set) var segments: [Segment] = []
  /// Each member's latest segment (an index into `segments`), nil before its first.
  var latest: [Int?]
  /// Members whose latest segment diverged or failed with no other member to copy: their lineage ends there.
  var ended: [Bool]
  public private(set) var exploits: [Exploit] = []

  /// One member's epochs (start, end] with its values, continuing segment `origin`.
  public struct Segment: Codable, Equatable, Sendable {
    public var member: Int
    public var origin: Int?
    public var start: Int
    public var end: Int
    /// The axes' values, (option, value) in axis order.
    public var values: [[String]]
  }

  /// A member that copied another: at `epoch`, `member` took `donor`'s checkpoint and values, then perturbed them.
  public struct Exploit: Codable, Equatable, Sendable {
    public var epoch: Int
    public var member: Int
    public var donor: Int
    public var memberScore: Double
    public var donorScore: Double
    /// The values it had, the donor's, and those it goes on with: (option, value).
    public var before: [[String]]
    public var donorValues: [[String]]
    public var after: [[String]]

    /// "lr 0.744 -> 0.144 -> 0.173, ...": each axis's value before, the donor's, and the new one.
    public var changes: String {
      zip(zip(before, donorValues), after).map { p, a in "\(p.0[0]) \(p.0[1]) -> \(p.1[1]) -> \(a[1])" }.joined(separator: ", ")
    }
  }

  /// What `--search pbt` needs beyond the axes: `Searchers.make` cannot build one.
  public init(axes: [SweepAxis], samples: Int?, seed: UInt64) throws { throw SweepProblem.pbtNeedsPopulation }

  public init(axes: [SweepAxis], population: Int, exploitEvery: Int, epochs: Int, seeds: Int = 1, seed: UInt64) throws {
    guard population >= 2, exploitEvery >= 1, exploitEvery < epochs else { throw SweepProblem.pbtNeedsPopulation }
    (self.axes, self.population, self.exploitEvery, self.epochs, self.seeds, self.seed) = (axes, population, exploitEvery, epochs, max(seeds, 1), seed)
    rng = RandomSource(seed: seed, stream: 0x9B7_5EED)
    latest = Array(repeating: nil, count: population)
    ended = Array(repeating: false, count: population)
  }

  /// Segments per member: the whole number of them is decided by the epochs, but a member that copies one ahead of it
  /// skips some, so the search decides as it goes.
  public var budget: Int? { nil }

  public func origin(ofSetting index: Int) -> Int? { segments.indices.contains(index) ? segments[index].origin : nil }

  /// Every segment before the last epoch: continued by a later one, or replaced by an exploit; the last segment of a
  /// member whose lineage ended keeps its own status (diverged, failed).
  public func supersededSettings(count: Int) -> [Int: String] {
    let origins = Set(segments.compactMap(\.origin))
    var out: [Int: String] = [:]
    for i in segments.indices.prefix(count) where segments[i].end < epochs {
      if origins.contains(i) { out[i] = "continued" } else if !(ended[segments[i].member] && latest[segments[i].member] == i) { out[i] = "replaced" }
    }
    return out
  }

  public mutating func next(history: [SearchResult]) -> [(String, String)]? {
    // The first generation: N members drawn at random.
    if let member = latest.firstIndex(where: { $0 == nil }) {
      let values = axes.map { ($0.option, TPESearch.random($0, &rng)) }
      return propose(Segment(member: member, origin: nil, start: 0, end: min(exploitEvery, epochs), values: values.map { [$0.0, $0.1] }))
    }
    let scores = Self.scores(history, seeds: seeds)
    // The members whose latest segment finished (the first finished first), not done: the first that can go on does.
    let ready = latest.indices.compactMap { m in latest[m].flatMap { s in !ended[m] && scores[s] != nil && segments[s].end < epochs ? s : nil } }
    for segment in ready.sorted() {
      if let values = continuation(of: segment, scores: scores) { return values }
      // It diverged or failed and nobody can be copied now: its lineage ends unless another member may still be.
      let member = segments[segment].member
      let mayDonate = latest.indices.contains { m in
        m != member && !ended[m] && (latest[m].map { scores[$0] == nil || (scores[$0]!.isFinite && segments[$0].end < epochs) } ?? true)
      }
      if !mayDonate { ended[member] = true }
    }
    return nil
  }

  /// The next segment of the member whose latest segment is `segment`; nil when that one diverged or failed (its end
  /// state is not there to go on from) and no other member can be copied.
  mutating func continuation(of segment: Int, scores: [Int: Double]) -> [(String, String)]? {
    let member = segments[segment].member
    // Rank the members by their latest finished segment's score.
    let standing: [(member: Int, segment: Int, score: Double)] = (0..<population).compactMap { m in
      guard let s = lastFinished(member: m, scores: scores) else { return nil }
      return (m, s, scores[s]!)
    }.sorted { ($0.score, -$0.member) > ($1.score, -$1.member) }
    let quarter = max(1, population / 4)
    let bottom = standing.suffix(quarter).contains { $0.member == member } && standing.count == population
    var donors = standing.prefix(quarter).filter { $0.member != member && segments[$0.segment].end < epochs }
    let broken = scores[segment]! == -.infinity
    if broken && donors.isEmpty {
      donors = standing.filter { $0.member != member && $0.score.isFinite && segments[$0.segment].end < epochs }
      if donors.isEmpty { return nil }
    }
    if bottom || broken, !donors.isEmpty {
      let donor = donors[rng.index(below: donors.count)]
      let from = segments[donor.segment]
      let values = perturbed(from.values)
      exploits.append(Exploit(epoch: segments[segment].end, member: member, donor: donor.member, memberScore: scores[segment]!,
                              donorScore: donor.score, before: segments[segment].values, donorValues: from.values, after: values))
      return propose(Segment(member: member, origin: donor.segment, start: from.end, end: min(from.end + exploitEvery, epochs), values: values))
    }
    let own = segments[segment]
    return propose(Segment(member: member, origin: segment, start: own.end, end: min(own.end + exploitEvery, epochs), values: own.values))
  }

  mutating func propose(_ s: Segment) -> [(String, String)] {
    segments.append(s)
    latest[s.member] = segments.count - 1
    proposed += 1
    return s.values.map { ($0[0], $0[1]) } + [("epochs", String(s.end))]
  }

  /// A member's most recent segment with a score.
  func lastFinished(member: Int, scores: [Int: Double]) -> Int? {
    segments.indices.last { segments[$0].member == member && scores[$0] != nil }
  }

  /// Each numeric axis's value times 0.8 or 1.2, inside the axis's range; list axes as they are.
  mutating func perturbed(_ values: [[String]]) -> [[String]] {
    values.map { pair in
      guard let axis = axes.first(where: { $0.option == pair[0] }), let x = Double(pair[1]) else { return pair }
      let factor = rng.index(below: 2) == 0 ? 0.8 : 1.2
      switch axis.values {
      case .uniform(let a, let b), .logUniform(let a, let b): return [pair[0], SweepPlan.format(min(max(x * factor, a), b))]
      case .list: return pair
      }
    }
  }

  /// Each segment with results on all its `seeds`: the mean of their scores (-infinity for one without: diverged).
  static func scores(_ history: [SearchResult], seeds: Int) -> [Int: Double] {
    var sums: [Int: (Double, Int)] = [:]
    for r in history {
      var s = -Double.infinity
      switch r.status {
      case .diverged, .failed: break
      default: if let v = r.score, v.isFinite { s = v }
      }
      let (t, n) = sums[r.setting.index] ?? (0, 0)
      sums[r.setting.index] = (t + s, n + 1)
    }
    return sums.filter { $0.value.1 >= seeds }.mapValues { $0.0 / Double($0.1) }
  }

  /// Segment `index` followed back through its origins to the member's first: the lineage of its weights.
  public func lineage(of index: Int) -> [Segment] {
    var out: [Segment] = [], i: Int? = index
    while let j = i, segments.indices.contains(j) {
      out.append(segments[j])
      i = segments[j].origin
    }
    return out.reversed()
  }
}
