import Layers
import _Support

/// What one replica takes in memory, estimated from the layers' shapes before anything is allocated, so that a model
/// too large for the machine is an error naming both sizes rather than an abort deep inside an allocation.
///
/// bytes = s (P (3 + m) + b a 3 + e a), with s the scalar size, P the parameters (held with their gradient and
/// an exchange buffer), m the optimizer's buffers per parameter, a the activations of one sample over all layers,
/// b the samples of the largest batch one rank computes (its values, their gradients and the layers' workspace) and
/// e the evaluation batch. Convolutions unfold their windows a cache-sized chunk at a time, which adds little.
public struct ModelMemory: Sendable {
  public var parameters: Double
  public var bytes: Double

  public init<T: LayerKernels>(network: Network<T>, config: TrainingConfig, samples: Int, ranks: Int) {
    let s = Double(MemoryLayout<T>.size)
    let P = Double(network.parameterCount)
    var a = 0.0
    for layer in network.layers { a += layer.outputShape.reduce(1.0) { $0 * Double($1) } }
    let o = config.optimizer
    let m: Double
    switch o.kind {
    case .sgd: m = o.momentum > 0 ? 1 : 0
    case .adagrad: m = 1
    case .rmsprop: m = o.momentum > 0 ? 2 : 1
    case .adam, .adamw: m = 2
    case .lbfgs: m = 2 * Double(o.history) + 4
    }
    let batch = Double(min(config.batchSize, samples))
    let b: Double = (batch / Double(max(ranks, 1))).rounded(.up)
    let held: Double = P * (3 + m)
    let computed: Double = b * a * 3 + Double(config.evaluationBatchSize) * a
    parameters = P
    bytes = s * (held + computed)
  }

  /// Throws when `processes` replicas of this size do not fit in `available` bytes.
  public func check(processes: Int, available: Double?) throws {
    guard let available, bytes * Double(processes) > available else { return }
    throw ConfigurationProblem.modelTooLarge(bytesPerRank: bytes, parameters: parameters, ranksOnHost: processes,
                                             availableBytes: available)
  }
}
