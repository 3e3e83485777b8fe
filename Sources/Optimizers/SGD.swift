import TensorCore

/// Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay, as `torch.optim.SGD`.
///
/// With weight decay wd the gradient used is g + wd * p, so SGD minimises
///
///     J(p) = L(p) + (wd / 2) ||p_decayed||^2
///
/// where L is the mean loss over the training set (the loss of each batch is a mean over its samples) and
/// p_decayed the parameters named by the decay mask (all of them by default, as in PyTorch). For the linear model
/// with mean-squared error, L(w, b) = (1/n) ||X w + b - y||^2, so its minimiser is the ridge solution with
/// lambda = n * wd / 2 (see `dpt lstsq --help`). A decoupled decay lambda (SGDW) shrinks p by (1 - lr lambda) before
/// each step instead.
public struct SGD<T: OptimizerKernels>: FirstOrderOptimizer {
  public var learningRate: Double
  public let momentum: Double
  public let nesterov: Bool
  public let decay: WeightDecay
  public var state: State

  /// Steps taken and, with momentum, the velocity v (PyTorch's momentum_buffer).
  public struct State: Equatable {
    public var step = 0
    public var velocity: [T]?
  }

  public init(learningRate: Double, momentum: Double = 0, nesterov: Bool = false, weightDecay: Double = 0,
              decoupledWeightDecay: Double = 0, decayMask: DecayMask) {
    precondition(learningRate > 0, "learning rate must be > 0")
    precondition(momentum >= 0 && momentum < 1, "momentum must be in [0, 1)")
    precondition(weightDecay >= 0 && decoupledWeightDecay >= 0, "weight decay must be >= 0")
    precondition(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0")
    self.learningRate = learningRate
    self.momentum = momentum
    self.nesterov = nesterov
    self.decay = WeightDecay(l2: weightDecay, decoupled: decoupledWeightDecay, mask: decayMask)
    self.state = State(velocity: momentum > 0 ? .zeros(decay.mask.count) : nil)
  }

  public mutating func step(parameters p: UnsafeMutableBufferPointer<T>, gradients g: UnsafeBufferPointer<T>,
                            range: Range<Int>) {
    precondition(p.count == decay.mask.count && g.count == p.count, "SGD was built for \(decay.mask.count) parameters")
    decay.applyDecoupled(p, learningRate: learningRate, range: range)
    let lr = T(learningRate), mu = T(momentum), nesterov = nesterov, decay = decay
    func update(_ v: UnsafeMutablePointer<T>?) {
      decay.forEachSegment(within: range) { o, n, wd in
        T.sgdStep(p: Tensor.base(p) + o, g: Tensor.base(g) + o, v: v.map { $0 + o }, count: n, lr: lr, momentum: mu,
                  weightDecay: T(wd), nesterov: nesterov)
      }
    }
    if state.velocity != nil {
      state.velocity!.withUnsafeMutableBufferPointer { update($0.baseAddress) }
    } else {
      update(nil)
    }
    state.step += 1
  }

  public var savedState: SavedOptimizerState<T> {
    SavedOptimizerState(step: state.step, buffers: state.velocity.map { [.init("momentum", $0)] } ?? [])
  }

  public mutating func restore(_ saved: SavedOptimizerState<T>) {
    state.step = saved.step
    if state.velocity != nil { state.velocity = saved["momentum"] }
  }

  public var summary: String {
    var s = "sgd(lr=\(learningRate)"
    if momentum > 0 { s += ", momentum=\(momentum)\(nesterov ? ", nesterov" : "")" }
    return s + decay.summary + ")"
  }
}
