import TensorCore

/// RMSprop (`torch.optim.RMSprop`, centered = false): v = alpha v + (1 - alpha) g'^2; the step is g' / (sqrt(v) + eps),
/// through a momentum buffer when momentum > 0.
public struct RMSprop<T: OptimizerKernels>: FirstOrderOptimizer {
  public var learningRate: Double
  public let alpha: Double
  public let eps: Double
  public let momentum: Double
  public let decay: WeightDecay
  public var state: State

  /// Steps taken, the running mean of squared gradients v (PyTorch's square_avg) and, with momentum, its buffer.
  public struct State: Equatable {
    public var step = 0
    public var squareAverage: [T]
    public var momentum: [T]?
  }

  public init(learningRate: Double, alpha: Double = 0.99, eps: Double = 1e-8, momentum: Double = 0,
              weightDecay: Double = 0, decoupledWeightDecay: Double = 0, decayMask: DecayMask) {
    precondition(learningRate > 0 && (0..<1).contains(alpha) && eps > 0 && (0..<1).contains(momentum), "RMSprop's settings")
    self.learningRate = learningRate
    self.alpha = alpha
    self.eps = eps
    self.momentum = momentum
    self.decay = WeightDecay(l2: weightDecay, decoupled: decoupledWeightDecay, mask: decayMask)
    self.state = State(squareAverage: .zeros(decay.mask.count), momentum: momentum > 0 ? .zeros(decay.mask.count) : nil)
  }

  public mutating func step(parameters p: UnsafeMutableBufferPointer<T>, gradients g: UnsafeBufferPointer<T>,
                            range: Range<Int>) {
    decay.applyDecoupled(p, learningRate: learningRate, range: range)
    let lr = T(learningRate), alpha = T(alpha), oneMinusAlpha = T(1 - self.alpha), eps = T(eps), mu = T(momentum), decay = decay
    var b = state.momentum
    state.momentum = nil  // moved out while its pointer is in use
    state.squareAverage.withUnsafeMutableBufferPointer { v in
      func run(_ buffer: UnsafeMutablePointer<T>?) {
        decay.forEachSegment(within: range) { o, n, wd in
          T.rmspropStep(p: Tensor.base(p) + o, g: Tensor.base(g) + o, v: v.baseAddress! + o, buffer: buffer.map { $0 + o },
                        count: n, lr: lr, alpha: alpha, oneMinusAlpha: oneMinusAlpha, eps: eps, momentum: mu, weightDecay: T(wd))
        }
      }
      if b == nil { run(nil) } else { b!.withUnsafeMutableBufferPointer { run($0.baseAddress) } }
    }
    state.momentum = b
    state.step += 1
  }

  public var savedState: SavedOptimizerState<T> {
    var buffers: [SavedOptimizerState<T>.Buffer] = [.init("square_avg", state.squareAverage)]
    if let m = state.momentum { buffers.append(.init("momentum", m)) }
    return SavedOptimizerState(step: state.step, buffers: buffers)
  }

  public mutating func restore(_ saved: SavedOptimizerState<T>) {
    state = State(step: saved.step, squareAverage: saved["square_avg"], momentum: state.momentum == nil ? nil : saved["momentum"])
  }

  public var summary: String {
    "rmsprop(lr=\(learningRate), alpha=\(alpha), eps=\(eps)\(momentum > 0 ? ", momentum=\(momentum)" : "")\(decay.summary))"
  }
}
