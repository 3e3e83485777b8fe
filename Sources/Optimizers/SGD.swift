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
/// lambda = n * wd / 2 (see `dpt lstsq --help`).
public struct SGD<T: OptimizerKernels>: Optimizer {
  public var learningRate: Double
  public let momentum: Double
  public let nesterov: Bool
  public let weightDecay: Double
  public let decayMask: DecayMask
  public var state: OptimizerState<T>

  public init(learningRate: Double, momentum: Double = 0, nesterov: Bool = false, weightDecay: Double = 0,
              decayMask: DecayMask) {
    precondition(learningRate > 0, "learning rate must be > 0")
    precondition(momentum >= 0 && momentum < 1, "momentum must be in [0, 1)")
    precondition(weightDecay >= 0, "weight decay must be >= 0")
    precondition(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0")
    self.learningRate = learningRate
    self.momentum = momentum
    self.nesterov = nesterov
    self.weightDecay = weightDecay
    self.decayMask = decayMask
    self.state = OptimizerState(buffers: momentum > 0 ? ["momentum": [T](repeating: 0, count: decayMask.count)] : [:])
  }

  public mutating func step(parameters p: UnsafeMutableBufferPointer<T>, gradients g: UnsafeBufferPointer<T>) {
    precondition(p.count == decayMask.count && g.count == p.count, "SGD was built for \(decayMask.count) parameters")
    let lr = T(learningRate), mu = T(momentum), wd = T(weightDecay), nesterov = nesterov
    func update(_ v: UnsafeMutablePointer<T>?) {
      for (range, decays) in decayMask.segments {
        T.sgdStep(p: Tensor.base(p) + range.lowerBound, g: Tensor.base(g) + range.lowerBound,
                  v: v.map { $0 + range.lowerBound }, count: range.count, lr: lr, momentum: mu,
                  weightDecay: decays ? wd : 0, nesterov: nesterov)
      }
    }
    if momentum > 0 {
      state.buffers["momentum"]!.withUnsafeMutableBufferPointer { update($0.baseAddress) }
    } else {
      update(nil)
    }
    state.step += 1
  }

  public var summary: String {
    var s = "sgd(lr=\(learningRate)"
    if momentum > 0 { s += ", momentum=\(momentum)\(nesterov ? ", nesterov" : "")" }
    if weightDecay > 0 { s += ", weight-decay=\(weightDecay)" }
    return s + ")"
  }
}
