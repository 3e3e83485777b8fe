import Datasets
import Layers
import Testing
import Training
import _Support

/// The run description that config.json and checkpoints carry as "run": decoding it gives back the configuration it
/// was written from, whatever the model, loss, optimizer and data set.
@Suite struct RunDescriptionTests {
  @Test func runDescriptionsRoundTrip() throws {
    var list = TrainingConfig(standardize: true, model: ModelSpec(Sequential(.dense(3), .relu, .dense(2), .tanh)), loss: .halfMSE,
                              optimizer: OptimizerSpec(kind: .lbfgs, learningRate: 1), batchSize: 10, epochs: 3, seed: 7)
    list.lossReduction = LossReduction.sum
    list.deterministic = true
    var cnn = TrainingConfig.defaults(for: .fashionMNIST)
    cnn.model = ModelSpec(kind: .cnn, hidden: [120, 84], activation: .leakyReLU(slope: 0.02))
    cnn.loss = .hinge(margin: 2, mean: true)
    cnn.optimizer = OptimizerSpec(kind: .adamw, learningRate: 1e-3)
    cnn.optimizer.decoupledWeightDecay = 0.01
    cnn.onNonFinite = .skipBatch
    let table = DataOrigin(source: .csv(path: "/data/t.csv", target: .values(2), header: .present), testFraction: 0.25)
    for (config, data) in [(list, table), (cnn, DataOrigin(source: .fashionMNIST)), (TrainingConfig.defaults(for: .corn), nil),
                           (TrainingConfig.defaults(for: .mnist), DataOrigin(source: .mnist))] {
      let json = config.json(data: data, worldSize: 2)["run"]
      #expect(json != nil && json != JSON.null)
      let decoded = try RunDescription(run: try JSON.parse(json!.serialized()))
      #expect(decoded == RunDescription(data: data, training: config), "\(json!.serialized())")
    }
  }

  /// The previous dpt wrote "run" as one configuration with the data set among its settings: it still decodes.
  @Test func earlierRunDescriptionsDecode() throws {
    // Its form: the configuration's own keys with the data set's two beside them (the keys of the properties it had).
    let origin = DataOrigin(source: .csv(path: "/data/t.csv", target: .values(1), header: .present), testFraction: 0.3)
    let now = RunDescription(data: origin, training: TrainingConfig.defaults(for: origin.source)).json
    guard case .object(let training)? = now["training"], case .object(let data)? = now["data"] else {
      Issue.record("no training or data object in \(now.serialized())")
      return
    }
    let earlier = JSON.object(training + data.map { ($0.0 == "source" ? "dataset" : $0.0, $0.1) }).serialized()
    let run = try RunDescription(run: try JSON.parse(earlier))
    #expect(run.data == origin)
    #expect(run.training.epochs == 500 && run.training.standardize)
  }
}
