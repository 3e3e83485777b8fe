import Collectives
import Datasets
import Foundation
import Testing
import Training
import _Support
import _TestSupport

final class Recorder: SweepObserver {
  var started: [Int] = []
  var epochs: [Int: Int] = [:]
  func trialStarted(_ setting: SweepSetting, group: Int) { started.append(setting.index) }
  func epochFinished(_ setting: SweepSetting, metrics: JSON) { epochs[setting.index, default: 0] += 1 }
  func trialFinished(_ outcome: TrialOutcome) {}
}

@Suite struct SweepTests {
  func base(epochs: Int = 2, exchange: ExchangeSpec = ExchangeSpec()) -> TrainingConfig {
    var c = TrainingConfig(dataset: .mnist, model: ModelSpec(kind: .mlp, hidden: [8], activation: .tanh), loss: .crossEntropy,
                           optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9), batchSize: 12, epochs: epochs, seed: 4)
    c.exchange = exchange
    return c
  }

  func data() throws -> DataSplit { try syntheticImages(count: 60).holdingOutValidation(fraction: 0.2, seed: 4) }

  func run(world: Int, ranksPerTrial: Int, settings: [SweepSetting], epochs: Int = 2, exchange: ExchangeSpec = ExchangeSpec())
    throws -> (outcomes: [TrialOutcome], recorder: Recorder)
  {
    let recorder = Recorder()
    let data = try data()
    let results = try InProcessGroup.run(size: world) { comm -> [TrialOutcome] in
      let sweep = try Sweep(base: base(epochs: epochs, exchange: exchange), settings: settings, ranksPerTrial: ranksPerTrial,
                            data: data, world: comm)
      return try sweep.run(observer: comm.rank == 0 ? recorder : nil)
    }
    for r in results.dropFirst() { #expect(r.isEmpty, "only world rank 0 gathers the results") }
    return (results[0], recorder)
  }

  @Test func gridIsTheProductWeightDecayFirst() {
    let g = SweepSetting.grid(weightDecays: [0.1, 0.01], learningRates: [1, 2, 3], momenta: [0.9], batchSizes: [32])
    #expect(g.count == 6)
    #expect(g.map(\.weightDecay) == [0.1, 0.1, 0.1, 0.01, 0.01, 0.01])
    #expect(g.map(\.learningRate) == [1, 2, 3, 1, 2, 3])
    #expect(g[0].name == "wd=0.1 lr=1" && g[0].slug == "01_wd-0.1_lr-1")
    #expect(Set(g.map(\.slug)).count == 6)
  }

  /// 4 ranks in 2 groups of 2, 5 settings: every setting runs exactly once, each on one group.
  @Test func everySettingRunsExactlyOnceOnDisjointGroups() throws {
    let settings = SweepSetting.grid(weightDecays: [0, 1e-4, 1e-3, 1e-2, 1e-1], learningRates: [0.1], momenta: [0.9], batchSizes: [12])
    let (outcomes, recorder) = try run(world: 4, ranksPerTrial: 2, settings: settings)
    #expect(outcomes.map(\.setting.index) == [0, 1, 2, 3, 4])
    #expect(recorder.started.sorted() == [0, 1, 2, 3, 4])
    #expect(Set(outcomes.map(\.group)).isSubset(of: [0, 1]))
    #expect(outcomes.allSatisfy { $0.status == .finished && $0.epochs.count == 2 })
    #expect(recorder.epochs.values.allSatisfy { $0 == 2 })
    // The split itself: groups of 2 by rank / 2 are disjoint and cover the world.
    let members = try InProcessGroup.run(size: 4) { comm -> [Int64] in
      let g = try comm.split(color: comm.rank / 2, key: comm.rank)
      return try g.allGather(withUnsafeBytes(of: Int64(comm.rank)) { Array($0) }).map { $0.withUnsafeBytes { $0.load(as: Int64.self) } }
    }
    #expect(members == [[0, 1], [0, 1], [2, 3], [2, 3]])
  }

  @Test func aDivergingSettingDoesNotStopTheOthers() throws {
    let settings = SweepSetting.grid(weightDecays: [1e-3], learningRates: [0.1, 1e30, 0.05], momenta: [0], batchSizes: [12])
    let (outcomes, _) = try run(world: 2, ranksPerTrial: 1, settings: settings, epochs: 3)
    #expect(outcomes.map(\.status) == [.finished, .diverged, .finished])
    #expect(outcomes[1].message.contains("the training loss became"))
    #expect(outcomes[0].epochs.count == 3 && outcomes[2].epochs.count == 3)
    let summary = SweepSummary(outcomes: outcomes, task: .classification)
    #expect(summary.best != 1)
  }

  /// A setting inside a sweep (groups of 2 of a world of 4) gives exactly the metrics of a standalone run of the
  /// same setting on 2 ranks.
  /// With any exchange: a sweep group is its own communicator, and its trainers take the run's exchange.
  @Test(arguments: [ExchangeSpec(), ExchangeSpec(bucketBytes: 64), ExchangeSpec(compression: .powerSGD(rank: 1), warmupSteps: 1)])
  func aSettingInsideASweepEqualsAStandaloneRun(exchange: ExchangeSpec) throws {
    let settings = SweepSetting.grid(weightDecays: [1e-2, 1e-4], learningRates: [0.1], momenta: [0.9], batchSizes: [12])
    let (outcomes, _) = try run(world: 4, ranksPerTrial: 2, settings: settings, exchange: exchange)
    let data = try data()
    for s in settings {
      let standalone = try InProcessGroup.run(size: 2) { comm -> [JSON] in
        let t = try Trainer<Float>(config: s.apply(to: base(exchange: exchange)), data: data, communicator: comm)
        return try (0..<2).map { _ in try t.runEpoch().json }
      }[0]
      let inSweep = outcomes[s.index].epochs
      #expect(inSweep.count == standalone.count)
      for (a, b) in zip(inSweep, standalone) {
        for key in ["train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"] {
          #expect(a[key] == b[key], "\(s.name) \(key): \(a[key]!) vs \(b[key]!)")
        }
      }
    }
  }

  @Test func summaryPicksTheBestByValidationOnly() {
    func outcome(_ i: Int, val: [Double], test: [Double]) -> TrialOutcome {
      let s = SweepSetting(index: i, weightDecay: Double(i), learningRate: 0.1, momentum: 0, batchSize: 1, varied: ["weight_decay"])
      let rows = zip(val, test).enumerated().map { e, p in
        JSON.object([("epoch", JSON(e + 1)), ("train_loss", JSON(1.0)), ("train_acc", JSON(0.5)), ("val_loss", JSON(1 - p.0)),
                     ("val_acc", JSON(p.0)), ("test_loss", JSON(1 - p.1)), ("test_acc", JSON(p.1))])
      }
      return TrialOutcome(setting: s, status: .finished, message: "", epochs: rows, seconds: 1, group: 0)
    }
    // Setting 1 has the best test accuracy but not the best validation accuracy: it must not be chosen.
    let summary = SweepSummary(outcomes: [outcome(0, val: [0.8, 0.9, 0.85], test: [0.7, 0.8, 0.8]),
                                          outcome(1, val: [0.7, 0.8, 0.82], test: [0.9, 0.95, 0.99])], task: .classification)
    #expect(summary.best == 0)
    #expect(summary.rows[0].bestValidationEpoch == 2)
    #expect(summary.rows[0].value("best_val_acc") == 0.9 && summary.rows[0].value("final_val_acc") == 0.85)
    #expect(summary.rows[1].value("best_test_acc") == 0.99)
    #expect(summary.csv.split(separator: "\n").count == 3)
  }

  @Test func groupSizeMustDivideTheWorld() throws {
    #expect(throws: ConfigurationProblem.groupsDoNotDivide(ranksPerTrial: 2, worldSize: 3)) {
      _ = try InProcessGroup.run(size: 3) { comm in
        try Sweep(base: base(), settings: SweepSetting.grid(weightDecays: [0], learningRates: [0.1], momenta: [0], batchSizes: [4]),
                  ranksPerTrial: 2, data: try data(), world: comm)
      }
    }
  }
}
