import Collectives
import Datasets
import Layers
import TensorCore

/// A replica's metrics on a data set: the loss sum, the correct predictions and the squared errors, each rank
/// computing its part (`BatchSharding.pieces(ofSet:...)`) in chunks of `batchSize`, summed across the ranks as the
/// sharding sums (exactly under --deterministic). It reads the parameters and buffers it is given, never the
/// optimizer or the exchange.
public struct Evaluator<T: TrainingScalar> {
  public let network: Network<T>
  public let loss: Loss
  public let batchSize: Int
  public let sharding: BatchSharding
  public let communicator: any Communicator

  public init(network: Network<T>, loss: Loss, batchSize: Int, sharding: BatchSharding, communicator: any Communicator) {
    (self.network, self.loss, self.batchSize, self.sharding, self.communicator) = (network, loss, batchSize, sharding, communicator)
  }

  /// Loss, accuracy or squared errors over `set` at `parameters` (nil for an empty set). Collective.
  public func evaluate(_ set: Dataset, parameters p: UnsafeBufferPointer<T>, buffers: UnsafeBufferPointer<T>) throws -> Evaluation? {
    guard set.count > 0 else { return nil }
    let (mine, total) = sharding.pieces(ofSet: set.count, chunk: batchSize, rank: communicator.rank, size: communicator.size)
    let sums = try sharding.sum(mine.map { self.sums(set, $0, parameters: p, buffers: buffers) }, width: 3, terms: total,
                                communicator: communicator)
    return Evaluation(count: set.count * set.labelsPerSample, lossSum: sums[0], correct: sums[1], squaredErrorSum: sums[2],
                      totalSumOfSquares: Evaluator.totalSumOfSquares(set), targetWidth: set.targetWidth)
  }

  /// Loss sum, correct count and squared-error sum over the rows `range` of `set`, on this rank alone.
  func sums(_ set: Dataset, _ range: Range<Int>, parameters p: UnsafeBufferPointer<T>, buffers: UnsafeBufferPointer<T>) -> [Double] {
    var sums = [0.0, 0.0, 0.0]  // loss, correct, squared error
    var start = range.lowerBound
    while start < range.upperBound {
      let chunk = start..<min(start + batchSize, range.upperBound)
      let out = network.predict(set.features(at: chunk), parameters: p, buffers: buffers)
      sums[0] += loss.evaluate(out, Evaluator.targets(set, chunk, loss: loss), gradient: false).sum
      if set.task == .classification {
        // One prediction a row of outputs: a sample's, or each position's of a sequence.
        let labels = set.labels(at: chunk), classes = out.shape.last!
        var predicted = [Int32](repeating: 0, count: labels.count)
        out.withUnsafeBufferPointer { o in
          T.argmaxRows(Tensor.base(o), rows: labels.count, cols: classes, into: &predicted)
        }
        for (k, label) in labels.enumerated() where predicted[k] == label { sums[1] += 1 }
      } else {
        let w = set.targetWidth
        for (k, i) in chunk.enumerated() {
          for j in 0..<w {
            let e = Double(out.scalars[k * w + j]) - set.targets[i * w + j]
            sums[2] += e * e
          }
        }
      }
      start = chunk.upperBound
    }
    return sums
  }

  /// The targets of rows `indices` of `set` as `loss` takes them: class labels or values.
  static func targets<C: Collection<Int>>(_ set: Dataset, _ indices: C, loss: Loss) -> Targets<T> {
    loss.takesClasses ? .classes(set.labels(at: indices)) : .values(set.targetValues(at: indices))
  }

  /// sum over samples and target columns of (y - mean of the column)^2.
  static func totalSumOfSquares(_ set: Dataset) -> Double {
    guard set.task == .regression, set.count > 0 else { return 0 }
    let w = set.targetWidth, n = Double(set.count)
    var total = 0.0
    for j in 0..<w {
      var mean = 0.0
      for i in 0..<set.count { mean += set.targets[i * w + j] }
      mean /= n
      for i in 0..<set.count { let d = set.targets[i * w + j] - mean; total += d * d }
    }
    return total
  }

  /// The model's outputs for rows `range` of `set`, on this rank alone, in chunks of `batchSize`.
  public func outputs(_ set: Dataset, rows range: Range<Int>, parameters p: UnsafeBufferPointer<T>, buffers: UnsafeBufferPointer<T>)
    -> [[Double]] {
    stride(from: range.lowerBound, to: range.upperBound, by: batchSize).flatMap { start in
      outputRows(set.features(at: start..<min(start + batchSize, range.upperBound)), parameters: p, buffers: buffers)
    }
  }

  /// The model's output for a batch x, one row of Doubles per sample.
  func outputRows(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>, buffers: UnsafeBufferPointer<T>) -> [[Double]] {
    let y = network.predict(x, parameters: p, buffers: buffers)
    let w = y.sampleSize
    return (0..<x.batch).map { i in (0..<w).map { Double(y.scalars[i * w + $0]) } }
  }
}
