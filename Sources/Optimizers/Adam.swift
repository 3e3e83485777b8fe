import RealModule
import TensorCore

/// Adam (`torch.optim.Adam`) and, with a decoupled weight decay lambda > 0, AdamW (`torch.optim.AdamW`):
///
///     p *= 1 - lr lambda                       (AdamW only)
///     g' = g + wd p                            (L2 weight decay, a separate option)
///     m = b1 m + (1 - b1) g',  v = b2 v + (1 - b2) g'^2
///     p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
///
/// with t the step number from 1 (the bias corrections make m and v unbiased while they warm up from zero).
public struct Adam<T: OptimizerKernels>: FirstOrderOptimizer {
  public var learningRate: Double
  public let beta1: Double
  public let beta2: Double
  public let eps: Double
  public let decay: WeightDecay
  public var state: State

  /// Steps taken t and the moment estimates m (PyTorch's exp_avg) and v (exp_avg_sq).
  public struct State: Equatable {
    public var step = 0
    public var m: [T]
    public var v: [T]
  }

  public init(learningRate: Double, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
              weightDecay: Double = 0, decoupledWeightDecay: Double = 0, decayMask: DecayMask) {
    precondition(learningRate > 0 && (0..<1).contains(beta1) && (0..<1).contains(beta2) && eps > 0, "Adam's settings")
    self.learningRate = learningRate
    self.beta1 = beta1
    self.beta2 = beta2
    self.eps = eps
    self.decay = WeightDecay(l2: weightDecay, decoupled: decoupledWeightDecay, mask: decayMask)
    self.state = State(m: .zeros(decay.mask.count), v: .zeros(decay.mask.count))
  }

  public mutating func step(parameters p: UnsafeMutableBufferPointer<T>, gradients g: UnsafeBufferPointer<T>,
                            range: Range<Int>) {
    state.step += 1
    let t = Double(state.step)
    let c1 = 1 - Double.pow(beta1, t), c2 = 1 - Double.pow(beta2, t)
    let stepSize = T(learningRate / c1), root2 = T(c2.squareRoot()), b2 = T(beta2), eps = T(eps)
    let oneMinus = (T(1 - beta1), T(1 - beta2))
    let segments = decay.mask.segments(within: range), wd = decay.l2, shrink = T(1 - learningRate * decay.decoupled)
    var v = state.v
    state.v = []  // moved out while its pointer is in use
    state.m.withUnsafeMutableBufferPointer { m in
      v.withUnsafeMutableBufferPointer { v in
        for (range, decays) in segments {
          let o = range.lowerBound
          T.adamStep(p: Tensor.base(p) + o, g: Tensor.base(g) + o, m: m.baseAddress! + o, v: v.baseAddress! + o,
                     count: range.count, beta2: b2, oneMinus: oneMinus, eps: eps, weightDecay: decays ? T(wd) : 0,
                     shrink: decays ? shrink : 1, stepSize: stepSize, root2: root2)
        }
      }
    }
    state.v = v
  }

  public var savedState: SavedOptimizerState<T> {
    SavedOptimizerState(step: state.step, buffers: [.init("exp_avg", state.m), .init("exp_avg_sq", state.v)])
  }

  public mutating func restore(_ saved: SavedOptimizerState<T>) {
    state = State(step: saved.step, m: saved["exp_avg"], v: saved["exp_avg_sq"])
  }

  public var summary: String {
    "\(decay.decoupled > 0 ? "adamw" : "adam")(lr=\(learningRate), betas=(\(beta1), \(beta2)), eps=\(eps)\(decay.summary))"
  }
}
