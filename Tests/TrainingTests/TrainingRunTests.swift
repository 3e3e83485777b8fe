import Collectives
import Datasets
import Foundation
import Testing
import Training
import _Support
import _TestSupport

@Suite struct TrainingRunTests {
  /// A fast check that MNIST training learns (accuracy targets belong to the demo, not to tests).
  @Test func mnistTrainingLowersTheLoss() throws {
    guard FileManager.default.fileExists(atPath: DataCache.mnist5kPath) else {
      // The fast tier runs offline without it; the full tier (scripts/test) fetches it first, so there it must be.
      if TestTier.all { Issue.record("\(DataCache.mnist5kPath) is missing: run `dpt data fetch` (scripts/test does) before the tests") }
      return
    }
    var c = TrainingConfig.defaults(for: .mnist)
    c.model.hidden = [32]
    c.batchSize = 32
    let data = try Catalog.load(.mnist)
    let small = DataSplit(name: "mnist", train: data.train.subset(0..<1000), test: data.test.subset(0..<200))
    let t = try Trainer<Float>(config: c, data: small, communicator: LocalCommunicator())
    let before = try t.evaluate(small.train)!
    let after = try t.runEpoch().train
    #expect(after.loss < 0.6 * before.loss, "loss \(before.loss) -> \(after.loss)")
    #expect(after.accuracy > before.accuracy + 0.3)
  }

  @Test func regressionMetrics() throws {
    let t = try Trainer<Double>(config: TrainingConfig.defaults(for: .corn), data: try Catalog.load(.corn),
                                communicator: LocalCommunicator())
    let m = try t.runEpoch()
    #expect(m.test == nil)
    #expect(abs(m.train.rmse - m.train.loss.squareRoot()) < 1e-12)  // one target: MSE = RMSE^2
    let mean = 57.0, sst = [40.0, 44, 46, 48, 52, 58, 60, 68, 74, 80].reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
    #expect(abs(m.train.totalSumOfSquares - sst) < 1e-9)
    #expect(abs(m.train.r2! - (1 - m.train.squaredErrorSum / sst)) < 1e-12)
  }

  /// R^2 is undefined for targets without spread (a set of one row): nil, printed "-", never -inf (issue 28, item 7).
  @Test func rSquaredOfOneRowIsUndefined() {
    #expect(rSquared(squaredErrorSum: 4, totalSumOfSquares: 0) == nil)
    #expect(rSquared(squaredErrorSum: 1, totalSumOfSquares: 4) == 0.75)
    let one = Evaluation(count: 1, lossSum: 1, correct: 0, squaredErrorSum: 2, totalSumOfSquares: 0, targetWidth: 1)
    #expect(one.r2 == nil && EpochMetrics(epoch: 1, task: .regression, train: one, test: nil, seconds: 1, samples: 1,
                                          evaluationSeconds: 0, learningRate: 0.1).record.json["train_r2"] == .null)
  }

  @Test func jsonRoundTrip() throws {
    let v = JSON.object([("a", .number(1.5)), ("b", .array([.null, .bool(true), .string("x\"y\n")])), ("c", .number(3))])
    #expect(v.serialized() == #"{"a":1.5,"b":[null,true,"x\"y\n"],"c":3}"#)
    #expect(try JSON.parse(v.serialized()) == v)
    #expect(try JSON.parse(v.serialized(pretty: true)) == v)
    #expect(JSON.number(.nan).serialized() == "null")
  }
}

