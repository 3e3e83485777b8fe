import Collectives
import Datasets
import Experiments
import Foundation
import Testing
import Training
import _Support
import _TestSupport

/// A search that learns: two learning rates to start, then, each time a group is free, the best one so far halved.
/// It records how many results it had each time it was asked.
struct BestHalved: Searcher {
  static let name = "best-halved"
  var proposed = 0
  var asked: [Int] = []
  init(axes: [SweepAxis], samples: Int?, seed: UInt64) {}
  var budget: Int? { nil }

  mutating func next(history: [SearchResult]) -> [(String, String)]? {
    guard proposed < 4 else { return nil }
    asked.append(history.count)
    defer { proposed += 1 }
    if proposed < 2 { return [("lr", ["0.2", "0.02"][proposed])] }
    let best = history.filter { $0.score != nil }.max { $0.score! < $1.score! }!
    return [("lr", String(Double(best.setting.value("lr")!)! / 2))]
  }
}

@Suite struct SearcherTests {
  @Test func aGridAndARandomSearchProposeWhatTheFixedPlansHeld() throws {
    let axes = [SweepAxis(option: "weight-decay", values: .list(["0", "1e-3"])), SweepAxis(option: "lr", values: .list(["0.1", "0.2", "0.3"]))]
    var grid = try GridSearch(axes: axes, samples: nil, seed: 0)
    var got: [[String]] = []
    while let v = grid.next(history: []) { got.append(v.map(\.1)) }
    #expect(got == [["0", "0.1"], ["0", "0.2"], ["0", "0.3"], ["1e-3", "0.1"], ["1e-3", "0.2"], ["1e-3", "0.3"]])
    #expect(grid.budget == 6 && grid.proposed == 6)
    let drawn = [SweepAxis(option: "lr", values: .logUniform(1e-4, 1)), SweepAxis(option: "momentum", values: .list(["0", "0.9"]))]
    var random = try RandomSearch(axes: drawn, samples: 5, seed: 3)
    var first: [[String]] = []
    for _ in 0..<2 { first.append(random.next(history: [])!.map(\.1)) }
    // Saved after two and restored: the next three are those of an uninterrupted search.
    var restored = try Searchers.decode(try Searchers.json(random))
    var whole = try RandomSearch(axes: drawn, samples: 5, seed: 3)
    let all = (0..<5).map { _ in whole.next(history: [])!.map(\.1) }
    var rest: [[String]] = []
    while let v = restored.next(history: []) { rest.append(v.map(\.1)) }
    #expect(first + rest == all)
    #expect(throws: SweepProblem.distributionNeedsSamples(option: "lr")) { try GridSearch(axes: drawn, samples: nil, seed: 0) }
    #expect(throws: SweepProblem.unknownSearch(name: "tpe", known: ["grid", "random"])) {
      try Searchers.make("tpe", axes: axes, samples: nil, seed: 0)
    }
  }

  /// World rank 0 asks the search whenever a group is free, with the results so far; the other group learns each
  /// setting from its assignment (its plan never grows) and trains exactly that setting.
  @Test func aSearchThatLearnsIsAskedWhenAGroupIsFree() throws {
    let data = try syntheticImages(count: 60).holdingOutValidation(fraction: 0.2, seed: 4)
    let used = Locked<[Int: Double]>([:])
    let results = try InProcessGroup.run(size: 2) { comm -> (outcomes: [TrialOutcome], plan: SweepPlan, asked: [Int]) in
      let sweep = try Sweep(plan: SweepPlan(axes: [SweepAxis(option: "lr", values: .list([]))], seeds: [4]),
                            searcher: BestHalved(axes: [], samples: nil, seed: 0), ranksPerTrial: 1, world: comm) { trial, setting in
        var c = TrainingConfig(model: ModelSpec(kind: .mlp, hidden: [8], activation: .tanh), loss: .crossEntropy,
                               optimizer: OptimizerSpec(learningRate: Double(setting.value("lr")!)!, momentum: 0.9), batchSize: 12,
                               epochs: 2, seed: trial.seed)
        c.exchange = ExchangeSpec()
        used.withLock { $0[trial.index] = c.optimizer.learningRate }
        return TrialSpec(config: c, data: data)
      }
      let outcomes = try sweep.run()
      return (outcomes, sweep.plan, (sweep.searcher as? BestHalved)?.asked ?? [])
    }
    let (outcomes, plan, asked) = results[0]
    #expect(results[1].plan.settings.isEmpty, "only world rank 0 keeps the plan")
    #expect(outcomes.count == 4 && plan.settings.count == 4)
    // Asked first with nothing; the third time at least one run had finished (two groups, two settings out).
    #expect(asked.count == 4 && asked[0] == 0 && asked[2] >= 1 && asked == asked.sorted(), "\(asked)")
    // Every trial trained its own setting's learning rate, whichever group ran it.
    let lrs = used.current
    for t in plan.trials { #expect(lrs[t.index] == Double(plan.settings[t.setting].value("lr")!)!, "trial \(t.index)") }
    // The third setting halves a finished one's rate: the better of the first two when both had finished.
    let third = Double(plan.settings[2].value("lr")!)! * 2
    #expect([0.2, 0.02].contains { abs($0 - third) < 1e-12 }, "\(third)")
    let best = outcomes.prefix(2).max { SearchResult.score($0.epochs)! < SearchResult.score($1.epochs)! }!
    if asked[2] == 2 { #expect(abs(third - Double(plan.settings[best.trial.setting].value("lr")!)!) < 1e-12) }
  }
}
