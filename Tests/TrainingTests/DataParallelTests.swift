import Collectives
import Datasets
import Foundation
import Layers
import Testing
import TensorCore
import Training
import _TestSupport

@Suite struct DataParallelTests {
  /// Parameters and metrics after `epochs` epochs on `size` in-process ranks.
  func train<T: TrainingScalar>(_ type: T.Type, size: Int, data: DataSplit, config: TrainingConfig) throws
    -> (parameters: [T], metrics: [EpochMetrics])
  {
    let results = try InProcessGroup.run(size: size) { comm -> ([T], [EpochMetrics]) in
      let t = try Trainer<T>(config: config, data: data, communicator: comm)
      var m: [EpochMetrics] = []
      for _ in 0..<config.epochs { m.append(try t.runEpoch()) }
      return (t.parameters, m)
    }
    // Every replica holds the same parameters, bit for bit.
    for r in results.dropFirst() { #expect(r.0 == results[0].0) }
    return results[0]
  }

  func relativeDifference<T: BinaryFloatingPoint>(_ a: [T], _ b: [T]) -> Double {
    let scale = b.map { abs(Double($0)) }.max()!
    return zip(a, b).map { abs(Double($0) - Double($1)) }.max()! / scale
  }

  /// 50 samples in batches of 16: the last batch holds 2, so with 3 or 4 ranks some ranks get no sample of it.
  @Test(arguments: [2, 3, 4])
  func nRanksTakeTheStepsOfOneRankOnTheWholeBatch(size: Int) throws {
    let data = Fixtures.classification()
    let c = Fixtures.smallMLP()
    let one = try train(Float.self, size: 1, data: data, config: c)
    let many = try train(Float.self, size: size, data: data, config: c)
    #expect(relativeDifference(many.parameters, one.parameters) < 1e-5)
    for (a, b) in zip(many.metrics, one.metrics) {
      #expect(abs(a.train.loss - b.train.loss) < 1e-5 * max(1, b.train.loss))
      #expect(a.train.correct == b.train.correct)
      #expect(a.test!.correct == b.test!.correct)
    }
    // In Double the only difference is summation order.
    let oneD = try train(Double.self, size: 1, data: data, config: c)
    let manyD = try train(Double.self, size: size, data: data, config: c)
    #expect(relativeDifference(manyD.parameters, oneD.parameters) < 1e-13)
  }

  /// BatchNorm with the global batch's statistics (SyncBatchNorm) and dropout's per-sample masks: N ranks end with the
  /// parameters and running statistics of one rank on the whole batch, the short last batch included.
  @Test(arguments: [2, 3, 4])
  func batchNormAndDropoutTakeTheStepOfOneRank(size: Int) throws {
    var c = Fixtures.smallMLP()
    c.model = ModelSpec(layers: try LayerList.parse("flatten, dense(8), batchnorm, tanh, dropout(0.25), dense(5), batchnorm(momentum=0.3), relu, dense(3)"))
    c.dropLast = true  // a last batch of 2 samples would leave BatchNorm one value per channel on some ranks' share
    let data = Fixtures.classification()
    func run<T: TrainingScalar>(_ type: T.Type, size: Int) throws -> [T] {
      try InProcessGroup.run(size: size) { comm -> [T] in
        let t = try Trainer<T>(config: c, data: data, communicator: comm)
        for _ in 0..<c.epochs { _ = try t.runEpoch() }
        return t.parameters + t.buffers
      }[0]
    }
    #expect(relativeDifference(try run(Float.self, size: size), try run(Float.self, size: 1)) < 1e-5)
    #expect(relativeDifference(try run(Double.self, size: size), try run(Double.self, size: 1)) < 1e-12)
  }

  @Test func theLocalCommunicatorIsTheOneRankCase() throws {
    let data = Fixtures.classification()
    let t = try Trainer<Double>(config: Fixtures.smallMLP(), data: data, communicator: LocalCommunicator())
    for _ in 0..<2 { try t.trainEpoch() }
    let inProcess = try train(Double.self, size: 1, data: data, config: Fixtures.smallMLP())
    #expect(t.parameters == inProcess.parameters)
  }

  @Test func stepsPerEpochAndSamplesCountTheShortBatch() throws {
    let t = try Trainer<Float>(config: Fixtures.smallMLP(), data: Fixtures.classification(), communicator: LocalCommunicator())
    #expect(t.batchesPerEpoch == 4)
    let (samples, _) = try t.trainEpoch()
    #expect(samples == 50 && t.step == 4)
    var dropping = Fixtures.smallMLP()
    dropping.dropLast = true
    let d = try Trainer<Float>(config: dropping, data: Fixtures.classification(), communicator: LocalCommunicator())
    #expect(d.batchesPerEpoch == 3)
  }

  @Test func sameSeedSameRunOtherSeedOtherRun() throws {
    let data = Fixtures.classification()
    let a = try train(Float.self, size: 2, data: data, config: Fixtures.smallMLP())
    let b = try train(Float.self, size: 2, data: data, config: Fixtures.smallMLP())
    var other = Fixtures.smallMLP()
    other.seed = 12
    let c = try train(Float.self, size: 2, data: data, config: other)
    #expect(a.parameters == b.parameters)
    #expect(a.parameters != c.parameters)
  }

  @Test func anExplodingLossStopsEveryRankWithTheStep() throws {
    var c = Fixtures.smallMLP()
    c.optimizer.learningRate = 1e30
    c.optimizer.momentum = 0
    c.optimizer.nesterov = false
    let outcomes = try InProcessGroup.run(size: 3) { comm -> String in
      let t = try Trainer<Float>(config: c, data: Fixtures.classification(), communicator: comm)
      do { try t.trainEpoch(); return "finished" } catch let e as NonFiniteLoss { return "\(e.epoch):\(e.step)" }
    }
    #expect(Set(outcomes).count == 1)
    #expect(outcomes[0] != "finished")
  }

  @Test func badConfigurationsAreNamed() {
    func message(_ c: TrainingConfig, _ d: DataSplit, ranks: Int = 1) -> String {
      do {
        _ = try InProcessGroup.run(size: ranks) { comm in try Trainer<Float>(config: c, data: d, communicator: comm) }
        return "no error"
      } catch { return "\(error)" }
    }
    let corn = try! Catalog.load(.corn)
    var c = Fixtures.smallMLP()
    // The library names the problem in values; `dpt` adds the flags (BinaryTests compare those messages).
    #expect(message(c, corn).contains("the cross-entropy loss needs class labels, but corn is a regression data set"))
    c.loss = .mse
    c.model.kind = .softmax
    #expect(message(c, Fixtures.classification()).contains("the softmax model is trained with cross-entropy, not mse"))
    #expect(message(Fixtures.smallMLP(), Fixtures.classification(count: 3), ranks: 4).contains("3 training samples for 4 ranks"))
  }
}
