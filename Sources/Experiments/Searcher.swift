import Foundation
import TensorCore
import Training
import _Support

/// What a search has to learn from: a finished trial's setting, seed and outcome.
public struct SearchResult: Sendable {
  public var setting: SweepSetting
  public var seed: UInt64
  public var status: RunStatus
  /// Its last epoch's validation score, higher is better (accuracy, or minus the loss; the test set's without a
  /// validation set), as successive halving compares them; nil when it logged no epoch.
  public var score: Double?

  public init(setting: SweepSetting, seed: UInt64, status: RunStatus, score: Double?) {
    (self.setting, self.seed, self.status, self.score) = (setting, seed, status, score)
  }

  /// The score of a trial's last logged epoch.
  public static func score(_ epochs: [EpochRecord]) -> Double? {
    guard let last = epochs.last else { return nil }
    let set: MetricSet = last.validation != nil ? .val : .test
    if last.classification, let accuracy = last.value(set, .acc) { return accuracy }
    return last.value(set, .loss).map { -$0 }
  }
}

/// A search over a sweep's axes. World rank 0's coordinator asks it for the next setting whenever a group of ranks
/// is free, with every result so far, so a search may learn from them (TPE, Hyperband's brackets, population-based
/// training). Its state is Codable and kept in sweep.json: a resumed sweep goes on where the search stood.
///
/// A new search is one file: a type conforming to `Searcher`, and its line in `Searchers.table` (`dpt sweep --search
/// NAME` then finds it).
public protocol Searcher: Codable, Sendable {
  /// Its name for `--search` and sweep.json ("grid", "random").
  static var name: String { get }
  /// A search over `axes`; `samples`: how many settings to draw (nil: the search's own number); `seed`: its random
  /// numbers. Throws when the axes do not suit it (a distribution on a grid).
  init(axes: [SweepAxis], samples: Int?, seed: UInt64) throws
  /// The next setting's values, (option, value) in the axes' order; nil when the search is over (the group that
  /// asked is released).
  mutating func next(history: [SearchResult]) -> [(String, String)]?
  /// How many settings it proposes in all (nil: it decides as it goes).
  var budget: Int? { get }
  /// How many it has proposed.
  var proposed: Int { get }
  /// The setting (an index of the plan) whose trial of the same seed the proposed setting `index` continues: it starts
  /// from that trial's last checkpoint and epochs (population-based training's segments); nil: from scratch.
  func origin(ofSetting index: Int) -> Int?
  /// The settings among the first `count` whose trials are not results of their own, with why: "continued" (a later
  /// setting goes on from them), "replaced" (population-based training's exploit dropped them for another's weights).
  func supersededSettings(count: Int) -> [Int: String]
}

extension Searcher {
  public func origin(ofSetting index: Int) -> Int? { nil }

  public func supersededSettings(count: Int) -> [Int: String] {
    Dictionary((0..<count).compactMap { origin(ofSetting: $0) }.map { ($0, "continued") }, uniquingKeysWith: { a, _ in a })
  }
}

/// The searches `dpt sweep --search` knows, and how sweep.json keeps them.
public enum Searchers {
  public static let table: [any Searcher.Type] = [GridSearch.self, RandomSearch.self, TPESearch.self, PBTSearch.self]

  public static var names: [String] { table.map { $0.name } }

  /// The search named `name`.
  public static func make(_ name: String, axes: [SweepAxis], samples: Int?, seed: UInt64) throws -> any Searcher {
    guard let type = table.first(where: { $0.name == name }) else { throw SweepProblem.unknownSearch(name: name, known: names) }
    return try type.init(axes: axes, samples: samples, seed: seed)
  }

  /// {"name": "random", "state": {...}} for sweep.json.
  public static func json(_ searcher: any Searcher) throws -> JSON {
    .object([("name", JSON(type(of: searcher).name)), ("state", try JSON.parse(bytes: Array(JSONEncoder().encode(searcher))))])
  }

  /// The search sweep.json kept.
  public static func decode(_ json: JSON) throws -> any Searcher {
    guard let name = json["name"]?.string, let state = json["state"] else { throw SweepProblem.protocolBroken("a search without its name and state") }
    guard let type = table.first(where: { $0.name == name }) else { throw SweepProblem.unknownSearch(name: name, known: names) }
    return try JSONDecoder().decode(type, from: Data(state.serialized().utf8))
  }

  /// Every setting a search proposes without results (all of a grid's or a random search's; a learning search's
  /// first ones), at most `limit`: what a sweep checks before any group starts.
  public static func firstSettings(_ searcher: any Searcher, limit: Int = 100_000) -> [[(String, String)]] {
    var probe = searcher
    var out: [[(String, String)]] = []
    while out.count < limit, let values = probe.next(history: []) { out.append(values) }
    return out
  }
}

/// Every combination of the list axes, the first axis varying slowest (sklearn's ParameterGrid).
public struct GridSearch: Searcher {
  public static let name = "grid"
  public let axes: [SweepAxis]
  public private(set) var proposed = 0

  public init(axes: [SweepAxis], samples: Int?, seed: UInt64) throws {
    for axis in axes {
      guard case .list = axis.values else { throw SweepProblem.distributionNeedsSamples(option: axis.option) }
    }
    self.axes = axes
  }

  public var budget: Int? {
    axes.reduce(1) { n, axis in if case .list(let v) = axis.values { n * v.count } else { n } }
  }

  public mutating func next(history: [SearchResult]) -> [(String, String)]? {
    guard proposed < budget! else { return nil }
    // The mixed-radix digits of `proposed`, the last axis fastest.
    var rest = proposed, values: [(String, String)] = []
    for axis in axes.reversed() {
      guard case .list(let v) = axis.values else { continue }
      values.append((axis.option, v[rest % v.count]))
      rest /= v.count
    }
    proposed += 1
    return values.reversed()
  }
}

/// N settings drawn at random (distributions drawn from, lists picked from uniformly, as sklearn's ParameterSampler).
public struct RandomSearch: Searcher {
  public static let name = "random"
  public let axes: [SweepAxis]
  public let samples: Int
  public let seed: UInt64
  public private(set) var proposed = 0
  /// Where the draws stand: each setting's values follow the last's.
  var rng: RandomSource

  public init(axes: [SweepAxis], samples: Int?, seed: UInt64) throws {
    guard let samples else {
      throw SweepProblem.distributionNeedsSamples(option: axes.first { if case .list = $0.values { false } else { true } }?.option ?? axes.first?.option ?? "")
    }
    (self.axes, self.samples, self.seed) = (axes, samples, seed)
    rng = RandomSource(seed: seed, stream: 0x5A3F_11E5)
  }

  public var budget: Int? { samples }

  public mutating func next(history: [SearchResult]) -> [(String, String)]? {
    guard proposed < samples else { return nil }
    let values = axes.map { axis -> (String, String) in
      switch axis.values {
      case .list(let v): return (axis.option, v[rng.index(below: v.count)])
      case .uniform(let a, let b): return (axis.option, SweepPlan.format(rng.uniform(a, b)))
      case .logUniform(let a, let b): return (axis.option, SweepPlan.format(exp(rng.uniform(log(a), log(b)))))
      }
    }
    proposed += 1
    return values
  }
}
