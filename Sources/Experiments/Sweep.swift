import LeastSquares
import Training
import Collectives
import Datasets
import FileFormats
import Foundation
import _Support

/// Runs the trials of a sweep on groups of ranks at once.
///
/// The world is split into groups of `ranksPerTrial` ranks (MPI_Comm_split by rank / ranksPerTrial); each group
/// trains one trial at a time, data-parallel inside the group; a group that finishes asks world rank 0 for the next,
/// so groups stay busy while trials remain. World rank 0 keeps the queue, gathers every group's per-epoch metrics and
/// checkpoints (group leaders send them without blocking; rank 0 answers between its own training steps) and decides
/// successive halving's rungs. Each trial stops on its own when it diverges, stops early or converges.
public final class Sweep {
  /// The settings and trials so far: on world rank 0 the plan grows as the searcher proposes settings; the other
  /// ranks learn each trial from its assignment.
  public private(set) var plan: SweepPlan
  /// What proposes the next setting whenever a group is free (nil: the plan is all there is).
  public private(set) var searcher: (any Searcher)?
  /// A trial's configuration and data, built on every rank of the group that trains it.
  let makeTrial: (SweepTrial, SweepSetting) throws -> TrialSpec
  public let ranksPerTrial: Int
  public let world: any Communicator
  /// Asked at every step whether this rank wants the sweep to stop (a signal arrived): the trials running then stop
  /// after the same step on all their ranks, no new one starts, and `run` returns what finished.
  public var stopRequested: (() -> Bool)?
  /// Seconds without word from a group (its leader reports at least every quarter of this) after which the sweep
  /// ends naming it, as the communicator's `Watchdog` does for the collectives; nil waits forever.
  public var stallTimeout: Double?
  /// Early stopping and divergence, as for one run.
  public var patience: Int?
  public var divergeFactor = 1e4
  public var pruning: Pruning?
  /// Every trial also checkpoints when it ends, and rank 0 can give each trial's last checkpoint back (the observer's
  /// written copy, `SweepObserver.checkpointBytes`; in memory without an observer): a search whose settings continue
  /// other settings' trials (`Searcher.origin(ofSetting:)`, population-based training) needs them. The same on every
  /// rank.
  public var finalCheckpoints = false
  /// On world rank 0, for `dpt sweep --resume`: where each trial stood.
  public var progress: [Int: TrialProgress] = [:]
  /// Each world rank's host, for naming a silent group (filled by `run`).
  var hosts: [String] = []

  static let toRoot = 7001
  static let toLeader = 7002

  /// A sweep of `plan`'s trials and then of what `searcher` proposes (each setting once per seed of the plan);
  /// `makeTrial` builds a trial's configuration and data (the same on every rank).
  public init(plan: SweepPlan, searcher: (any Searcher)?, ranksPerTrial: Int, world: any Communicator,
              makeTrial: @escaping (SweepTrial, SweepSetting) throws -> TrialSpec) throws {
    guard ranksPerTrial >= 1, world.size % ranksPerTrial == 0 else {
      throw SweepProblem.groupsDoNotDivide(ranksPerTrial: ranksPerTrial, worldSize: world.size)
    }
    guard !plan.trials.isEmpty || searcher != nil, !plan.seeds.isEmpty else { throw SweepProblem.noSettings }
    self.plan = plan
    self.searcher = searcher
    self.makeTrial = makeTrial
    self.ranksPerTrial = ranksPerTrial
    self.world = world
  }

  /// A sweep of a fixed list of trials (`trials[i]` for `plan.trials[i]`).
  public convenience init(plan: SweepPlan, trials: [TrialSpec], ranksPerTrial: Int, world: any Communicator) throws {
    guard trials.count == plan.trials.count else { throw SweepProblem.noSettings }
    for t in trials { try Sweep.check(t, ranksPerTrial: ranksPerTrial) }
    try self.init(plan: plan, searcher: nil, ranksPerTrial: ranksPerTrial, world: world) { t, _ in trials[t.index] }
  }

  /// A trial's data must give every rank of its group samples.
  public static func check(_ t: TrialSpec, ranksPerTrial: Int) throws {
    guard t.data.train.count >= ranksPerTrial else {
      throw SweepProblem.tooFewSamplesForGroups(dataSet: t.data.name, samples: t.data.train.count, ranksPerTrial: ranksPerTrial)
    }
  }

  public var groups: Int { world.size / ranksPerTrial }

  /// Runs every trial not already final. Returns the outcomes (in trial order) on world rank 0, nothing elsewhere.
  public func run(observer: SweepObserver? = nil) throws -> [TrialOutcome] {
    hosts = try world.allGather(Array(ProcessInfo.processInfo.hostName.utf8)).map { String(decoding: $0, as: UTF8.self) }
    let color = world.rank / ranksPerTrial
    let group = try world.split(color: color, key: world.rank)
    let coordinator = world.rank == 0 ? Coordinator(sweep: self, observer: observer) : nil
    let isLeader = group.rank == 0
    while true {
      // The leader learns the next trial (from the coordinator, itself on world rank 0) and tells its group, with
      // what a resumed trial needs: its checkpoint and its earlier epochs.
      // A stop asked for between settings ends the queue here: no setting starts after it (the trials of a step's
      // length would otherwise each finish their one step and the next start, all of them).
      let stop = stopRequested?() ?? false
      var assignment = Message.none
      if isLeader {
        if let coordinator {
          if stop { coordinator.stopping = true }
          assignment = try coordinator.assign(group: color)
        } else {
          try world.send(Message.next(group: color, stopping: stop).bytes, to: 0, tag: Sweep.toRoot)
          assignment = try Message.decode(try receiveBounded(from: 0, tag: Sweep.toLeader).bytes)
        }
      }
      assignment = try Message.decode(try group.broadcast(bytes: assignment.bytes, root: 0))
      guard case .assignment(let trial, let setting, let earlier, let checkpoint) = assignment else { break }
      let outcome = try runTrial(trial, setting, earlier: earlier, checkpoint: checkpoint, group: group, groupIndex: color,
                                 coordinator: coordinator)
      if isLeader {
        if let coordinator { try coordinator.finished(outcome) } else {
          try world.send(Message.done(trial: trial.index, status: outcome.status, seconds: outcome.seconds, closedForm: outcome.closedForm).bytes,
                         to: 0, tag: Sweep.toRoot)
        }
      }
    }
    if let coordinator {
      try coordinator.serveUntilDone()
      return coordinator.outcomes.compactMap { $0 }
    }
    return []
  }

  /// A message from `source`, waiting at most the stall timeout since the last word from anyone (polled: the other
  /// ranks go on while this one waits; keep-alive words count as word).
  func receiveBounded(from source: Int, tag: Int) throws -> (bytes: [UInt8], source: Int) {
    guard let timeout = stallTimeout else { return try world.receive(from: source, tag: tag) }
    var start = WallClock.now()
    var last = start
    while true {
      if try world.hasMessage(from: source, tag: tag) {
        let m = try world.receive(from: source, tag: tag)
        if case .alive = try Message.decode(m.bytes) {  // rank 0 is there: the wait starts over
          start = WallClock.now()
          continue
        }
        return m
      }
      let now = WallClock.now()
      if now - last > 1 { start = now }  // woken after being stopped: the time away is not rank 0's silence
      last = now
      if now - start > timeout { throw silence([source], waited: now - start) }
      usleep(1000)
    }
  }

  /// The error that names ranks the sweep has not heard from.
  func silence(_ ranks: [Int], waited: Double) -> CollectiveStall {
    CollectiveStall(silentRanks: ranks, hosts: ranks.map { hosts.indices.contains($0) ? hosts[$0] : "?" }, waited: waited,
                    reason: .timeout, reporter: world.rank)
  }

  /// The validation metric successive halving compares (higher is better: accuracy, or minus the loss).
  static func rungScore(_ m: EpochMetrics) -> Double {
    guard let v = m.validation ?? m.test else { return -m.train.loss }
    return m.task == .classification ? v.accuracy : -v.loss
  }

  func runTrial(_ trial: SweepTrial, _ setting: SweepSetting, earlier: [EpochRecord], checkpoint: [UInt8], group: any Communicator,
                groupIndex: Int, coordinator: Coordinator?) throws -> TrialOutcome {
    let start = WallClock.now()
    let spec = try makeTrial(trial, setting)
    try Sweep.check(spec, ranksPerTrial: ranksPerTrial)
    let trainer = try Trainer<Float>(config: spec.config, data: spec.data, communicator: group, synchronize: false)
    if !checkpoint.isEmpty {
      let path = trial.folder.joined(separator: "/")
      try trainer.restore(try Checkpoint(decoding: checkpoint, path: path), path: path)
    }
    try trainer.synchronizeParameters(broadcast: checkpoint.isEmpty)
    trainer.stopRequested = stopRequested
    // A checkpoint is built (gathered, on a sharded step), sent to rank 0 and written: with L-BFGS's history it holds
    // hundreds of MB. Their cost is kept to about a fifth of the training time; a resumed trial re-runs the epochs
    // after its last checkpoint.
    let run = Run(trainer: trainer, checkpoints: CheckpointPolicy(everyEpoch: true, best: true, maxShare: 0.2, onInterrupt: true,
                                                                 atEnd: finalCheckpoints),
                  patience: patience, divergeFactor: divergeFactor, recordedConfig: spec.record)
    run.earlier = earlier
    let outcome = try run.execute(observers: [TrialReporter(sweep: self, trial: trial, group: groupIndex, coordinator: coordinator)])
    // A linear model fitted by MSE: the closed-form ridge solution of its problem (the group's ranks together).
    var closedForm: JSON?
    switch outcome.status {
    case .diverged, .interrupted, .pruned: break
    default: closedForm = try ClosedFormComparison.make(trainer, predict: [])?.json
    }
    return TrialOutcome(trial: trial, status: outcome.status, epochs: [], seconds: WallClock.now() - start, group: groupIndex,
                        closedForm: closedForm)
  }

  /// A trial's run, as its group's leader tells world rank 0: each epoch's metrics, its checkpoints, its scores at
  /// successive halving's rungs; between steps, world rank 0 answers the other groups and the other leaders say they
  /// are alive every quarter timeout.
  final class TrialReporter: RunObserver {
    let sweep: Sweep, trial: SweepTrial, group: Int, coordinator: Coordinator?
    var lastWord = WallClock.now()

    init(sweep: Sweep, trial: SweepTrial, group: Int, coordinator: Coordinator?) {
      (self.sweep, self.trial, self.group, self.coordinator) = (sweep, trial, group, coordinator)
    }

    func isLeader(_ run: Run) -> Bool { run.trainer.communicator.isRoot }

    func stepEnded(_ run: Run) throws {
      if let coordinator { return try coordinator.serve() }
      guard isLeader(run), let timeout = sweep.stallTimeout else { return }
      let now = WallClock.now()
      if now - lastWord > min(timeout / 4, 30) {
        try sweep.world.send(Message.alive(group: group).bytes, to: 0, tag: Sweep.toRoot)
        lastWord = now
      }
    }

    func epochEnded(_ run: Run, _ metrics: EpochMetrics) throws {
      if isLeader(run) { try sweep.report(trial, metrics.record, coordinator: coordinator) }
    }

    func verdict(_ run: Run, after m: EpochMetrics) throws -> RunStatus? {
      let epochs = run.trainer.config.epochs
      guard let pruning = sweep.pruning,
            pruning.isRung(m.epoch, of: epochs, bracket: pruning.bracket(ofSetting: trial.setting)) else { return nil }
      let keep = try sweep.decide(trial: trial.index, rung: m.epoch, score: Sweep.rungScore(m), coordinator: coordinator)
      return keep ? nil : .pruned(epoch: m.epoch)
    }

    func checkpointTaken(_ run: Run, _ checkpoint: Checkpoint, regular: Bool, best: Bool) throws {
      if isLeader(run) { try sweep.report(trial, checkpoint: checkpoint.encoded(), best: best, coordinator: coordinator) }
    }
  }

  /// An epoch's metrics, to rank 0's coordinator.
  func report(_ trial: SweepTrial, _ metrics: EpochRecord, coordinator: Coordinator?) throws {
    if let coordinator { return coordinator.epoch(trial.index, metrics) }
    try world.send(Message.epoch(trial: trial.index, metrics: metrics).bytes, to: 0, tag: Sweep.toRoot)
  }

  /// A checkpoint (and whether it is the best epoch's), to rank 0's coordinator.
  func report(_ trial: SweepTrial, checkpoint: [UInt8], best: Bool, coordinator: Coordinator?) throws {
    if let coordinator { return coordinator.checkpoint(trial.index, bytes: checkpoint, best: best) }
    try world.send(Message.checkpoint(trial: trial.index, best: best, bytes: checkpoint).bytes, to: 0, tag: Sweep.toRoot)
  }

  /// Successive halving's verdict at a rung: on rank 0 from its own coordinator (serving the others while it waits),
  /// elsewhere by asking it (and waiting as long as rank 0 keeps saying it is there).
  func decide(trial: Int, rung: Int, score: Double, coordinator: Coordinator?) throws -> Bool {
    if let coordinator {
      coordinator.record(trial: trial, rung: rung, score: score)
      while true {
        if let verdict = coordinator.verdict(trial: trial, rung: rung) { return verdict }
        try coordinator.serve()
        usleep(1000)
      }
    }
    try world.send(Message.rung(trial: trial, rung: rung, score: score).bytes, to: 0, tag: Sweep.toRoot)
    guard case .verdict(let keep) = try Message.decode(try receiveBounded(from: 0, tag: Sweep.toLeader).bytes) else {
      throw SweepProblem.protocolBroken("rank 0 answered a rung with something else")
    }
    return keep
  }

  /// The queue, the results and the rungs, on world rank 0.
  final class Coordinator {
    let sweep: Sweep
    let observer: SweepObserver?
    var queue: [Int]
    var outcomes: [TrialOutcome?]
    var epochs: [[EpochRecord]]
    var given: Set<Int> = []
    var released: Set<Int> = []
    /// A trial was interrupted, or a stop was asked for: no new one starts.
    var stopping = false
    /// When each group was last heard from (its leader's messages), and told rank 0 is there.
    var heard: [Double]
    var toldAlive: [Double]
    /// Successive halving: the scores recorded at each rung, the trials waiting for a verdict, and the verdicts.
    var rungs: [Int: [(trial: Int, score: Double)]] = [:]
    var waiting: [(trial: Int, rung: Int, group: Int?)] = []
    var verdicts: [String: Bool] = [:]
    /// Each trial's last checkpoint, with `finalCheckpoints` and no observer to keep them (a population's checkpoints
    /// for every segment would otherwise all stay in memory).
    var lastCheckpoint: [Int: [UInt8]] = [:]

    init(sweep: Sweep, observer: SweepObserver?) {
      self.sweep = sweep
      self.observer = observer
      let n = sweep.plan.trials.count
      outcomes = Array(repeating: nil, count: n)
      epochs = Array(repeating: [], count: n)
      queue = []
      for i in 0..<n {
        if let p = sweep.progress[i], let status = p.status, status.isFinal {
          outcomes[i] = TrialOutcome(trial: sweep.plan.trials[i], status: status, epochs: p.epochs, seconds: p.seconds, group: -1,
                                     closedForm: p.closedForm)
          outcomes[i]!.tries = p.tries
        } else {
          queue.append(i)
        }
      }
      heard = Array(repeating: WallClock.now(), count: sweep.groups)
      toldAlive = heard
    }

    /// Whether every trial runs at once (then the rungs are synchronous): those waiting, running and still to be
    /// proposed fit the groups. A search that decides as it goes is never synchronous.
    var synchronous: Bool {
      guard let left = remainingSettings else { return false }
      return queue.count + given.count + left * sweep.plan.seeds.count <= sweep.groups
    }

    /// Settings the searcher has yet to propose (nil: unknown).
    var remainingSettings: Int? {
      guard let s = sweep.searcher else { return 0 }
      return s.budget.map { $0 - s.proposed }
    }

    /// The finished trials, for the searcher.
    var history: [SearchResult] {
      outcomes.compactMap { o in
        guard let o else { return nil }
        return SearchResult(setting: sweep.plan.settings[o.trial.setting], seed: o.trial.seed, status: o.status,
                            score: SearchResult.score(o.epochs))
      }
    }

    /// Asks the searcher for a setting and queues its trials (nothing when the search is over).
    func propose() {
      guard var searcher = sweep.searcher else { return }
      let values = searcher.next(history: history)
      sweep.searcher = searcher
      guard let values else { return }
      let setting = sweep.plan.add(values)
      for t in sweep.plan.trials(of: setting.index) {
        queue.append(t.index)
        outcomes.append(nil)
        epochs.append([])
      }
      observer?.planChanged(sweep.plan, searcher: searcher)
    }

    /// The next trial for `group` with its setting and what resumes it; `.none` when none is left or the sweep is
    /// stopping.
    func assign(group: Int) throws -> Message {
      if queue.isEmpty && !stopping { propose() }
      guard !queue.isEmpty && !stopping else {
        released.insert(group)
        return .none
      }
      let index = queue.removeFirst()
      given.insert(index)
      let p = sweep.progress[index]
      // A resumed trial goes on from its own checkpoint; one that continues another's, from that one's.
      let own = p?.checkpoint.map { (epochs: p!.epochs, checkpoint: $0) }
      let from = try own ?? continuation(of: index)
      epochs[index] = from?.epochs ?? []
      let trial = sweep.plan.trials[index]
      observer?.trialStarted(trial, group: group, earlier: epochs[index])
      return .assignment(trial: trial, setting: sweep.plan.settings[trial.setting], earlier: epochs[index],
                         checkpoint: from?.checkpoint ?? [])
    }

    /// A trial's checkpoint: written by the observer, and kept when trials continue others'.
    func checkpoint(_ index: Int, bytes: [UInt8], best: Bool) {
      observer?.checkpoint(sweep.plan.trials[index], bytes: bytes, best: best)
      if sweep.finalCheckpoints && observer == nil { lastCheckpoint[index] = bytes }
    }

    /// Where trial `index` starts when its setting continues another's trial of the same seed: that trial's epochs
    /// and last checkpoint (kept since it ended, or after a resume as written); nil for a setting that starts afresh.
    func continuation(of index: Int) throws -> (epochs: [EpochRecord], checkpoint: [UInt8])? {
      let trial = sweep.plan.trials[index]
      guard let origin = sweep.searcher?.origin(ofSetting: trial.setting) else { return nil }
      guard let from = sweep.plan.trials(of: origin).first(where: { $0.seed == trial.seed }),
            let bytes = observer?.checkpointBytes(of: from) ?? lastCheckpoint[from.index], let done = outcomes[from.index] else {
        throw SweepProblem.protocolBroken("trial \(index) continues setting \(origin), whose trial has no final checkpoint")
      }
      return (done.epochs, bytes)
    }

    func epoch(_ index: Int, _ metrics: EpochRecord) {
      epochs[index].append(metrics)
      observer?.epochFinished(sweep.plan.trials[index], metrics: metrics)
    }

    func finished(_ outcome: TrialOutcome) throws {
      var o = outcome
      o.trial = sweep.plan.trials[outcome.trial.index]
      o.epochs = epochs[outcome.trial.index]
      o.seconds += sweep.progress[outcome.trial.index]?.seconds ?? 0
      o.tries = (sweep.progress[outcome.trial.index]?.tries ?? 0) + 1
      outcomes[outcome.trial.index] = o
      given.remove(outcome.trial.index)
      if o.status == .interrupted { stopping = true }
      observer?.trialFinished(o)
      try settleRungs()
    }

    /// Records a trial's score at a rung (from rank 0's own trial, or a leader's message) and settles what can be.
    func record(trial: Int, rung: Int, score: Double, group: Int? = nil) {
      rungs[rung, default: []].append((trial, score))
      waiting.append((trial, rung, group))
      try? settleRungs()
    }

    /// The pruning bracket of a trial's setting.
    func bracket(of trial: Int) -> Int {
      guard let pruning = sweep.pruning else { return 0 }
      return pruning.bracket(ofSetting: sweep.plan.trials[trial].setting)
    }

    /// A trial's verdict at a rung: its setting's, the same for every seed.
    func verdict(trial: Int, rung: Int) -> Bool? { verdicts["\(sweep.plan.trials[trial].setting)@\(rung)"] }

    /// Decides every waiting trial that can be. A rung ranks settings, not trials: a setting's score is the mean of
    /// its seeds' scores recorded there, and its verdict, decided once, holds for every seed of it (one that reaches
    /// the rung later gets the same), so no setting is left with seeds of different lengths. Asynchronously (ASHA) a
    /// setting is decided at once, by its rank among the settings recorded so far; synchronously once every trial
    /// still running has reached the rung.
    func settleRungs() throws {
      guard let pruning = sweep.pruning else { return }
      var still: [(trial: Int, rung: Int, group: Int?)] = []
      for w in waiting {
        let setting = sweep.plan.trials[w.trial].setting
        if verdict(trial: w.trial, rung: w.rung) == nil {
          // Ranked against the settings of its own bracket (Hyperband's; one bracket for plain halving).
          let bracket = self.bracket(of: w.trial)
          let recorded = (rungs[w.rung] ?? []).filter { self.bracket(of: $0.trial) == bracket }
          let running = given.filter { t in outcomes[t] == nil && self.bracket(of: t) == bracket }
          if synchronous && running.contains(where: { t in !recorded.contains { $0.trial == t } }) {
            still.append(w)  // others still on their way to this rung
            continue
          }
          var scores: [Int: [Double]] = [:]
          for r in recorded { scores[sweep.plan.trials[r.trial].setting, default: []].append(r.score) }
          let ranked = scores.map { ($0.key, $0.value.reduce(0, +) / Double($0.value.count)) }.sorted { ($0.1, -$0.0) > ($1.1, -$1.0) }
          let kept = max(1, (ranked.count + pruning.reduction - 1) / pruning.reduction)
          verdicts["\(setting)@\(w.rung)"] = ranked.prefix(kept).contains { $0.0 == setting }
        }
        let keep = verdict(trial: w.trial, rung: w.rung)!
        if let g = w.group { try sweep.world.send(Message.verdict(keep: keep).bytes, to: g * sweep.ranksPerTrial, tag: Sweep.toLeader) }
      }
      waiting = still
    }

    func handle(_ bytes: [UInt8], from source: Int) throws {
      heard[source / sweep.ranksPerTrial] = WallClock.now()
      switch try Message.decode(bytes) {
      case .alive: break
      case .next(let group, let stop):
        if stop { stopping = true }
        try sweep.world.send(try assign(group: group).bytes, to: source, tag: Sweep.toLeader)
      case .epoch(let index, let metrics):
        epoch(index, metrics)
      case .checkpoint(let index, let best, let payload):
        checkpoint(index, bytes: payload, best: best)
      case .rung(let trial, let rung, let score):
        record(trial: trial, rung: rung, score: score, group: source / sweep.ranksPerTrial)
      case .done(let index, let status, let seconds, let closedForm):
        try finished(TrialOutcome(trial: sweep.plan.trials[index], status: status, epochs: [], seconds: seconds,
                                  group: source / sweep.ranksPerTrial, closedForm: closedForm))
      case .assignment, .none, .verdict:
        throw SweepProblem.protocolBroken("rank \(source) sent rank 0 a message for leaders")
      }
    }

    /// Answers every message waiting (called between rank 0's own training steps); tells the leaders waiting for a
    /// verdict that rank 0 is there.
    func serve() throws {
      while try sweep.world.hasMessage(from: nil, tag: Sweep.toRoot) {
        let m = try sweep.world.receive(from: nil, tag: Sweep.toRoot)
        try handle(m.bytes, from: m.source)
      }
      guard let timeout = sweep.stallTimeout else { return }
      let now = WallClock.now()
      for w in waiting {
        guard let g = w.group, now - toldAlive[g] > min(timeout / 4, 30) else { continue }
        try sweep.world.send(Message.alive(group: 0).bytes, to: g * sweep.ranksPerTrial, tag: Sweep.toLeader)
        toldAlive[g] = now
      }
      try checkSilence(timeout: timeout)
    }

    /// After rank 0's own group is done: answer until every trial given out has finished and every group is released;
    /// with a stall timeout, a group not heard from for that long ends the sweep naming its ranks.
    func serveUntilDone() throws {
      var last = WallClock.now()
      while !given.isEmpty || released.count < sweep.groups {
        guard sweep.stallTimeout != nil else {
          let m = try sweep.world.receive(from: nil, tag: Sweep.toRoot)
          try handle(m.bytes, from: m.source)
          continue
        }
        let now = WallClock.now()
        if now - last > 1 { heard = heard.map { _ in now } }  // woken after being stopped: a full timeout again
        last = now
        try serve()
        usleep(1000)
      }
    }

    /// Throws naming the first group at work that has not been heard from for `timeout` seconds (a group waiting at a
    /// rung keeps saying so).
    func checkSilence(timeout: Double) throws {
      let now = WallClock.now()
      for g in 1..<max(sweep.groups, 1) where now - heard[g] > timeout && !released.contains(g) {
        if waiting.contains(where: { $0.group == g }) { continue }
        throw sweep.silence(Array(g * sweep.ranksPerTrial..<(g + 1) * sweep.ranksPerTrial), waited: now - heard[g])
      }
    }
  }

  /// The messages of the protocol: a JSON head, and for checkpoints and assignments the bytes after it.
  enum Message {
    case alive(group: Int)
    case next(group: Int, stopping: Bool)
    /// A trial to train, with its setting (the ranks other than world rank 0 know only what they are told).
    case assignment(trial: SweepTrial, setting: SweepSetting, earlier: [EpochRecord], checkpoint: [UInt8])
    /// No trial is left for the group.
    case none
    case epoch(trial: Int, metrics: EpochRecord)
    case checkpoint(trial: Int, best: Bool, bytes: [UInt8])
    case rung(trial: Int, rung: Int, score: Double)
    case verdict(keep: Bool)
    case done(trial: Int, status: RunStatus, seconds: Double, closedForm: JSON?)

    var bytes: [UInt8] {
      var payload: [UInt8] = []
      let head: JSON
      switch self {
      case .alive(let g): head = .object([("type", JSON("alive")), ("group", JSON(g))])
      case .next(let g, let stop): head = .object([("type", JSON("next")), ("group", JSON(g)), ("stopping", .bool(stop))])
      case .assignment(let t, let setting, let earlier, let c):
        head = .object([("type", JSON("assignment")), ("trial", Message.json(t)), ("setting", Message.json(setting)),
                        ("earlier", .array(earlier.map(\.json)))])
        payload = c
      case .none: head = .object([("type", JSON("none"))])
      case .epoch(let t, let m): head = .object([("type", JSON("epoch")), ("trial", JSON(t)), ("metrics", m.json)])
      case .checkpoint(let t, let best, let b):
        head = .object([("type", JSON("checkpoint")), ("trial", JSON(t)), ("best", .bool(best))])
        payload = b
      case .rung(let t, let r, let s): head = .object([("type", JSON("rung")), ("trial", JSON(t)), ("rung", JSON(r)), ("score", JSON(s))])
      case .verdict(let keep): head = .object([("type", JSON("verdict")), ("keep", .bool(keep))])
      case .done(let t, let status, let s, let closedForm):
        head = .object([("type", JSON("done")), ("trial", JSON(t)), ("status", status.json), ("seconds", JSON(s)),
                        ("closed_form", closedForm ?? .null)])
      }
      let h = Array(head.serialized().utf8)
      return LittleEndian.bytes(UInt32(h.count)) + h + payload
    }

    /// A Codable value as a JSON field, and back.
    static func json<V: Encodable>(_ v: V) -> JSON { (try? JSON.parse(bytes: Array(JSONEncoder().encode(v)))) ?? .null }
    static func decode<V: Decodable>(_ j: JSON?) -> V? { j.flatMap { try? JSONDecoder().decode(V.self, from: Data($0.serialized().utf8)) } }

    static func decode(_ bytes: [UInt8]) throws -> Message {
      guard bytes.count >= 4 else { throw SweepProblem.protocolBroken("a message of \(bytes.count) bytes") }
      let n = Int(LittleEndian.read(UInt32.self, bytes, at: 0))
      guard 4 + n <= bytes.count else { throw SweepProblem.protocolBroken("a message shorter than its head") }
      let o = try JSON.parse(bytes: bytes[4..<4 + n])
      let payload = Array(bytes[(4 + n)...])
      let trial = o["trial"]?.int ?? -1
      switch o["type"]?.string {
      case "alive": return .alive(group: o["group"]?.int ?? -1)
      case "next": return .next(group: o["group"]?.int ?? -1, stopping: o["stopping"]?.bool ?? false)
      case "assignment":
        guard let t: SweepTrial = Message.decode(o["trial"]), let setting: SweepSetting = Message.decode(o["setting"]) else {
          throw SweepProblem.protocolBroken("an assignment without its trial and setting")
        }
        return .assignment(trial: t, setting: setting, earlier: (o["earlier"]?.array ?? []).compactMap(EpochRecord.init(json:)), checkpoint: payload)
      case "none": return .none
      case "epoch":
        guard let metrics = o["metrics"].flatMap(EpochRecord.init(json:)) else { throw SweepProblem.protocolBroken("an epoch message without its metrics") }
        return .epoch(trial: trial, metrics: metrics)
      case "checkpoint": return .checkpoint(trial: trial, best: o["best"]?.bool ?? false, bytes: payload)
      case "rung": return .rung(trial: trial, rung: o["rung"]?.int ?? 0, score: o["score"]?.double ?? -.infinity)
      case "verdict": return .verdict(keep: o["keep"]?.bool ?? true)
      case "done":
        let closedForm = o["closed_form"].flatMap { $0 == .null ? nil : $0 }
        return .done(trial: trial, status: RunStatus(json: o["status"] ?? .null) ?? .finished, seconds: o["seconds"]?.double ?? 0,
                     closedForm: closedForm)
      default: throw SweepProblem.protocolBroken("unknown message \(o.serialized())")
      }
    }
  }
}
