import Collectives
import FileFormats
import Layers
import Optimizers
import Foundation
import _Support

/// One training run from its first epoch (or where a checkpoint left it) to its end: the epoch loop, the checkpoint
/// policy, early stopping, divergence, convergence, and what a signal or a non-finite loss does. `dpt train`, each
/// trial of `dpt sweep` and a program of one's own run the same loop; what they show or keep is up to their
/// `RunObserver`s.
///
/// Decisions are rank 0's: after each epoch rank 0 (which holds a resumed run's logged epochs) observes the metrics,
/// asks the observers whether to stop, and says whether to take a checkpoint; every rank of the communicator receives
/// the same verdict, so all stop after the same epoch and take part in the same checkpoints.
public final class Run {
  public let trainer: Trainer<Float>
  public var checkpoints: CheckpointPolicy
  /// Early stopping: epochs without improvement of the watched loss (validation, else test) before stopping.
  public var patience: Int?
  /// Divergence: a training loss above this many times the first one ends the run.
  public var divergeFactor: Double
  /// The settings every checkpoint records (config.json's object).
  public var recordedConfig: JSON
  /// The logged epochs of the run a checkpoint continues (needed on rank 0 only): early stopping and divergence go
  /// on from them.
  public var earlier: [EpochRecord] = []
  /// The epochs this run trained, in order.
  public private(set) var history: [EpochMetrics] = []

  public init(trainer: Trainer<Float>, checkpoints: CheckpointPolicy = CheckpointPolicy(), patience: Int? = nil,
              divergeFactor: Double = 1e4, recordedConfig: JSON? = nil) {
    self.trainer = trainer
    self.checkpoints = checkpoints
    self.patience = patience
    self.divergeFactor = divergeFactor
    self.recordedConfig = recordedConfig ?? trainer.recordedConfig
  }

  /// Trains until the last epoch or a reason to stop, telling `observers` (in their order, on every rank) as it
  /// goes. A non-finite loss ends the run as diverged (the outcome keeps the error); a signal, as interrupted, after
  /// a checkpoint when the policy asks for one; a collective that gave up throws.
  public func execute(observers: [any RunObserver] = []) throws -> RunOutcome {
    let comm = trainer.communicator
    var monitor = RunMonitor(patience: patience, divergeFactor: divergeFactor,
                             skipsNonFinite: trainer.config.onNonFinite == .skipBatch)
    if comm.isRoot { monitor.replay(earlier) }
    var sinceCheckpoint = 0.0, checkpointCost = 0.0
    var savedStep = trainer.step
    func takeCheckpoint(regular: Bool, best: Bool) throws {
      let started = WallClock.now()
      var c = try trainer.checkpoint()  // on every rank: a sharded optimizer's state is gathered
      c.config = recordedConfig
      for o in observers { try o.checkpointTaken(self, c, regular: regular, best: best) }
      trainer.timeline?.record("checkpoint", category: "epoch", from: started)
      if regular {
        checkpointCost = WallClock.now() - started
        sinceCheckpoint = 0
        savedStep = trainer.step
      }
    }
    let previousAfterStep = trainer.afterStep
    trainer.afterStep = { [unowned self] in
      try previousAfterStep?()
      for o in observers { try o.stepEnded(self) }
      if let n = checkpoints.everySteps, trainer.step % n == 0 { try takeCheckpoint(regular: true, best: false) }
    }
    defer { trainer.afterStep = previousAfterStep }
    for o in observers { try o.runWillStart(self) }

    var outcome = RunOutcome(status: .finished)
    while trainer.epoch < trainer.config.epochs {
      if trainer.stopAgreed {
        outcome.status = .interrupted
        outcome.stoppedAt = (trainer.epoch, trainer.batchesPerEpoch)
        break
      }
      trainer.resetPhaseTimes()
      let epoch = trainer.epoch + 1, started = WallClock.now()
      let m: EpochMetrics
      do {
        m = try trainer.runEpoch { step, steps in for o in observers { o.progress(self, epoch: epoch, step: step, steps: steps) } }
      } catch let stop as StopRequested {
        outcome.status = .interrupted
        outcome.stoppedAt = (stop.epoch, stop.step)
        break
      } catch let n as NonFiniteLoss {
        // Every rank computed the same all-reduced loss, so every rank ends here together.
        outcome.status = .diverged(epoch: n.epoch, reason: "\(n)")
        outcome.nonFinite = n
        break
      }
      sinceCheckpoint += WallClock.now() - started
      history.append(m)
      for o in observers { try o.epochEnded(self, m) }
      var verdict = Verdict()
      if comm.isRoot {
        let (improved, stop) = monitor.observe(m)
        verdict.stop = stop ?? trainer.converged.map { .converged(iteration: trainer.step, reason: $0) }
        for o in observers where verdict.stop == nil { verdict.stop = try o.verdict(self, after: m) }
        verdict.best = improved && checkpoints.best && patience != nil
        verdict.regular = checkpoints.everyEpoch && sinceCheckpoint >= checkpoints.waitFactor * checkpointCost
      }
      if comm.size > 1 { verdict = try Verdict(bytes: try comm.broadcast(bytes: verdict.bytes, root: 0)) }
      if verdict.regular || verdict.best { try takeCheckpoint(regular: verdict.regular, best: verdict.best) }
      if let stop = verdict.stop {
        outcome.status = stop
        break
      }
    }
    if outcome.status == .interrupted, checkpoints.onInterrupt, trainer.step != savedStep {
      try takeCheckpoint(regular: true, best: false)
    }
    switch outcome.status {
    case .finished, .stoppedEarly, .converged:
      if checkpoints.atEnd, trainer.step != savedStep { try takeCheckpoint(regular: true, best: false) }
    default: break
    }
    outcome.history = history
    for o in observers { try o.runEnded(self, outcome) }
    return outcome
  }

  /// Rank 0's word after an epoch.
  struct Verdict {
    var stop: RunStatus?
    var regular = false
    var best = false

    init() {}

    var bytes: [UInt8] {
      Array(JSON.object([("stop", stop?.json ?? .null), ("regular", .bool(regular)), ("best", .bool(best))]).serialized().utf8)
    }

    init(bytes: [UInt8]) throws {
      let o = try JSON.parse(bytes: bytes[...])
      stop = o["stop"].flatMap(RunStatus.init(json:))
      regular = o["regular"]?.bool ?? false
      best = o["best"]?.bool ?? false
    }
  }
}

/// When a run takes checkpoints: the same policy on every rank. Each is built on every rank (a sharded optimizer's state is gathered) and handed to
/// the observers, which write or send it.
public struct CheckpointPolicy: Sendable {
  /// After every epoch (or as many as `maxShare` allows).
  public var everyEpoch: Bool
  /// Also after every this many optimizer steps.
  public var everySteps: Int?
  /// When the watched loss improves, under early stopping: the best epoch's weights.
  public var best: Bool
  /// The most of the run's time the epochs' checkpoints may take (with L-BFGS's history one holds hundreds of MB):
  /// an epoch's checkpoint waits until the training since the last one took (1 / share - 1) times its cost. 1: every
  /// epoch.
  public var maxShare: Double
  /// When a signal stops the run after steps no checkpoint holds yet.
  public var onInterrupt: Bool
  /// When the run ends (finished, stopped early, converged) after steps no checkpoint holds yet: whatever continues
  /// it needs its last state (population-based training's next segment).
  public var atEnd: Bool

  public init(everyEpoch: Bool = false, everySteps: Int? = nil, best: Bool = false, maxShare: Double = 1, onInterrupt: Bool = false,
              atEnd: Bool = false) {
    self.everyEpoch = everyEpoch
    self.everySteps = everySteps
    self.best = best
    self.maxShare = maxShare
    self.onInterrupt = onInterrupt
    self.atEnd = atEnd
  }

  /// Training time per unit of checkpoint time before the next epoch's checkpoint.
  var waitFactor: Double { maxShare >= 1 ? 0 : 1 / max(maxShare, 1e-9) - 1 }
}

/// How a run ended.
public struct RunOutcome {
  public var status: RunStatus
  /// For an interrupted run: the epoch (1-based) and the step in it after which every rank stopped.
  public var stoppedAt: (epoch: Int, step: Int)?
  /// For a run that diverged because the loss stopped being a number: the error, with its step and learning rate.
  public var nonFinite: NonFiniteLoss?
  /// Every epoch the run trained.
  public var history: [EpochMetrics] = []

  public init(status: RunStatus) { self.status = status }
}

/// What a run tells those who watch it. Every method is called on every rank of the run's communicator, in the order
/// the observers were given (so an observer may take part in collectives); work of rank 0 alone checks
/// `run.trainer.communicator.isRoot`. Every method has a default that does nothing.
public protocol RunObserver: AnyObject {
  /// Before the first epoch.
  func runWillStart(_ run: Run) throws
  /// After each optimizer step.
  func stepEnded(_ run: Run) throws
  /// During an epoch: `step` of `steps` done.
  func progress(_ run: Run, epoch: Int, step: Int, steps: Int)
  /// After each epoch, with its metrics (the same on every rank).
  func epochEnded(_ run: Run, _ metrics: EpochMetrics) throws
  /// On rank 0 only, after an epoch nothing else stopped: a reason to stop now (a sweep's successive halving).
  func verdict(_ run: Run, after metrics: EpochMetrics) throws -> RunStatus?
  /// A checkpoint of this step: `regular` for the run's own (every epoch or N steps, or at a signal), `best` for the
  /// best epoch's weights under early stopping.
  func checkpointTaken(_ run: Run, _ checkpoint: Checkpoint, regular: Bool, best: Bool) throws
  /// After the last epoch, or whatever stopped the run (not after a thrown error).
  func runEnded(_ run: Run, _ outcome: RunOutcome) throws
}

extension RunObserver {
  public func runWillStart(_ run: Run) throws {}
  public func stepEnded(_ run: Run) throws {}
  public func progress(_ run: Run, epoch: Int, step: Int, steps: Int) {}
  public func epochEnded(_ run: Run, _ metrics: EpochMetrics) throws {}
  public func verdict(_ run: Run, after metrics: EpochMetrics) throws -> RunStatus? { nil }
  public func checkpointTaken(_ run: Run, _ checkpoint: Checkpoint, regular: Bool, best: Bool) throws {}
  public func runEnded(_ run: Run, _ outcome: RunOutcome) throws {}
}

/// Writes a run's checkpoints (rank 0): the regular ones as `folder`/checkpoint.dptc, the best epoch's as
/// `bestFolder`/best.dptc. Both replace the file whole (written beside it, then renamed).
public final class CheckpointFiles: RunObserver {
  public let folder: OutputFolder?
  public let bestFolder: OutputFolder?
  public static let bestName = "best.dptc"

  public init(folder: OutputFolder?, bestFolder: OutputFolder?) {
    self.folder = folder
    self.bestFolder = bestFolder
  }

  public func checkpointTaken(_ run: Run, _ checkpoint: Checkpoint, regular: Bool, best: Bool) throws {
    guard run.trainer.communicator.isRoot else { return }
    if regular, let folder { try checkpoint.write(to: folder) }
    if best, let bestFolder { try bestFolder.write(CheckpointFiles.bestName, Data(checkpoint.encoded())) }
  }
}
