import TensorCore

/// A loss over a batch: the sum of per-sample losses, and its gradient with respect to the prediction.
///
/// Losses return sums, not means: a data-parallel step adds the sums of all ranks and divides once by the true
/// global batch size, so N ranks take exactly the step one rank takes on the whole batch.
///
/// | loss | per-sample loss, prediction p (C values), target | dloss/dp_j |
/// |---|---|---|
/// | crossEntropy | -log softmax(p)_y = log sum_k e^{p_k} - p_y (class y) | softmax(p)_j - [j = y] |
/// | mse | (1/C) sum_j (p_j - t_j)^2 | (2/C) (p_j - t_j) |
public enum Loss: String, CaseIterable, Sendable {
  case crossEntropy = "cross-entropy"
  case mse

  /// Whether targets are class indices (else real-valued targets of the prediction's shape).
  public var takesClasses: Bool {
    switch self {
    case .crossEntropy: true
    case .mse: false
    }
  }
}

/// What a loss compares the prediction with.
public enum Targets<T: Scalar> {
  /// One class index per sample.
  case classes([Int32])
  /// One target row per sample, shaped like the prediction.
  case values(Tensor<T>)
}

/// The loss of a batch: `sum` over samples, and `gradient` = d(sum)/d(prediction) when it was asked for.
public struct LossValue<T: Scalar> {
  public var sum: Double
  public var gradient: Tensor<T>?
}

extension Loss {
  /// Evaluates the loss of `prediction` (B, C) against `targets`; with `gradient: true` also d(sum)/d(prediction).
  public func evaluate<T: LayerKernels>(_ prediction: Tensor<T>, _ targets: Targets<T>, gradient: Bool = true)
    -> LossValue<T>
  {
    let rows = prediction.batch, cols = prediction.sampleSize
    var g: Tensor<T>? = gradient ? Tensor(zeros: prediction.shape) : nil
    let sum: Double = prediction.withUnsafeBufferPointer { pb in
      let p = Tensor.base(pb)
      func run(_ gp: UnsafeMutablePointer<T>?) -> Double {
        switch targets {
        case .classes(let y):
          precondition(takesClasses, "\(rawValue) takes target values, not classes")
          precondition(y.count == rows, "\(y.count) labels for \(rows) predictions")
          return y.withUnsafeBufferPointer { y in
            T.loss(self, prediction: p, classes: y.baseAddress, targets: nil, rows: rows, cols: cols, gradient: gp)
          }
        case .values(let t):
          precondition(!takesClasses, "\(rawValue) takes classes, not target values")
          precondition(t.shape == prediction.shape, "targets \(t.shape) for predictions \(prediction.shape)")
          return t.withUnsafeBufferPointer { t in
            T.loss(self, prediction: p, classes: nil, targets: Tensor.base(t), rows: rows, cols: cols, gradient: gp)
          }
        }
      }
      if g == nil { return run(nil) }
      return g!.withUnsafeMutableBufferPointer { run(Tensor.base($0)) }
    }
    return LossValue(sum: sum, gradient: g)
  }
}
