import LeastSquares
import Experiments
import Collectives
import Datasets
import FileFormats
import Foundation
import Testing
import Training
import _Support
import _TestSupport

final class Recorder: SweepObserver {
  var started: [Int] = []
  var epochs: [Int: Int] = [:]
  var checkpoints: [Int: [UInt8]] = [:]
  var best: [Int: Int] = [:]
  var finished: [TrialOutcome] = []
  func trialStarted(_ trial: SweepTrial, group: Int, earlier: [EpochRecord]) { started.append(trial.index) }
  func epochFinished(_ trial: SweepTrial, metrics: EpochRecord) { epochs[trial.index, default: 0] += 1 }
  func checkpoint(_ trial: SweepTrial, bytes: [UInt8], best: Bool) {
    checkpoints[trial.index] = bytes
    if best { self.best[trial.index, default: 0] += 1 }
  }
  func trialFinished(_ outcome: TrialOutcome) { finished.append(outcome) }
}

@Suite struct SweepTests {
  func base(epochs: Int = 2, exchange: ExchangeSpec = ExchangeSpec()) -> TrainingConfig {
    var c = TrainingConfig(model: ModelSpec(kind: .mlp, hidden: [8], activation: .tanh), loss: .crossEntropy,
                           optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9), batchSize: 12, epochs: epochs, seed: 4)
    c.exchange = exchange
    return c
  }

  func data() throws -> DataSplit { try syntheticImages(count: 60).holdingOutValidation(fraction: 0.2, seed: 4) }

  /// A plan over one numeric option of the optimizer (weight-decay, lr or momentum), and its trials' specs.
  func specs(_ plan: SweepPlan, epochs: Int, exchange: ExchangeSpec = ExchangeSpec()) throws -> [TrialSpec] {
    let data = try data()
    return plan.trials.map { t in
      var c = base(epochs: epochs, exchange: exchange)
      c.seed = t.seed
      for pair in plan.settings[t.setting].values {
        let v = Double(pair[1])!
        switch pair[0] {
        case "weight-decay": c.optimizer.weightDecay = v
        case "lr": c.optimizer.learningRate = v
        case "momentum": c.optimizer.momentum = v
        default: Issue.record("no option \(pair[0]) in this test")
        }
      }
      return TrialSpec(config: c, data: data)
    }
  }

  func plan(_ option: String, _ values: [String], seeds: [UInt64] = [4]) throws -> SweepPlan {
    try SweepPlan.make(axes: [SweepAxis(option: option, values: .list(values))], seeds: seeds, samples: nil, seed: 0)
  }

  func run(world: Int, ranksPerTrial: Int, plan: SweepPlan, epochs: Int = 2, exchange: ExchangeSpec = ExchangeSpec(),
           configure: @escaping (Sweep) -> Void = { _ in }) throws -> (outcomes: [TrialOutcome], recorder: Recorder) {
    let recorder = Recorder()
    let specs = try specs(plan, epochs: epochs, exchange: exchange)
    let results = try InProcessGroup.run(size: world) { comm -> [TrialOutcome] in
      let sweep = try Sweep(plan: plan, trials: specs, ranksPerTrial: ranksPerTrial, world: comm)
      configure(sweep)
      return try sweep.run(observer: comm.rank == 0 ? recorder : nil)
    }
    for r in results.dropFirst() { #expect(r.isEmpty, "only world rank 0 gathers the results") }
    return (results[0], recorder)
  }

  @Test func gridIsTheProductFirstAxisSlowest() throws {
    let p = try SweepPlan.make(axes: [SweepAxis(option: "weight-decay", values: .list(["0.1", "0.01"])),
                                      SweepAxis(option: "optimizer", values: .list(["sgd", "adagrad", "lbfgs"]))],
                               seeds: [0], samples: nil, seed: 0)
    #expect(p.settings.count == 6)
    #expect(p.settings.map { $0.value("weight-decay")! } == ["0.1", "0.1", "0.1", "0.01", "0.01", "0.01"])
    #expect(p.settings.map { $0.value("optimizer")! } == ["sgd", "adagrad", "lbfgs", "sgd", "adagrad", "lbfgs"])
    #expect(p.name(p.settings[0]) == "wd=0.1 optimizer=sgd" && p.slug(p.settings[0]) == "01_wd-0.1_optimizer-sgd")
    #expect(Set(p.settings.map(p.slug)).count == 6)
    #expect(p.trials.map(\.folder) == p.settings.map { [p.slug($0)] })
  }

  @Test func aListOfLayersMakesAFolderNameWithoutSeparators() throws {
    let p = try plan("model", ["dense(32), relu, dense(10)", "../x"])
    #expect(p.settings.map(p.slug).allSatisfy { OutputFolder.isPlainName($0) && !$0.contains(" ") && !$0.contains(",") })
  }

  @Test func seedsRepeatEverySettingInFoldersOfTheirOwn() throws {
    let p = try plan("lr", ["0.1", "0.01"], seeds: [0, 1, 2])
    #expect(p.trials.count == 6)
    #expect(p.trials.map(\.seed) == [0, 1, 2, 0, 1, 2])
    #expect(p.trials[4].folder == ["02_lr-0.01", "seed-1"])
  }

  @Test func randomSearchDrawsWithinTheRangeAndRepeatsForItsSeed() throws {
    let axes = [SweepAxis(option: "weight-decay", values: .logUniform(1e-6, 1e-1)), SweepAxis(option: "lr", values: .uniform(0.01, 0.5)),
                SweepAxis(option: "optimizer", values: .list(["sgd", "adam"]))]
    let a = try SweepPlan.make(axes: axes, seeds: [0], samples: 40, seed: 7)
    let b = try SweepPlan.make(axes: axes, seeds: [0], samples: 40, seed: 7)
    let c = try SweepPlan.make(axes: axes, seeds: [0], samples: 40, seed: 8)
    #expect(a == b && a != c)
    let wd = a.settings.map { Double($0.value("weight-decay")!)! }, lr = a.settings.map { Double($0.value("lr")!)! }
    #expect(wd.allSatisfy { $0 >= 1e-6 && $0 <= 1e-1 } && lr.allSatisfy { $0 >= 0.01 && $0 <= 0.5 })
    // Log-uniform: about as many draws in each decade (here: some below 1e-4 and some above 1e-3 of 40).
    // (Uniform draws would put 0.1% of them below 1e-4.)
    #expect(wd.filter { $0 < 1e-4 }.count >= 5 && wd.filter { $0 > 1e-3 }.count >= 5, "\(wd)")
    #expect(Set(a.settings.map { $0.value("optimizer")! }) == ["sgd", "adam"])
    #expect(throws: SweepProblem.distributionNeedsSamples(option: axes[0].option)) { try SweepPlan.make(axes: axes, seeds: [0], samples: nil, seed: 0) }
  }

  /// 4 ranks in 2 groups of 2, 5 settings: every setting runs exactly once, each on one group.
  @Test func everySettingRunsExactlyOnceOnDisjointGroups() throws {
    let (outcomes, recorder) = try run(world: 4, ranksPerTrial: 2, plan: try plan("weight-decay", ["0", "1e-4", "1e-3", "1e-2", "1e-1"]))
    #expect(outcomes.map(\.trial.index) == [0, 1, 2, 3, 4])
    #expect(recorder.started.sorted() == [0, 1, 2, 3, 4])
    #expect(Set(outcomes.map(\.group)).isSubset(of: [0, 1]))
    #expect(outcomes.allSatisfy { $0.status == .finished && $0.epochs.count == 2 })
    #expect(recorder.epochs.values.allSatisfy { $0 == 2 })
    #expect(recorder.checkpoints.count == 5, "every trial's checkpoint reaches rank 0")
    // The split itself: groups of 2 by rank / 2 are disjoint and cover the world.
    let members = try InProcessGroup.run(size: 4) { comm -> [Int64] in
      let g = try comm.split(color: comm.rank / 2, key: comm.rank)
      return try g.allGather(withUnsafeBytes(of: Int64(comm.rank)) { Array($0) }).map { $0.withUnsafeBytes { $0.load(as: Int64.self) } }
    }
    #expect(members == [[0, 1], [0, 1], [2, 3], [2, 3]])
  }

  @Test func aDivergingSettingDoesNotStopTheOthers() throws {
    let (outcomes, _) = try run(world: 2, ranksPerTrial: 1, plan: try plan("lr", ["0.1", "1e30", "0.05"]), epochs: 3)
    #expect(outcomes.map(\.status.name) == ["finished", "diverged", "finished"], "\(outcomes[1].epochs)")
    if case .diverged(_, let reason) = outcomes[1].status { #expect(reason.contains("the training loss")) }
    #expect(outcomes[0].epochs.count == 3 && outcomes[2].epochs.count == 3)
    let summary = SweepSummary(outcomes: outcomes, plan: try plan("lr", ["0.1", "1e30", "0.05"]), task: .classification)
    #expect(summary.best != 1)
  }

  /// A finite loss that has grown by more than the factor counts as divergence, as NaN does.
  @Test func aLossBeyondTheDivergeFactorDiverges() {
    var m = RunMonitor(divergeFactor: 100)
    #expect(m.observe(epoch: 1, trainLoss: 2, watched: nil).stop == nil)
    #expect(m.observe(epoch: 2, trainLoss: 150, watched: nil).stop == nil)
    let stop = m.observe(epoch: 3, trainLoss: 1e29, watched: nil).stop
    #expect(stop?.name == "diverged")
    var fresh = RunMonitor()
    #expect(fresh.observe(epoch: 1, trainLoss: .nan, watched: nil).stop?.name == "diverged")
  }

  @Test func earlyStoppingWaitsPatienceEpochsAfterTheBest() {
    var m = RunMonitor(patience: 2)
    let losses = [1.0, 0.8, 0.7, 0.75, 0.72, 0.9]
    var stops: [RunStatus?] = []
    var improved: [Bool] = []
    for (i, l) in losses.enumerated() {
      let r = m.observe(epoch: i + 1, trainLoss: 1, watched: l)
      stops.append(r.stop)
      improved.append(r.improved)
    }
    #expect(improved == [true, true, true, false, false, false])
    #expect(stops.prefix(4).allSatisfy { $0 == nil })
    #expect(stops[4] == .stoppedEarly(epoch: 5, best: 3))
    // A resumed run replays its logged epochs and stops where the uninterrupted one would.
    var r = RunMonitor(patience: 2)
    r.replay(losses.prefix(4).enumerated().map {
      EpochRecord(epoch: $0.offset + 1, classification: true, train: .init(loss: 1), validation: .init(loss: $0.element), test: .init(loss: nil))
    })
    #expect(r.observe(epoch: 5, trainLoss: 1, watched: 0.72).stop == .stoppedEarly(epoch: 5, best: 3))
  }

  /// In a sweep, early stopping ends a trial with its best epoch's checkpoint kept.
  @Test func earlyStoppingInASweepKeepsTheBestCheckpoint() throws {
    let (outcomes, recorder) = try run(world: 2, ranksPerTrial: 1, plan: try plan("lr", ["3", "0.05"]), epochs: 12) { $0.patience = 1 }
    for o in outcomes where o.status.name == "stopped-early" {
      guard case .stoppedEarly(let e, let b) = o.status else { continue }
      #expect(o.epochs.count == e && b < e)
      #expect((recorder.best[o.trial.index] ?? 0) >= 1)
    }
    #expect(outcomes.contains { $0.status.name == "stopped-early" }, "\(outcomes.map(\.status))")
  }

  /// Successive halving: with four settings on four groups, half stop at epoch 1, and half of the rest at epoch 2.
  @Test func successiveHalvingStopsTheWorseHalfAtEachRung() throws {
    let p = try plan("lr", ["0.3", "1e-4", "0.1", "1e-5"])
    let (outcomes, _) = try run(world: 4, ranksPerTrial: 1, plan: p, epochs: 4) { $0.pruning = Pruning() }
    let pruned = outcomes.filter { $0.status.name == "pruned" }
    #expect(pruned.count == 3, "\(outcomes.map(\.status))")
    #expect(pruned.filter { $0.epochs.count == 1 }.count == 2 && pruned.filter { $0.epochs.count == 2 }.count == 1)
    #expect(outcomes.filter { $0.status == .finished }.count == 1)
    // The tiny learning rates are the ones stopped first.
    #expect(Set(pruned.filter { $0.epochs.count == 1 }.map(\.trial.setting)) == [1, 3])
    #expect(Pruning().isRung(1, of: 8) && Pruning().isRung(4, of: 8) && !Pruning().isRung(3, of: 8) && !Pruning().isRung(8, of: 8))
  }

  /// With more settings than groups, each is judged at a rung against those that reached it before (ASHA): no group
  /// waits, and some settings are still pruned.
  @Test func asynchronousHalvingWhenSettingsOutnumberGroups() throws {
    let p = try plan("lr", ["0.3", "1e-5", "0.1", "1e-6", "0.2", "1e-4"])
    let (outcomes, _) = try run(world: 2, ranksPerTrial: 1, plan: p, epochs: 4) { $0.pruning = Pruning() }
    #expect(outcomes.count == 6)
    #expect(outcomes.contains { $0.status.name == "pruned" })
    #expect(outcomes.contains { $0.status == .finished })
  }

  /// A rung prunes a setting with all its seeds, never one seed of it: every seed of a setting ends the same way after
  /// the same epochs, synchronously (every trial running at once) and asynchronously (ASHA), so a setting's mean
  /// and sd never mix runs of different lengths (issue 28, item 8).
  @Test(arguments: [(["0.3", "1e-5"], 4), (["0.3", "1e-4", "0.1", "1e-5"], 4), (["0.3", "1e-5", "0.1"], 2)])
  func halvingPrunesASettingWithAllItsSeeds(values: [String], world: Int) throws {
    let p = try plan("lr", values, seeds: [4, 5])
    let (outcomes, _) = try run(world: world, ranksPerTrial: 1, plan: p, epochs: 4) { $0.pruning = Pruning() }
    #expect(outcomes.count == 2 * values.count)
    #expect(outcomes.contains { $0.status.name == "pruned" }, "\(outcomes.map(\.status))")
    for setting in values.indices {
      let seeds = outcomes.filter { $0.trial.setting == setting }
      #expect(Set(seeds.map(\.status.name)).count == 1 && Set(seeds.map(\.epochs.count)).count == 1,
              "setting \(values[setting]): \(seeds.map { "\($0.status) after \($0.epochs.count) epochs" })")
    }
  }

  /// Hyperband (eta 3): for 9 epochs three brackets with rungs at 1 and 3, at 3, and none; settings dealt to them
  /// in Hyperband's proportions (9, 5 and 3 of every 17); each setting ranked within its bracket, stopped only at its
  /// bracket's rungs, with all its seeds.
  @Test func hyperbandPrunesWithinBrackets() throws {
    let h = Pruning.hyperband(epochs: 9)
    #expect(h.brackets == 3 && h.reduction == 3 && Pruning.hyperband(epochs: 2).brackets == 1 && Pruning.hyperband(epochs: 27).brackets == 4)
    let dealt = (0..<17).map { h.bracket(ofSetting: $0) }
    #expect([0, 1, 2].map { b in dealt.filter { $0 == b }.count } == [9, 5, 3] && Array(dealt.prefix(4)) == [0, 1, 0, 2])
    #expect(h.isRung(1, of: 9, bracket: 0) && h.isRung(3, of: 9, bracket: 0) && !h.isRung(2, of: 9, bracket: 0))
    #expect(!h.isRung(1, of: 9, bracket: 1) && h.isRung(3, of: 9, bracket: 1) && !h.isRung(9, of: 9, bracket: 2))
    let values = ["0.3", "1e-5", "0.1", "1e-6", "0.2", "1e-4", "3e-6", "0.05"]
    let p = try plan("lr", values, seeds: [4, 5])
    let (outcomes, _) = try run(world: 2, ranksPerTrial: 1, plan: p, epochs: 9) { $0.pruning = h }
    #expect(outcomes.count == 2 * values.count && outcomes.contains { $0.status.name == "pruned" })
    for setting in values.indices {
      let seeds = outcomes.filter { $0.trial.setting == setting }, bracket = h.bracket(ofSetting: setting)
      #expect(Set(seeds.map(\.status.name)).count == 1 && Set(seeds.map(\.epochs.count)).count == 1, "setting \(values[setting])")
      for o in seeds where o.status.name == "pruned" {
        #expect(h.isRung(o.epochs.count, of: 9, bracket: bracket), "setting \(values[setting]) in bracket \(bracket) pruned after \(o.epochs.count)")
      }
      if bracket == 2 { #expect(seeds.allSatisfy { $0.status == .finished }) }
    }
    // A sweep.json written before Hyperband reads as one bracket.
    #expect(try JSONDecoder().decode(Pruning.self, from: Data(#"{"reduction": 2}"#.utf8)) == Pruning())
  }

  /// A sweep resumed from its trials' checkpoints ends exactly where the uninterrupted one does.
  @Test func aResumedSweepEqualsTheUninterruptedOne() throws {
    let p = try plan("weight-decay", ["1e-3", "1e-2"])
    let (whole, _) = try run(world: 2, ranksPerTrial: 1, plan: p, epochs: 3)
    // The first run: trial 0 finishes, trial 1 is cut after epoch 1 (its checkpoint of epoch 1 is what the resume has).
    let (short, recorder) = try run(world: 2, ranksPerTrial: 1, plan: p, epochs: 1)
    let specs = try specs(p, epochs: 3)
    let resumed = try InProcessGroup.run(size: 2) { comm -> [TrialOutcome] in
      let sweep = try Sweep(plan: p, trials: specs, ranksPerTrial: 1, world: comm)
      if comm.rank == 0 {
        sweep.progress = [0: TrialProgress(status: .finished, epochs: whole[0].epochs, checkpoint: nil, seconds: 1),
                          1: TrialProgress(status: nil, epochs: short[1].epochs, checkpoint: recorder.checkpoints[1], seconds: 1)]
      }
      return try sweep.run()
    }[0]
    #expect(resumed[0].group == -1, "a finished trial is kept, not run again")
    #expect(resumed[1].epochs.count == 3)
    for (a, b) in zip(resumed[1].epochs, whole[1].epochs) {
      #expect(a.epoch == b.epoch && a.train.loss == b.train.loss && a.validation == b.validation && a.test.loss == b.test.loss)
    }
  }

  /// A setting inside a sweep (groups of 2 of a world of 4) gives exactly the metrics of a standalone run of the
  /// same setting on 2 ranks.
  /// With any exchange: a sweep group is its own communicator, and its trainers take the run's exchange.
  @Test(arguments: [ExchangeSpec(), ExchangeSpec(bucketBytes: 64), ExchangeSpec(compression: .powerSGD(rank: 1), warmupSteps: 1)])
  func aSettingInsideASweepEqualsAStandaloneRun(exchange: ExchangeSpec) throws {
    let p = try plan("weight-decay", ["1e-2", "1e-4"])
    let (outcomes, _) = try run(world: 4, ranksPerTrial: 2, plan: p, exchange: exchange)
    for spec in try specs(p, epochs: 2, exchange: exchange).enumerated() {
      let standalone = try InProcessGroup.run(size: 2) { comm -> [EpochRecord] in
        let t = try Trainer<Float>(config: spec.element.config, data: spec.element.data, communicator: comm)
        return try (0..<2).map { _ in try t.runEpoch().record }
      }[0]
      let inSweep = outcomes[spec.offset].epochs
      #expect(inSweep.count == standalone.count)
      for (a, b) in zip(inSweep, standalone) {
        #expect(a.train == b.train && a.validation == b.validation && a.test == b.test, "\(spec.offset): \(a) vs \(b)")
      }
    }
  }

  static func rows(val: [Double], test: [Double], train: [Double]? = nil) -> [EpochRecord] {
    zip(val, test).enumerated().map { e, p in
      EpochRecord(epoch: e + 1, classification: true, train: .init(loss: train?[e] ?? 1.0, accuracy: 0.5),
                  validation: .init(loss: 1 - p.0, accuracy: p.0), test: .init(loss: 1 - p.1, accuracy: p.1))
    }
  }

  @Test func summaryPicksTheBestByValidationOnly() throws {
    let p = try plan("weight-decay", ["0", "1"])
    let outcomes = [TrialOutcome(trial: p.trials[0], status: .finished, epochs: Self.rows(val: [0.8, 0.9, 0.85], test: [0.7, 0.8, 0.8]), seconds: 1, group: 0),
                    TrialOutcome(trial: p.trials[1], status: .finished, epochs: Self.rows(val: [0.7, 0.8, 0.82], test: [0.9, 0.95, 0.99]), seconds: 1, group: 0)]
    // Setting 1 has the best test accuracy but not the best validation accuracy: it must not be chosen.
    let summary = SweepSummary(outcomes: outcomes, plan: p, task: .classification)
    #expect(summary.best == 0)
    #expect(summary.rows[0].bestValidationEpoch == 2)
    #expect(summary.rows[0].value("best_val_acc") == 0.9 && summary.rows[0].value("final_val_acc") == 0.85)
    #expect(summary.rows[1].value("best_test_acc") == 0.99)
    #expect(summary.csv.split(separator: "\n").count == 3)
    let json = summary.json()
    #expect(json["settings"]?.array?[0]["weight_decay"]?.double == 0, "a key per axis, dashes as underscores")
    #expect(json["runner_up"]?.string == "wd=1" && json["tie"]?.bool == false)
  }

  /// With seeds, a row is the mean of its runs with their standard deviation, and a margin within it is a tie.
  @Test func seedsGiveMeansSpreadsAndTies() throws {
    let p = try plan("weight-decay", ["0", "1"], seeds: [0, 1])
    let vals: [[Double]] = [[0.80, 0.90], [0.86, 0.80], [0.84, 0.87], [0.83, 0.85]]
    let outcomes = p.trials.map { t in
      TrialOutcome(trial: t, status: .finished, epochs: Self.rows(val: vals[t.index], test: [0.5, 0.5]), seconds: 1, group: 0)
    }
    let summary = SweepSummary(outcomes: outcomes, plan: p, task: .classification)
    // Best val acc per run: 0.9, 0.86 (mean 0.88, sd 0.028); 0.87, 0.85 (mean 0.86).
    #expect(abs(summary.rows[0].value("best_val_acc")! - 0.88) < 1e-12)
    #expect(abs(summary.rows[0].spread("best_val_acc")! - (0.0008).squareRoot()) < 1e-12)
    #expect(summary.best == 0)
    #expect(summary.runnerUp?.tie == true, "0.02 apart with an sd of 0.028 is within the noise")
    let row = summary.json()["settings"]?.array?[0]
    #expect(row?["best_val_acc_sd"]?.double != nil && row?["seeds"]?.array?.count == 2 && row?["runs"]?.array?.count == 2)
    #expect(Findings.sweep(summary).first?.kind == "tie")
  }

  @Test func findingsSayWhatTheCurvesShow() throws {
    // Overfitting: the validation loss is lowest at epoch 3, then rises while the training loss keeps falling.
    let val = [0.60, 0.70, 0.75, 0.72, 0.68, 0.65], train = [0.9, 0.7, 0.5, 0.4, 0.3, 0.2]
    let over = Findings.run(Self.rows(val: val, test: val, train: train), task: .classification, status: .finished)
    let overfit = try #require(over.first { $0.kind == "overfit" })
    #expect(overfit.evidence.contains("lowest at epoch 3"))
    #expect(overfit.evidence.contains("twice its epoch-to-epoch jitter"))
    // Issue 31's false alarm: a large step's noise. The validation loss goes 0.4419 -> 0.4973 (12%) but up and down
    // by about 0.06 between epochs, and the training loss barely falls (0.3591 -> 0.3569): noisy, not over-fitting.
    let noisyVal = [0.60, 0.52, 0.47, 0.4419, 0.50, 0.45, 0.51, 0.46, 0.52, 0.4973]
    let noisyTrain = [0.55, 0.45, 0.40, 0.3591, 0.42, 0.36, 0.41, 0.35, 0.40, 0.3569]
    let noisy = Findings.run(zip(noisyVal, noisyTrain).enumerated().map { e, p in
      EpochRecord(epoch: e + 1, classification: true, train: .init(loss: p.1, accuracy: 0.8),
                  validation: .init(loss: p.0, accuracy: 0.8), test: .init(loss: p.0, accuracy: 0.8))
    }, task: .classification, status: .finished)
    #expect(!noisy.contains { $0.kind == "overfit" })
    let said = try #require(noisy.first { $0.kind == "noisy" })
    #expect(said.evidence.contains("lowest at epoch 4") && said.evidence.contains("jitter"), "\(said.evidence)")
    // A steady trend has no jitter; a curve up and down by 1 has a jitter of 1.
    #expect(Findings.jitter([1, 1.1, 1.2, 1.3]) < 1e-12 && abs(Findings.jitter([0, 1, 0, 1, 0]) - 1) < 1e-12)
    // Unstable: accuracy swinging up and down.
    let swing = [0.5, 0.7, 0.4, 0.8, 0.3, 0.75, 0.35, 0.8]
    #expect(Findings.run(Self.rows(val: swing, test: swing), task: .classification, status: .finished).contains { $0.kind == "unstable" })
    // Not converged: the training loss still falling steeply at the end.
    let falling = [1.0, 0.8, 0.6, 0.45, 0.33, 0.25, 0.19, 0.14]
    let flat = Array(repeating: 0.5, count: 8)
    #expect(Findings.run(Self.rows(val: flat, test: flat, train: falling), task: .classification, status: .finished).contains { $0.kind == "not-converged" })
    #expect(!Findings.run(Self.rows(val: flat, test: flat, train: flat), task: .classification, status: .finished).contains { $0.kind == "not-converged" })
    // Diverged: said with its epoch and reason.
    let d = Findings.run([], task: .classification, status: .diverged(epoch: 4, reason: "the training loss is nan"))
    #expect(d == [Finding(kind: "diverged", evidence: "stopped at epoch 4: the training loss is nan")])
  }

  @Test func groupSizeMustDivideTheWorld() throws {
    let p = try plan("weight-decay", ["0"])
    let specs = try specs(p, epochs: 1)
    #expect(throws: SweepProblem.groupsDoNotDivide(ranksPerTrial: 2, worldSize: 3)) {
      _ = try InProcessGroup.run(size: 3) { comm in try Sweep(plan: p, trials: specs, ranksPerTrial: 2, world: comm) }
    }
  }
}
