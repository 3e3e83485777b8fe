import Datasets
import Layers
import Testing
import Training
import _Support

/// The run description that config.json and checkpoints carry as "run": decoding it gives back the configuration it
/// was written from, whatever the model, loss, optimizer and data set.
@Suite struct RunDescriptionTests {
  @Test func runDescriptionsRoundTrip() throws {
    var list = TrainingConfig(dataset: .csv(path: "/data/t.csv", target: .values(2), header: .present), testFraction: 0.25,
                              standardize: true, model: ModelSpec(Sequential(.dense(3), .relu, .dense(2), .tanh)), loss: .halfMSE,
                              optimizer: OptimizerSpec(kind: .lbfgs, learningRate: 1), batchSize: 10, epochs: 3, seed: 7)
    list.lossReduction = LossReduction.sum
    list.deterministic = true
    var cnn = TrainingConfig.defaults(for: .fashionMNIST)
    cnn.model = ModelSpec(kind: .cnn, hidden: [120, 84], activation: .leakyReLU(slope: 0.02))
    cnn.loss = .hinge(margin: 2, mean: true)
    cnn.optimizer = OptimizerSpec(kind: .adamw, learningRate: 1e-3)
    cnn.optimizer.decoupledWeightDecay = 0.01
    cnn.onNonFinite = .skipBatch
    for config in [list, cnn, TrainingConfig.defaults(for: .corn), TrainingConfig.defaults(for: .mnist)] {
      let json = config.json(worldSize: 2)["run"]
      #expect(json != nil && json != JSON.null)
      let decoded = try TrainingConfig(run: try JSON.parse(json!.serialized()))
      #expect(decoded == config, "\(json!.serialized())")
    }
  }
}
