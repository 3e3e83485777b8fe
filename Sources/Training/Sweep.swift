import Collectives
import Datasets
import Foundation
import _Support

/// One point of a sweep's grid: the hyperparameters that differ from the base configuration.
public struct SweepSetting: Sendable, Equatable {
  public var index: Int
  public var weightDecay: Double
  public var learningRate: Double
  public var momentum: Double
  public var batchSize: Int
  /// The parameters the sweep lists more than one value for, shown in names ("wd=0.05 lr=0.1").
  public var varied: [String]

  public init(index: Int, weightDecay: Double, learningRate: Double, momentum: Double, batchSize: Int, varied: [String]) {
    self.index = index
    self.weightDecay = weightDecay
    self.learningRate = learningRate
    self.momentum = momentum
    self.batchSize = batchSize
    self.varied = varied
  }

  /// "wd=0.05 lr=0.1": the varied parameters (all four when none varies).
  public var name: String {
    var parts: [String] = []
    if varied.contains("weight_decay") { parts.append("wd=\(Self.format(weightDecay))") }
    if varied.contains("lr") { parts.append("lr=\(Self.format(learningRate))") }
    if varied.contains("momentum") { parts.append("momentum=\(Self.format(momentum))") }
    if varied.contains("batch_size") { parts.append("batch=\(batchSize)") }
    return parts.isEmpty ? "wd=\(Self.format(weightDecay))" : parts.joined(separator: " ")
  }

  /// A folder name for the setting: "01_wd-0.05_lr-0.1".
  public var slug: String {
    let body = name.replacingOccurrences(of: "=", with: "-").replacingOccurrences(of: " ", with: "_")
    return String(format: "%02d_", index + 1) + body
  }

  static func format(_ x: Double) -> String { String(format: "%g", x) }

  /// The base configuration with this setting's values.
  public func apply(to base: TrainingConfig) -> TrainingConfig {
    var c = base
    c.optimizer.weightDecay = weightDecay
    c.optimizer.learningRate = learningRate
    c.optimizer.momentum = momentum
    if momentum == 0 { c.optimizer.nesterov = false }
    c.batchSize = batchSize
    return c
  }

  public var json: [(String, JSON)] {
    [("setting", JSON(name)), ("weight_decay", JSON(weightDecay)), ("lr", JSON(learningRate)),
     ("momentum", JSON(momentum)), ("batch_size", JSON(batchSize))]
  }

  /// The grid: the product of the listed values, weight decay varying slowest.
  public static func grid(weightDecays: [Double], learningRates: [Double], momenta: [Double], batchSizes: [Int])
    -> [SweepSetting]
  {
    var varied: [String] = []
    if weightDecays.count > 1 { varied.append("weight_decay") }
    if learningRates.count > 1 { varied.append("lr") }
    if momenta.count > 1 { varied.append("momentum") }
    if batchSizes.count > 1 { varied.append("batch_size") }
    var out: [SweepSetting] = []
    for wd in weightDecays {
      for lr in learningRates {
        for m in momenta {
          for b in batchSizes {
            out.append(SweepSetting(index: out.count, weightDecay: wd, learningRate: lr, momentum: m, batchSize: b,
                                    varied: varied))
          }
        }
      }
    }
    return out
  }
}

/// What became of one setting.
public struct TrialOutcome: Sendable {
  public enum Status: String, Sendable { case finished, diverged, interrupted }
  public var setting: SweepSetting
  public var status: Status
  /// Why it stopped early (diverged), else empty.
  public var message: String
  /// One metrics row per completed epoch (the keys of metrics.jsonl).
  public var epochs: [JSON]
  /// Wall time of the trial, on its group's leader.
  public var seconds: Double
  /// The group that ran it.
  public var group: Int

  public init(setting: SweepSetting, status: Status, message: String, epochs: [JSON], seconds: Double, group: Int) {
    self.setting = setting
    self.status = status
    self.message = message
    self.epochs = epochs
    self.seconds = seconds
    self.group = group
  }
}

/// What world rank 0 is told while a sweep runs (to write files as results arrive).
public protocol SweepObserver: AnyObject {
  func trialStarted(_ setting: SweepSetting, group: Int)
  func epochFinished(_ setting: SweepSetting, metrics: JSON)
  func trialFinished(_ outcome: TrialOutcome)
}

/// Runs the settings of a sweep on groups of ranks at once.
///
/// The world is split into groups of `ranksPerTrial` ranks (MPI_Comm_split by rank / ranksPerTrial); each group
/// trains one setting at a time, data-parallel inside the group; a group that finishes asks world rank 0 for the next
/// setting, so groups stay busy while settings remain. World rank 0 keeps the queue and gathers every group's
/// per-epoch metrics: group leaders send them (non-blocking) and rank 0 answers between its own training steps.
/// A setting whose loss becomes NaN or infinite is marked diverged and its group moves on.
public final class Sweep {
  public let base: TrainingConfig
  public let settings: [SweepSetting]
  public let ranksPerTrial: Int
  public let data: DataSplit
  public let world: any Communicator
  /// Asked at every step whether this rank wants the sweep to stop (a signal arrived): the trials running then stop
  /// after the same step on all their ranks, no new one starts, and `run` returns what finished.
  public var stopRequested: (() -> Bool)?
  /// Seconds without word from a group (its leader reports at least every quarter of this) after which the sweep
  /// ends naming it, as `Watchdog.timeout` does for the collectives; nil waits forever.
  public var stallTimeout: Double?
  /// Each world rank's host, for naming a silent group (filled by `run`).
  var hosts: [String] = []

  static let toRoot = 7001
  static let toLeader = 7002

  public init(base: TrainingConfig, settings: [SweepSetting], ranksPerTrial: Int, data: DataSplit,
              world: any Communicator) throws {
    guard ranksPerTrial >= 1, world.size % ranksPerTrial == 0 else {
      throw ConfigurationProblem.groupsDoNotDivide(ranksPerTrial: ranksPerTrial, worldSize: world.size)
    }
    guard !settings.isEmpty else { throw TrainingError("the sweep has no settings") }
    guard data.train.count >= ranksPerTrial else {
      throw ConfigurationProblem.tooFewSamplesForGroups(dataSet: data.name, samples: data.train.count, ranksPerTrial: ranksPerTrial)
    }
    self.base = base
    self.settings = settings
    self.ranksPerTrial = ranksPerTrial
    self.data = data
    self.world = world
  }

  public var groups: Int { world.size / ranksPerTrial }

  /// Runs every setting once. Returns the outcomes (in setting order) on world rank 0, nothing elsewhere.
  public func run(observer: SweepObserver? = nil) throws -> [TrialOutcome] {
    hosts = try world.allGather(Array(ProcessInfo.processInfo.hostName.utf8)).map { String(decoding: $0, as: UTF8.self) }
    let color = world.rank / ranksPerTrial
    let group = try world.split(color: color, key: world.rank)
    let coordinator = world.rank == 0 ? Coordinator(sweep: self, observer: observer) : nil
    let isLeader = group.rank == 0
    while true {
      // The leader learns the next setting (from the coordinator, itself on world rank 0) and tells its group.
      var next = [Int64(-1)]
      if isLeader {
        if let coordinator {
          next[0] = Int64(try coordinator.assign(group: color))
        } else {
          try world.send(Message.next(group: color).bytes, to: 0, tag: Sweep.toRoot)
          let reply = try receiveBounded(from: 0, tag: Sweep.toLeader)
          next[0] = Int64(try Message.decodeAssignment(reply.bytes))
        }
      }
      try group.broadcast(&next, root: 0)
      guard next[0] >= 0 else { break }
      let setting = settings[Int(next[0])]
      let outcome = try runTrial(setting, group: group, groupIndex: color, coordinator: coordinator)
      if isLeader {
        if let coordinator { try coordinator.finished(outcome) } else {
          try world.send(Message.done(outcome).bytes, to: 0, tag: Sweep.toRoot)
        }
      }
    }
    if let coordinator {
      try coordinator.serveUntilDone()
      return coordinator.outcomes.compactMap { $0 }
    }
    return []
  }

  /// A message from `source`, waiting at most the stall timeout (polled: the other ranks go on while this one waits).
  func receiveBounded(from source: Int, tag: Int) throws -> (bytes: [UInt8], source: Int) {
    guard let timeout = stallTimeout else { return try world.receive(from: source, tag: tag) }
    let start = WallClock.now()
    var last = start
    while try !world.hasMessage(from: source, tag: tag) {
      let now = WallClock.now()
      // A process stopped and woken again sees a long gap: the time it was stopped is not waiting.
      if now - last > 1 { return try receiveBounded(from: source, tag: tag) }
      last = now
      if now - start > timeout { throw silence([source], waited: now - start) }
      usleep(1000)
    }
    return try world.receive(from: source, tag: tag)
  }

  /// The error that names ranks the sweep has not heard from.
  func silence(_ ranks: [Int], waited: Double) -> CollectiveStall {
    CollectiveStall(silentRanks: ranks, hosts: ranks.map { hosts.indices.contains($0) ? hosts[$0] : "?" }, waited: waited,
                    reason: .timeout, reporter: world.rank)
  }

  func runTrial(_ setting: SweepSetting, group: any Communicator, groupIndex: Int, coordinator: Coordinator?) throws
    -> TrialOutcome
  {
    let start = WallClock.now()
    let config = setting.apply(to: base)
    let trainer = try Trainer<Float>(config: config, data: data, communicator: group)
    trainer.stopRequested = stopRequested
    // World rank 0 answers messages between its steps; the other leaders say they are alive every quarter timeout.
    var lastWord = WallClock.now()
    if let coordinator {
      trainer.afterStep = { try coordinator.serve() }
    } else if group.rank == 0, let timeout = stallTimeout {
      trainer.afterStep = { [world] in
        let now = WallClock.now()
        if now - lastWord > min(timeout / 4, 30) {
          try world.send(Message.alive(group: groupIndex).bytes, to: 0, tag: Sweep.toRoot)
          lastWord = now
        }
      }
    }
    var epochs: [JSON] = []
    var status = TrialOutcome.Status.finished
    var message = ""
    for e in 0..<config.epochs {
      if trainer.stopAgreed {
        status = .interrupted
        message = "stopped by a signal after epoch \(e)"
        break
      }
      do {
        let m = try trainer.runEpoch()
        epochs.append(m.json)
        if group.rank == 0 {
          if let coordinator { coordinator.epoch(setting.index, m.json) } else {
            try world.send(Message.epoch(setting: setting.index, metrics: m.json).bytes, to: 0, tag: Sweep.toRoot)
          }
        }
      } catch let e as NonFiniteLoss {
        // Every rank of the group computed the same all-reduced loss, so the whole group stops here together.
        status = .diverged
        message = "\(e)"
        break
      } catch let stop as StopRequested {
        status = .interrupted
        message = "stopped by a signal at epoch \(stop.epoch), step \(stop.step)"
        break
      }
    }
    return TrialOutcome(setting: setting, status: status, message: message, epochs: epochs,
                        seconds: WallClock.now() - start, group: groupIndex)
  }

  /// The queue and the results, on world rank 0.
  final class Coordinator {
    let sweep: Sweep
    let observer: SweepObserver?
    var nextIndex = 0
    var outcomes: [TrialOutcome?]
    var epochs: [[JSON]]
    var groupsReleased = 0
    /// A trial was interrupted: no new one starts.
    var stopping = false
    /// When each group was last heard from (its leader's messages).
    var heard: [Double]
    /// Groups told that no setting is left.
    var released: Set<Int> = []

    init(sweep: Sweep, observer: SweepObserver?) {
      self.sweep = sweep
      self.observer = observer
      outcomes = Array(repeating: nil, count: sweep.settings.count)
      epochs = Array(repeating: [], count: sweep.settings.count)
      heard = Array(repeating: WallClock.now(), count: sweep.groups)
    }

    /// The next setting for `group`, or -1 when none is left or the sweep is stopping (the group is then released).
    func assign(group: Int) throws -> Int {
      guard nextIndex < sweep.settings.count && !stopping else {
        groupsReleased += 1
        released.insert(group)
        return -1
      }
      defer { nextIndex += 1 }
      observer?.trialStarted(sweep.settings[nextIndex], group: group)
      return nextIndex
    }

    func epoch(_ index: Int, _ metrics: JSON) {
      epochs[index].append(metrics)
      observer?.epochFinished(sweep.settings[index], metrics: metrics)
    }

    func finished(_ outcome: TrialOutcome) throws {
      var o = outcome
      o.setting = sweep.settings[outcome.setting.index]  // a `done` message names its setting by index only
      o.epochs = epochs[outcome.setting.index]
      outcomes[outcome.setting.index] = o
      if o.status == .interrupted { stopping = true }
      observer?.trialFinished(o)
    }

    func handle(_ bytes: [UInt8], from source: Int) throws {
      heard[source / sweep.ranksPerTrial] = WallClock.now()
      switch try Message.decode(bytes) {
      case .alive: break
      case .next(let group):
        let index = try assign(group: group)
        try sweep.world.send(Message.assignment(index), to: source, tag: Sweep.toLeader)
      case .epoch(let index, let metrics):
        epoch(index, metrics)
      case .done(let outcome):
        try finished(outcome)
      }
    }

    /// Answers every message waiting (called between rank 0's own training steps).
    func serve() throws {
      while try sweep.world.hasMessage(from: nil, tag: Sweep.toRoot) {
        let m = try sweep.world.receive(from: nil, tag: Sweep.toRoot)
        try handle(m.bytes, from: m.source)
      }
      if let timeout = sweep.stallTimeout { try checkSilence(timeout: timeout) }
    }

    /// After rank 0's own group is done: answer until every setting given out has finished and every group is
    /// released; with a stall timeout, a group not heard from for that long ends the sweep naming its ranks.
    func serveUntilDone() throws {
      var last = WallClock.now()
      while outcomes[0..<nextIndex].contains(where: { $0 == nil }) || groupsReleased < sweep.groups {
        guard let timeout = sweep.stallTimeout else {
          let m = try sweep.world.receive(from: nil, tag: Sweep.toRoot)
          try handle(m.bytes, from: m.source)
          continue
        }
        if try sweep.world.hasMessage(from: nil, tag: Sweep.toRoot) {
          let m = try sweep.world.receive(from: nil, tag: Sweep.toRoot)
          try handle(m.bytes, from: m.source)
          continue
        }
        let now = WallClock.now()
        // Woken after being stopped: the groups get a full timeout again.
        if now - last > 1 { heard = heard.map { _ in now } }
        last = now
        try checkSilence(timeout: timeout)
        usleep(1000)
      }
    }

    /// Throws naming the first group still at work that has not been heard from for `timeout` seconds.
    func checkSilence(timeout: Double) throws {
      let now = WallClock.now()
      for g in 1..<max(sweep.groups, 1) where now - heard[g] > timeout && !released.contains(g) {
        throw sweep.silence(Array(g * sweep.ranksPerTrial..<(g + 1) * sweep.ranksPerTrial), waited: now - heard[g])
      }
    }
  }

  /// The messages of the protocol, as JSON text.
  enum Message {
    case alive(group: Int)
    case next(group: Int)
    case epoch(setting: Int, metrics: JSON)
    case done(TrialOutcome)

    var bytes: [UInt8] {
      let o: JSON
      switch self {
      case .alive(let g): o = .object([("type", JSON("alive")), ("group", JSON(g))])
      case .next(let g): o = .object([("type", JSON("next")), ("group", JSON(g))])
      case .epoch(let s, let m): o = .object([("type", JSON("epoch")), ("setting", JSON(s)), ("metrics", m)])
      case .done(let t):
        o = .object([("type", JSON("done")), ("setting", JSON(t.setting.index)), ("status", JSON(t.status.rawValue)),
                     ("message", JSON(t.message)), ("seconds", JSON(t.seconds)), ("group", JSON(t.group))])
      }
      return Array(o.serialized().utf8)
    }

    static func assignment(_ index: Int) -> [UInt8] { Array("\(index)".utf8) }

    static func decodeAssignment(_ bytes: [UInt8]) throws -> Int {
      guard let i = Int(String(decoding: bytes, as: UTF8.self)) else { throw TrainingError("sweep: bad assignment message") }
      return i
    }
  }
}

extension Sweep.Message {
  /// Decodes a message to the coordinator (a `done` message carries no setting values: they are looked up).
  static func decode(_ bytes: [UInt8]) throws -> Sweep.Message {
    let o = try JSON.parse(String(decoding: bytes, as: UTF8.self))
    switch o["type"]?.string {
    case "alive": return .alive(group: o["group"]?.int ?? -1)
    case "next": return .next(group: o["group"]?.int ?? -1)
    case "epoch": return .epoch(setting: o["setting"]?.int ?? -1, metrics: o["metrics"] ?? .null)
    case "done":
      let index = o["setting"]?.int ?? -1
      return .done(TrialOutcome(
        setting: SweepSetting(index: index, weightDecay: 0, learningRate: 0, momentum: 0, batchSize: 0, varied: []),
        status: TrialOutcome.Status(rawValue: o["status"]?.string ?? "") ?? .finished,
        message: o["message"]?.string ?? "", epochs: [], seconds: o["seconds"]?.double ?? 0,
        group: o["group"]?.int ?? -1))
    default: throw TrainingError("sweep: unknown message \(o.serialized())")
    }
  }
}
