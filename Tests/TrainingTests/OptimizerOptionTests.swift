import Testing
import Training
import _Support

/// The one table of which optimizer reads which setting: config.json records exactly those, and the message for one
/// that does not apply names the optimizers it does.
@Suite struct OptimizerOptionTests {
  @Test(arguments: OptimizerKind.allCases)
  func configJSONRecordsTheSettingsTheOptimizerReads(kind: OptimizerKind) {
    var c = TrainingConfig(model: ModelSpec(kind: .linear), loss: .mse, optimizer: OptimizerSpec(kind: kind, learningRate: 0.1),
                           batchSize: 4, epochs: 1)
    c.optimizer.momentum = 0.5
    let json = c.json(data: nil, worldSize: 1)
    for option in OptimizerOption.allCases where ![.nesterov, .decoupledWeightDecay].contains(option) {
      let key = option.rawValue.replacingOccurrences(of: "-", with: "_")
      let recorded = json[key].map { $0 != .null } ?? false
      #expect(recorded == option.applies(to: kind), "\(kind) \(key): \(json[key] ?? .null)")
    }
  }

  @Test func theMessageNamesWhereASettingApplies() {
    #expect(OptimizerOption.momentum.notApplicable(to: .lbfgs)
            == "--momentum does not apply to --optimizer lbfgs (L-BFGS keeps curvature pairs instead): it applies to --optimizer sgd and rmsprop only; drop it")
    #expect(OptimizerOption.eps.notApplicable(to: .sgd).hasSuffix("it applies to --optimizer adagrad, rmsprop, adam and adamw only; drop it"))
    #expect(OptimizerKind.allCases.filter(OptimizerOption.decoupledWeightDecay.applies) == [.sgd, .adagrad, .rmsprop, .adam, .adamw])
  }
}
