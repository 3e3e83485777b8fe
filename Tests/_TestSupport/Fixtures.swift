import Datasets
import TensorCore
import Training

/// Data and configurations that several suites train on.
public enum Fixtures {
  /// 50 (or `count`) synthetic 2x3 "images" in 3 classes that depend on the features; the test set is the first 10.
  public static func classification(count: Int = 50, seed: UInt64 = 3) -> DataSplit {
    var rng = RandomSource(seed: seed)
    var x = [Double](), y = [Int32]()
    for _ in 0..<count {
      let row = (0..<6).map { _ in rng.uniform(-1, 1) }
      x += row
      y.append(Int32(row[0] + row[1] > 0.3 ? 2 : row[2] > 0 ? 1 : 0))
    }
    let train = Dataset(features: .reals(x), count: count, sampleShape: [1, 2, 3], labels: y, task: .classification,
                        classCount: 3)
    return DataSplit(name: "synthetic", train: train, test: train.subset(0..<min(10, count)))
  }

  /// 60 (or `count`) rows of a noisy linear target of 4 features (`Synthetic.dataset`); the test set is the first 12.
  public static func regression(count: Int = 60, seed: UInt64 = 5) -> DataSplit {
    let rows = Synthetic.dataset(rows: count, features: 4, seed: seed, noise: 0.3)
    return DataSplit(name: "synthetic", train: rows, test: rows.subset(0..<min(12, count)))
  }

  /// A small tanh MLP (8, 5) with Nesterov momentum and weight decay, for data held in memory (no named data set).
  public static func smallMLP(batchSize: Int = 16, epochs: Int = 2) -> TrainingConfig {
    TrainingConfig(model: ModelSpec(kind: .mlp, hidden: [8, 5], activation: .tanh), loss: .crossEntropy,
                   optimizer: OptimizerSpec(learningRate: 0.2, momentum: 0.9, nesterov: true, weightDecay: 1e-3),
                   batchSize: batchSize, epochs: epochs, seed: 11)
  }
}
