import LeastSquares
import Collectives
import Datasets
import Foundation
import Testing
import Training
import _TestSupport

/// SGD and the closed form describe the same problem.
@Suite struct ClosedFormTests {
  /// Full-batch gradient descent with weight decay wd on the MSE converges to the ridge solution with
  /// lambda = n k wd / 2, with or without the intercept in the penalty. Tolerance: 1e-9 on every parameter (Double).
  @Test(arguments: [false, true])
  func fullBatchGradientDescentReachesTheRidgeSolution(decayBias: Bool) throws {
    let data = Synthetic.dataset(rows: 50, features: 3, seed: 21, noise: 0.4)
    let split = DataSplit(name: "synthetic", train: data, test: data.subset([]))
    var config = TrainingConfig.defaults(for: .synthetic(rows: 50, features: 3))
    config.standardize = false
    config.batchSize = 50
    config.epochs = 600
    config.optimizer = OptimizerSpec(learningRate: 0.1, momentum: 0.9, weightDecay: 0.05, decayBiases: decayBias)
    let results = try InProcessGroup.run(size: 2) { comm -> ClosedFormComparison in
      let t = try Trainer<Double>(config: config, data: split, communicator: comm)
      for _ in 0..<config.epochs { try t.trainEpoch() }
      return try ClosedFormComparison.make(t, predict: [])!
    }
    let c = results[0]
    #expect(c.lambda == 50 * 1 * 0.05 / 2)
    #expect(c.maxParameterDifference < 1e-9, "difference \(c.maxParameterDifference)")
    // And the ridge solution is not the plain least-squares one: the penalty really is in both.
    let plain = try LeastSquares.fit(DesignBlock(data, rows: 0..<50, intercept: true), options: LeastSquaresOptions(),
                                     communicator: LocalCommunicator())
    #expect(zip(plain.theta, c.closedForm.theta).map { abs($0 - $1) }.max()! > 1e-3)
  }

  /// The corn example with dpt's defaults (standardised features, full batch, lr 0.1, momentum 0.9, 500 epochs, in
  /// Float): SGD ends within 1e-5 of the closed form on every parameter, in original units.
  @Test func sgdOnCornEndsAtTheClosedForm() throws {
    let config = TrainingConfig.defaults(for: .corn)
    let corn = try Catalog.load(.corn)
    let results = try InProcessGroup.run(size: 2) { comm -> ClosedFormComparison in
      let t = try Trainer<Float>(config: config, data: corn, communicator: comm)
      for _ in 0..<config.epochs { try t.trainEpoch() }
      return try ClosedFormComparison.make(t, predict: Corn.predictionRows)!
    }
    let c = results[0]
    #expect(c.maxParameterDifference < 1e-5, "difference \(c.maxParameterDifference)")
    #expect(Reference.maxRelativeDifference(c.closedForm.theta, [31.980671, 0.650051, 1.109868]) < 1e-6)
    #expect(Reference.maxRelativeDifference(c.sgd.predictions.map { $0[0] }, [40.320448, 44.030519, 49.960326]) < 1e-6)
    #expect(abs(c.closedForm.train.r2! - c.sgd.train.r2!) < 1e-9)
  }

  /// MNIST as a least-squares classifier (one-hot targets): the comparison also holds for 10 outputs.
  @Test func weightDecayMapsToRidgeForSeveralOutputs() {
    #expect(ClosedFormComparison.lambda(weightDecay: 5e-4, rows: 4000, outputs: 10) == 10)
  }
}
