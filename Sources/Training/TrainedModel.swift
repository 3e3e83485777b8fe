import Datasets
import Layers
import TensorCore

/// A trained model for inference on one process: its layers, parameters and buffers, and the transform its inputs
/// were trained with. It reads raw rows (a file's values as written, an image's bytes as 0-255) and applies the
/// transform itself, so a row's outputs depend on that row alone.
public struct TrainedModel<T: TrainingScalar> {
  public let network: Network<T>
  public let layerItems: [LayerItem]
  public let transform: InputTransform
  public var parameters: [T]
  public var buffers: [T]
  /// Samples a forward pass (does not change any result).
  public var batchSize = 1000

  /// The model `config` describes, for inputs shaped and named by `transform`, with its initial parameters (set
  /// `parameters` and `buffers` from trained weights).
  public init(config: TrainingConfig, transform: InputTransform) throws {
    self.transform = transform
    layerItems = try config.model.items(inputShape: transform.sampleShape, outputs: transform.outputCount)
    network = Network(try LayerList.build(layerItems, inputShape: transform.sampleShape, outputs: transform.outputCount,
                                          positions: transform.positions, vocabulary: transform.vocabulary?.count))
    parameters = network.initialParameters(seed: config.seed)
    buffers = network.initialBuffers()
  }

  /// The outputs for `x`, raw rows of `transform.featureCount` values each (row-major), one row of Doubles a sample.
  public func outputs(raw x: [Double]) -> [[Double]] {
    let d = transform.featureCount
    precondition(x.count % d == 0, "\(x.count) values are not rows of \(d) features")
    let n = x.count / d
    var out: [[Double]] = []
    out.reserveCapacity(n)
    for start in stride(from: 0, to: n, by: batchSize) {
      let rows = min(batchSize, n - start)
      var scaled: [T] = []
      scaled.reserveCapacity(rows * d)
      for i in start..<start + rows { scaled += transform.apply(row: Array(x[i * d..<(i + 1) * d])).map { T($0) } }
      let y = parameters.withUnsafeBufferPointer { p in
        buffers.withUnsafeBufferPointer { b in
          network.predict(Tensor<T>(shape: [rows] + transform.sampleShape, scalars: scaled), parameters: p, buffers: b)
        }
      }
      let w = y.sampleSize
      for i in 0..<rows { out.append((0..<w).map { Double(y.scalars[i * w + $0]) }) }
    }
    return out
  }
}
