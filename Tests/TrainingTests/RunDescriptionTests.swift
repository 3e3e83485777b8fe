import Datasets
import Foundation
import Optimizers
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

  /// config.json's "run" in the command line's words (issue 32, item 5): an activation is "relu", a loss
  /// "hinge(margin=2.0, mean=true)", a schedule "cosine(minimum=0.001)", a data set {"dataset": "csv:t.csv", "target":
  /// "class", ...}; every one of them decodes back to what it was written from.
  @Test func theRunIsWrittenInTheCommandLinesWords() throws {
    let activations: [HiddenActivation] = [.identity, .sigmoid, .tanh, .relu, .leakyReLU(slope: 0.02), .requ, .gelu, .geluTanh].map { .elementwise($0) } + [.prelu]
    let losses: [Loss] = [.crossEntropy, .nll, .hinge(margin: 2, mean: true), .hinge(margin: 0.5, mean: false), .mse, .halfMSE, .l1, .huber(delta: 0.25), .cosine]
    let schedules: [LearningRateSchedule.Kind] = [.constant, .step(everyEpochs: 3, gamma: 0.5), .cosine(minimum: 1e-3)]
    let sources: [DatasetSource] = [.mnist, .fashionMNIST, .corn, .idx(directory: "/d"), .csv(path: "/t.csv"),
                                    .csv(path: "/t.csv", target: .values(2), header: .present, missing: .mean),
                                    .csv(path: "/t.csv", target: .classes, header: .absent, missing: .drop), .synthetic(rows: 10, features: 3),
                                    .text(path: "/b.txt", context: 64), .npz(path: "/a.npz", target: .classes), .npy(features: "/x.npy", labels: "/y.npy"),
                                    .images(directory: "/p", height: 32, width: 24), .images(directory: "/p")]
    for k in 0..<max(activations.count, losses.count, schedules.count, sources.count) {
      var c = TrainingConfig.defaults(for: .mnist)
      let activation = activations[k % activations.count]
      c.model = ModelSpec(kind: .mlp, hidden: [8], activation: activation)
      c.loss = losses[k % losses.count]
      c.optimizer.schedule = LearningRateSchedule(schedules[k % schedules.count], warmupEpochs: 1)
      let data = DataOrigin(source: sources[k % sources.count], testFraction: 0.25)
      let json = c.json(data: data, worldSize: 1)["run"]!
      let text = json.serialized()
      #expect(!text.contains("_0") && !text.contains("{}"), "\(text)")
      #expect(json["training"]?["model"]?["activation"]?.string == activation.description)
      #expect(json["training"]?["loss"]?.string == c.loss.spelling)
      #expect(json["training"]?["optimizer"]?["schedule"]?["kind"]?.string == c.optimizer.schedule.kind.spelling)
      #expect(json["data"]?["source"]?["dataset"]?.string == data.source.description)
      #expect(json["training"]?["batch_size"] != nil && json["training"]?["optimizer"]?["weight_decay"] != nil && json["data"]?["test_fraction"] != nil, "\(text)")
      if case .images(_, let h, _) = data.source, h > 0 { #expect(json["data"]?["source"]?["image_size"] == JSON("32,24"), "\(text)") }
      #expect(try RunDescription(run: try JSON.parse(text)) == RunDescription(data: data, training: c), "\(text)")
    }
    #expect(try JSON.parse(TrainingConfig.defaults(for: .mnist).json(data: nil, worldSize: 1)["run"]!.serialized())["training"]?["model"]?["activation"] == JSON("relu"))
  }

  /// The keyed forms earlier versions wrote still decode, and so do their camel-case keys.
  @Test func theEarlierKeyedFormsDecode() throws {
    var config = TrainingConfig.defaults(for: .corn)
    config.batchSize = 7
    config.optimizer.weightDecay = 0.25
    let camel = try JSON.parse(bytes: Array(JSONEncoder().encode(RunDescription(data: DataOrigin(source: .corn, testFraction: 0.5), training: config))))
    #expect(camel["training"]?["batchSize"] != nil)
    #expect(try RunDescription(run: camel) == RunDescription(data: DataOrigin(source: .corn, testFraction: 0.5), training: config))
    let decoder = JSONDecoder()
    func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T { try decoder.decode(T.self, from: Data(text.utf8)) }
    #expect(try decode(HiddenActivation.self, #"{"elementwise": {"_0": {"leakyReLU": {"slope": 0.02}}}}"#) == .elementwise(.leakyReLU(slope: 0.02)))
    #expect(try decode(HiddenActivation.self, #"{"prelu": {}}"#) == .prelu)
    #expect(try decode(Loss.self, #"{"hinge": {"margin": 2, "mean": true}}"#) == .hinge(margin: 2, mean: true))
    #expect(try decode(Loss.self, #"{"mse": {}}"#) == .mse)
    #expect(try decode(LearningRateSchedule.Kind.self, #"{"step": {"everyEpochs": 3, "gamma": 0.5}}"#) == .step(everyEpochs: 3, gamma: 0.5))
    #expect(try decode(DatasetSource.self, #"{"csv": {"path": "/t.csv", "target": {"values": {"_0": 2}}, "header": "yes"}}"#)
      == .csv(path: "/t.csv", target: .values(2), header: .present))
    #expect(try decode(DatasetSource.self, #"{"fashionMNIST": {}}"#) == .fashionMNIST)
    // A spelling that is not one is a decoding error naming it.
    #expect(throws: DecodingError.self) { try decode(Loss.self, #""hinge(width=2)""#) }
    #expect(throws: DecodingError.self) { try decode(LearningRateSchedule.Kind.self, #""step(every=2)""#) }
    #expect(throws: DecodingError.self) { try decode(HiddenActivation.self, #""dense(3)""#) }
  }
}
