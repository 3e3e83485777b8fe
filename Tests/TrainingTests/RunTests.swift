import Collectives
import Datasets
import FileFormats
import Foundation
import Testing
import Training
import _TestSupport

/// `Run`, the epoch loop of `dpt train`, each sweep trial and a program of one's own: the same verdict on every rank,
/// its checkpoint policy, early stopping, divergence, and signals.
@Suite struct RunTests {
  /// What an observer saw, in order, on one rank.
  final class Recorder: RunObserver {
    var events: [String] = []
    var stopAt: Int?
    func runWillStart(_ run: Run) throws { events.append("start") }
    func epochEnded(_ run: Run, _ m: EpochMetrics) throws { events.append("epoch \(m.epoch)") }
    func verdict(_ run: Run, after m: EpochMetrics) throws -> RunStatus? {
      m.epoch == stopAt ? .pruned(epoch: m.epoch) : nil
    }
    func checkpointTaken(_ run: Run, _ c: Checkpoint, regular: Bool, best: Bool) throws {
      events.append("checkpoint \(c.epoch).\(c.batch)\(regular ? " regular" : "")\(best ? " best" : "")")
    }
    func runEnded(_ run: Run, _ outcome: RunOutcome) throws { events.append("end \(outcome.status.name)") }
  }

  func config(epochs: Int, lr: Double = 0.2) -> TrainingConfig {
    var c = Fixtures.smallMLP(batchSize: 10, epochs: epochs)
    c.optimizer.learningRate = lr
    return c
  }

  /// Runs on `size` ranks; returns each rank's events and outcome.
  func run(size: Int, _ c: TrainingConfig, policy: CheckpointPolicy = CheckpointPolicy(), patience: Int? = nil,
           divergeFactor: Double = 1e4, stopAt: Int? = nil, setUp: ((Trainer<Float>) -> Void)? = nil) throws
    -> [(events: [String], outcome: RunOutcome)] {
    let data = Fixtures.classification()
    return try InProcessGroup.run(size: size) { comm -> ([String], RunOutcome) in
      let trainer = try Trainer<Float>(config: c, data: data, communicator: comm)
      setUp?(trainer)
      let recorder = Recorder()
      // Only rank 0's verdict counts: the other ranks' observers would stop elsewhere, and must not be asked.
      recorder.stopAt = comm.isRoot ? stopAt : 1
      let outcome = try Run(trainer: trainer, checkpoints: policy, patience: patience, divergeFactor: divergeFactor)
        .execute(observers: [recorder])
      return (recorder.events, outcome)
    }.map { (events: $0.0, outcome: $0.1) }
  }

  @Test func everyRankSeesTheSameRunAndRankZerosVerdict() throws {
    let results = try run(size: 3, config(epochs: 5), policy: CheckpointPolicy(everyEpoch: true), stopAt: 3)
    let expected = ["start", "epoch 1", "checkpoint 1.0 regular", "epoch 2", "checkpoint 2.0 regular", "epoch 3",
                    "checkpoint 3.0 regular", "end pruned"]
    for r in results {
      #expect(r.events == expected)
      #expect(r.outcome.status == .pruned(epoch: 3) && r.outcome.history.count == 3)
    }
  }

  @Test func aRunTrainsItsEpochsAsTheTrainerDoes() throws {
    let c = config(epochs: 3)
    let byRun = try run(size: 2, c)[0].outcome.history.map(\.train.loss)
    let data = Fixtures.classification()
    let byHand = try InProcessGroup.run(size: 2) { comm -> [Double] in
      let t = try Trainer<Float>(config: c, data: data, communicator: comm)
      return try (0..<3).map { _ in try t.runEpoch().train.loss }
    }[0]
    #expect(byRun == byHand)
  }

  @Test func checkpointsEveryNStepsAndAtTheBestEpoch() throws {
    // 50 rows, batch 10: 5 steps an epoch; every 4 steps is 4, 8, 12 (epoch 3, batch 2).
    let r = try run(size: 2, config(epochs: 3), policy: CheckpointPolicy(everySteps: 4, best: true), patience: 5)
    let checkpoints = r[0].events.filter { $0.hasPrefix("checkpoint") }
    #expect(checkpoints.contains("checkpoint 0.4 regular") && checkpoints.contains("checkpoint 1.3 regular")
            && checkpoints.contains("checkpoint 2.2 regular"), "\(checkpoints)")
    // The first epoch always improves on nothing: its weights are the best so far.
    #expect(checkpoints.contains("checkpoint 1.0 best"), "\(checkpoints)")
    #expect(!checkpoints.contains { $0.hasSuffix("regular best") }, "no epoch checkpoints were asked for: \(checkpoints)")
  }

  @Test func theCheckpointShareBoundsEpochCheckpoints() throws {
    // A share of almost nothing: after the first epoch's checkpoint, the next waits for (1/share - 1) times its cost.
    let r = try run(size: 1, config(epochs: 4), policy: CheckpointPolicy(everyEpoch: true, maxShare: 1e-6))
    #expect(r[0].events.filter { $0.hasPrefix("checkpoint") } == ["checkpoint 1.0 regular"], "\(r[0].events)")
  }

  @Test func aLossThatGrowsStopsTheRunOnEveryRank() throws {
    let r = try run(size: 2, config(epochs: 6, lr: 40), divergeFactor: 1.01)
    for x in r {
      guard case .diverged(let epoch, let reason) = x.outcome.status else {
        Issue.record("\(x.outcome.status)")
        continue
      }
      #expect(epoch < 6 && x.events.last == "end diverged", "\(reason)")
    }
    #expect(r[0].outcome.status == r[1].outcome.status)
  }

  @Test func aNonFiniteLossEndsTheRunWithItsError() throws {
    let r = try run(size: 2, config(epochs: 3, lr: 1e30))
    for x in r {
      #expect(x.outcome.status.name == "diverged" && x.outcome.nonFinite != nil, "\(x.outcome.status)")
      #expect(x.events.last == "end diverged")
    }
  }

  @Test func earlyStoppingStopsWhereTheWatchedLossStoppedImproving() throws {
    // A learning rate so large that the test loss jumps about: patience 1 stops at the first epoch it fails to fall.
    let r = try run(size: 2, config(epochs: 30, lr: 3), patience: 1)
    guard case .stoppedEarly(let epoch, let best) = r[0].outcome.status else {
      Issue.record("ran to the end: \(r[0].outcome.history.map { $0.test!.loss })")
      return
    }
    #expect(epoch == best + 1 && epoch < 30)
    let losses = r[0].outcome.history.map { $0.test!.loss }
    #expect(losses[epoch - 1] >= losses[best - 1])
  }

  @Test func aSignalStopsEveryRankAfterTheSameStepAndCheckpointsIt() throws {
    // The "signal" arrives on rank 1 alone, during its 7th step; the ranks agree after it.
    let r = try run(size: 2, config(epochs: 4), policy: CheckpointPolicy(everyEpoch: true, onInterrupt: true)) { trainer in
      var asked = 0
      if trainer.rank == 1 { trainer.stopRequested = { asked += 1; return asked >= 7 } } else { trainer.stopRequested = { false } }
    }
    for x in r {
      guard let at = x.outcome.stoppedAt else {
        Issue.record("not interrupted: \(x.outcome.status)")
        continue
      }
      #expect(x.outcome.status == .interrupted && at.epoch == 2 && at.step == 2, "\(at)")
      #expect(Array(x.events.suffix(2)) == ["checkpoint 1.2 regular", "end interrupted"], "\(x.events)")
    }
  }
}
