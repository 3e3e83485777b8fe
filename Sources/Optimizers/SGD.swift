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
public struct SGD<T: OptimizerKernels>: Optimizer {
  public var learningRate: Double
  public let momentum: Double
  public let nesterov: Bool
  public let weightDecay: Double
  public let decoupledWeightDecay: Double
  public let decayMask: DecayMask
  public var state: OptimizerState<T>

  public init(learningRate: Double, momentum: Double = 0, nesterov: Bool = false, weightDecay: Double = 0,
              decoupledWeightDecay: Double = 0, decayMask: DecayMask) {
    precondition(learningRate > 0, "learning rate must be > 0")
    precondition(momentum >= 0 && momentum < 1, "momentum must be in [0, 1)")
    precondition(weightDecay >= 0 && decoupledWeightDecay >= 0, "weight decay must be >= 0")
    precondition(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0")
    self.learningRate = learningRate
    self.momentum = momentum
    self.nesterov = nesterov
    self.weightDecay = weightDecay
    self.decoupledWeightDecay = decoupledWeightDecay
    self.decayMask = decayMask
    self.state = OptimizerState(buffers: momentum > 0 ? ["momentum": .zeros(decayMask.count)] : [:])
  }

  public mutating func step(parameters p: UnsafeMutableBufferPointer<T>, gradients g: UnsafeBufferPointer<T>,
                            loss: Double, batch: Int, evaluate: Evaluation<T>) {
    precondition(p.count == decayMask.count && g.count == p.count, "SGD was built for \(decayMask.count) parameters")
    applyDecoupledDecay(p, rate: decoupledWeightDecay, learningRate: learningRate, mask: decayMask)
    let lr = T(learningRate), mu = T(momentum), nesterov = nesterov
    func update(_ v: UnsafeMutablePointer<T>?) {
      decayMask.forEachSegment(weightDecay: weightDecay) { o, n, wd in
        T.sgdStep(p: Tensor.base(p) + o, g: Tensor.base(g) + o, v: v.map { $0 + o }, count: n, lr: lr, momentum: mu,
                  weightDecay: T(wd), nesterov: nesterov)
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
    if decoupledWeightDecay > 0 { s += ", decoupled-weight-decay=\(decoupledWeightDecay)" }
    return s + ")"
  }
}

/// p *= 1 - lr lambda over the decayed parameters (decoupled weight decay: SGDW, AdamW).
func applyDecoupledDecay<T: OptimizerKernels>(_ p: UnsafeMutableBufferPointer<T>, rate: Double, learningRate: Double,
                                             mask: DecayMask) {
  guard rate > 0 else { return }
  mask.forEachSegment(weightDecay: rate) { o, n, lambda in
    if lambda > 0 { T.scal(n, T(1 - learningRate * lambda), Tensor.base(p) + o) }
  }
}

/// Adagrad (`torch.optim.Adagrad`): each parameter's step is scaled by the root of its summed squared gradients,
/// G += g'^2, p -= lr g' / (sqrt(G) + eps), g' = g + wd p.
public struct Adagrad<T: OptimizerKernels>: Optimizer {
  public var learningRate: Double
  public let eps: Double
  public let weightDecay: Double
  public let decoupledWeightDecay: Double
  public let decayMask: DecayMask
  public var state: OptimizerState<T>

  public init(learningRate: Double, eps: Double = 1e-10, weightDecay: Double = 0, decoupledWeightDecay: Double = 0,
              decayMask: DecayMask) {
    precondition(learningRate > 0 && eps > 0 && weightDecay >= 0, "Adagrad's settings")
    self.learningRate = learningRate
    self.eps = eps
    self.weightDecay = weightDecay
    self.decoupledWeightDecay = decoupledWeightDecay
    self.decayMask = decayMask
    self.state = OptimizerState(buffers: ["sum": .zeros(decayMask.count)])
  }

  public mutating func step(parameters p: UnsafeMutableBufferPointer<T>, gradients g: UnsafeBufferPointer<T>,
                            loss: Double, batch: Int, evaluate: Evaluation<T>) {
    applyDecoupledDecay(p, rate: decoupledWeightDecay, learningRate: learningRate, mask: decayMask)
    let lr = T(learningRate), eps = T(eps)
    state.buffers["sum"]!.withUnsafeMutableBufferPointer { s in
      decayMask.forEachSegment(weightDecay: weightDecay) { o, n, wd in
        T.adagradStep(p: Tensor.base(p) + o, g: Tensor.base(g) + o, sum: s.baseAddress! + o, count: n, lr: lr, eps: eps,
                      weightDecay: T(wd))
      }
    }
    state.step += 1
  }

  public var summary: String {
    "adagrad(lr=\(learningRate)\(weightDecay > 0 ? ", weight-decay=\(weightDecay)" : "")\(decoupledWeightDecay > 0 ? ", decoupled-weight-decay=\(decoupledWeightDecay)" : ""))"
  }
}

/// RMSprop (`torch.optim.RMSprop`, centered = false): v = alpha v + (1 - alpha) g'^2; the step is g' / (sqrt(v) + eps),
/// through a momentum buffer when momentum > 0.
public struct RMSprop<T: OptimizerKernels>: Optimizer {
  public var learningRate: Double
  public let alpha: Double
  public let eps: Double
  public let momentum: Double
  public let weightDecay: Double
  public let decoupledWeightDecay: Double
  public let decayMask: DecayMask
  public var state: OptimizerState<T>

  public init(learningRate: Double, alpha: Double = 0.99, eps: Double = 1e-8, momentum: Double = 0,
              weightDecay: Double = 0, decoupledWeightDecay: Double = 0, decayMask: DecayMask) {
    precondition(learningRate > 0 && (0..<1).contains(alpha) && eps > 0 && (0..<1).contains(momentum), "RMSprop's settings")
    self.learningRate = learningRate
    self.alpha = alpha
    self.eps = eps
    self.momentum = momentum
    self.weightDecay = weightDecay
    self.decoupledWeightDecay = decoupledWeightDecay
    self.decayMask = decayMask
    var buffers = ["square_avg": [T].zeros(decayMask.count)]
    if momentum > 0 { buffers["momentum"] = .zeros(decayMask.count) }
    self.state = OptimizerState(buffers: buffers)
  }

  public mutating func step(parameters p: UnsafeMutableBufferPointer<T>, gradients g: UnsafeBufferPointer<T>,
                            loss: Double, batch: Int, evaluate: Evaluation<T>) {
    applyDecoupledDecay(p, rate: decoupledWeightDecay, learningRate: learningRate, mask: decayMask)
    let lr = T(learningRate), alpha = T(alpha), eps = T(eps), mu = T(momentum)
    var v = state.buffers.removeValue(forKey: "square_avg")!
    var b = state.buffers.removeValue(forKey: "momentum")
    v.withUnsafeMutableBufferPointer { v in
      func run(_ buffer: UnsafeMutablePointer<T>?) {
        decayMask.forEachSegment(weightDecay: weightDecay) { o, n, wd in
          T.rmspropStep(p: Tensor.base(p) + o, g: Tensor.base(g) + o, v: v.baseAddress! + o, buffer: buffer.map { $0 + o },
                        count: n, lr: lr, alpha: alpha, eps: eps, momentum: mu, weightDecay: T(wd))
        }
      }
      if b == nil { run(nil) } else { b!.withUnsafeMutableBufferPointer { run($0.baseAddress) } }
    }
    state.buffers["square_avg"] = v
    if let b { state.buffers["momentum"] = b }
    state.step += 1
  }

  public var summary: String {
    "rmsprop(lr=\(learningRate), alpha=\(alpha)\(momentum > 0 ? ", momentum=\(momentum)" : "")\(weightDecay > 0 ? ", weight-decay=\(weightDecay)" : "")\(decoupledWeightDecay > 0 ? ", decoupled-weight-decay=\(decoupledWeightDecay)" : ""))"
  }
}

/// Adam (`torch.optim.Adam`) and, with a decoupled weight decay lambda > 0, AdamW (`torch.optim.AdamW`):
///
///     p *= 1 - lr lambda                       (AdamW only)
///     g' = g + wd p                            (L2 weight decay, a separate option)
///     m = b1 m + (1 - b1) g',  v = b2 v + (1 - b2) g'^2
///     p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
///
/// with t the step number from 1 (the bias corrections make m and v unbiased while they warm up from zero).
public struct Adam<T: OptimizerKernels>: Optimizer {
  public var learningRate: Double
  public let beta1: Double
  public let beta2: Double
  public let eps: Double
  public let weightDecay: Double
  public let decoupledWeightDecay: Double
  public let decayMask: DecayMask
  public var state: OptimizerState<T>

  public init(learningRate: Double, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
              weightDecay: Double = 0, decoupledWeightDecay: Double = 0, decayMask: DecayMask) {
    precondition(learningRate > 0 && (0..<1).contains(beta1) && (0..<1).contains(beta2) && eps > 0, "Adam's settings")
    self.learningRate = learningRate
    self.beta1 = beta1
    self.beta2 = beta2
    self.eps = eps
    self.weightDecay = weightDecay
    self.decoupledWeightDecay = decoupledWeightDecay
    self.decayMask = decayMask
    self.state = OptimizerState(buffers: ["exp_avg": .zeros(decayMask.count),
                                          "exp_avg_sq": .zeros(decayMask.count)])
  }

  public mutating func step(parameters p: UnsafeMutableBufferPointer<T>, gradients g: UnsafeBufferPointer<T>,
                            loss: Double, batch: Int, evaluate: Evaluation<T>) {
    state.step += 1
    let t = Double(state.step)
    let c1 = T(1 - Double.pow(beta1, t)), c2 = T(1 - Double.pow(beta2, t))
    let lr = T(learningRate), b1 = T(beta1), b2 = T(beta2), eps = T(eps)
    var m = state.buffers.removeValue(forKey: "exp_avg")!, v = state.buffers.removeValue(forKey: "exp_avg_sq")!
    m.withUnsafeMutableBufferPointer { m in
      v.withUnsafeMutableBufferPointer { v in
        for (range, decays) in decayMask.segments {
          let o = range.lowerBound
          T.adamStep(p: Tensor.base(p) + o, g: Tensor.base(g) + o, m: m.baseAddress! + o, v: v.baseAddress! + o,
                     count: range.count, lr: lr, beta1: b1, beta2: b2, eps: eps, weightDecay: decays ? T(weightDecay) : 0,
                     decoupledDecay: decays ? T(decoupledWeightDecay) : 0, correction1: c1, correction2: c2)
        }
      }
    }
    state.buffers["exp_avg"] = m
    state.buffers["exp_avg_sq"] = v
  }

  public var summary: String {
    "\(decoupledWeightDecay > 0 ? "adamw" : "adam")(lr=\(learningRate), betas=(\(beta1), \(beta2))\(weightDecay > 0 ? ", weight-decay=\(weightDecay)" : "")\(decoupledWeightDecay > 0 ? ", decoupled-weight-decay=\(decoupledWeightDecay)" : ""))"
  }
}

import RealModule
