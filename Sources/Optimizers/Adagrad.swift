import TensorCore

/// Adagrad (`torch.optim.Adagrad`): each parameter's step is scaled by the root of its summed squared gradients,
/// G += g'^2, p -= lr g' / (sqrt(G) + eps), g' = g + wd p.
public struct Adagrad<T: OptimizerKernels>: FirstOrderOptimizer {
  public var learningRate: Double
  public let eps: Double
  public let decay: WeightDecay
  public var state: State

  /// Steps taken and the summed squared gradients G (PyTorch's `sum`).
  public struct State: Equatable {
    public var step = 0
    public var sum: [T]
  }

  public init(learningRate: Double, eps: Double = 1e-10, weightDecay: Double = 0, decoupledWeightDecay: Double = 0,
              decayMask: DecayMask) {
    precondition(learningRate > 0 && eps > 0 && weightDecay >= 0, "Adagrad's settings")
    self.learningRate = learningRate
    self.eps = eps
    self.decay = WeightDecay(l2: weightDecay, decoupled: decoupledWeightDecay, mask: decayMask)
    self.state = State(sum: .zeros(decay.mask.count))
  }

  public mutating func step(parameters p: UnsafeMutableBufferPointer<T>, gradients g: UnsafeBufferPointer<T>,
                            range: Range<Int>) {
    decay.applyDecoupled(p, learningRate: learningRate, range: range)
    let lr = T(learningRate), eps = T(eps), decay = decay
    state.sum.withUnsafeMutableBufferPointer { s in
      decay.forEachSegment(within: range) { o, n, wd in
        T.adagradStep(p: Tensor.base(p) + o, g: Tensor.base(g) + o, sum: s.baseAddress! + o, count: n, lr: lr, eps: eps,
                      weightDecay: T(wd))
      }
    }
    state.step += 1
  }

  public var savedState: SavedOptimizerState<T> { SavedOptimizerState(step: state.step, buffers: [.init("sum", state.sum)]) }

  public mutating func restore(_ saved: SavedOptimizerState<T>) {
    state = State(step: saved.step, sum: saved["sum"])
  }

  public var summary: String { "adagrad(lr=\(learningRate), eps=\(eps)\(decay.summary))" }
}
