import Collectives
import Datasets
import Foundation
import Layers
import Optimizers
import Testing
import TensorCore
import Training
import _TestSupport

/// 48 synthetic 1x6x6 "images" in 3 classes.
func syntheticImages(count: Int = 48, seed: UInt64 = 5) -> DataSplit {
  var rng = RandomSource(seed: seed)
  var x = [Double](), y = [Int32]()
  for _ in 0..<count {
    let c = rng.index(below: 3)
    for i in 0..<36 { x.append(rng.uniform(-0.5, 0.5) + (i % 3 == c ? 1 : 0)) }
    y.append(Int32(c))
  }
  let data = Dataset(features: .reals(x), count: count, sampleShape: [1, 6, 6], labels: y, task: .classification,
                     classCount: 3)
  return DataSplit(name: "images", train: data, test: data.subset(0..<8))
}

@Suite struct ModelTrainingTests {
  func cnnConfig(_ optimizer: OptimizerKind = .sgd) -> TrainingConfig {
    var c = TrainingConfig(model: ModelSpec(kind: .cnn, hidden: [8], activation: .prelu, channels: [2, 3], kernel: 3),
      loss: .crossEntropy, optimizer: OptimizerSpec(kind: optimizer, learningRate: optimizer == .lbfgs ? 1 : 0.05, momentum: optimizer == .sgd ? 0.9 : 0),
      batchSize: optimizer == .lbfgs ? 48 : 10, epochs: 2, seed: 3)
    c.optimizer.weightDecay = 1e-3
    return c
  }

  func train<T: TrainingScalar>(_: T.Type, size: Int, _ config: TrainingConfig) throws -> [T] {
    let data = syntheticImages()
    let results = try InProcessGroup.run(size: size) { comm -> [T] in
      let t = try Trainer<T>(config: config, data: data, communicator: comm)
      for _ in 0..<config.epochs { try t.trainEpoch() }
      return t.parameters
    }
    for r in results.dropFirst() { #expect(r == results[0], "replicas differ") }
    return results[0]
  }

  func relative<T: BinaryFloatingPoint>(_ a: [T], _ b: [T]) -> Double {
    zip(a, b).map { abs(Double($0) - Double($1)) }.max()! / b.map { abs(Double($0)) }.max()!
  }

  /// Conv2D and PReLU (parameterised) keep N ranks == 1 rank; batches of 10 over 48 samples end in a batch of 8.
  @Test(arguments: [2, 3])
  func cnnWithPReLUKeepsTheRankEquality(size: Int) throws {
    let one = try train(Float.self, size: 1, cnnConfig())
    let many = try train(Float.self, size: size, cnnConfig())
    #expect(relative(many, one) < 1e-5)
    let oneD = try train(Double.self, size: 1, cnnConfig())
    let manyD = try train(Double.self, size: size, cnnConfig())
    #expect(relative(manyD, oneD) < 1e-12)
  }

  /// Full-batch L-BFGS all-reduces loss and gradient, so every rank takes the identical step (checked bit for bit
  /// inside `train`) and N ranks follow 1 rank.
  @Test(arguments: [2, 3])
  func lbfgsTakesTheSameStepsOnEveryRank(size: Int) throws {
    let one = try train(Double.self, size: 1, cnnConfig(.lbfgs))
    let many = try train(Double.self, size: size, cnnConfig(.lbfgs))
    #expect(relative(many, one) < 1e-9)
  }

  @Test(arguments: [OptimizerKind.adagrad, .rmsprop, .adam, .adamw, .lbfgs])
  func everyOptimizerLowersTheLoss(kind: OptimizerKind) throws {
    var c = TrainingConfig(model: ModelSpec(kind: .mlp, hidden: [16], activation: .tanh),
                           loss: .crossEntropy, optimizer: OptimizerSpec(kind: kind, learningRate: kind.defaultLearningRate * (kind == .lbfgs ? 1 : 10)),
                           batchSize: kind == .lbfgs ? 48 : 12, epochs: 5, seed: 1)
    c.optimizer.decoupledWeightDecay = kind == .adamw ? 0.01 : 0
    let data = syntheticImages()
    let t = try Trainer<Float>(config: c, data: data, communicator: LocalCommunicator())
    let before = try t.evaluate(data.train)!.loss
    for _ in 0..<c.epochs { try t.trainEpoch() }
    let after = try t.evaluate(data.train)!.loss
    #expect(after < 0.5 * before, "\(kind): \(before) -> \(after)")
  }

  @Test func scheduleSetsTheLearningRateEachStep() throws {
    var c = cnnConfig()
    c.optimizer.schedule = LearningRateSchedule(.cosine(minimum: 0), warmupEpochs: 1)
    let t = try Trainer<Float>(config: c, data: syntheticImages(), communicator: LocalCommunicator())
    try t.trainEpoch()
    #expect(abs(t.optimizer.learningRate - 0.05) < 1e-12)  // the last warmup step reaches the base rate
    try t.trainEpoch()
    #expect(t.optimizer.learningRate < 0.01)  // cosine towards 0 at the end
  }

  @Test func invalidCombinationsAreNamed() {
    func message(_ c: TrainingConfig, _ d: DataSplit = syntheticImages()) -> String {
      do { _ = try Trainer<Float>(config: c, data: d, communicator: LocalCommunicator()); return "no error" } catch { return "\(error)" }
    }
    var twice = cnnConfig()
    twice.model.outputSoftmax = true
    #expect(message(twice).contains("applies softmax twice"))
    twice.loss = .nll
    #expect(message(twice) == "no error")
    var nll = cnnConfig()
    nll.loss = .nll
    #expect(message(nll).contains("the NLL loss takes probabilities"))
    var cnnOnTable = TrainingConfig.defaults(for: .corn)
    cnnOnTable.model = ModelSpec(kind: .cnn, channels: [4])
    #expect(message(cnnOnTable, try! Catalog.load(.corn)).contains("a CNN needs images"))
  }
}
