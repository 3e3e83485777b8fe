import Datasets
import Layers
import Optimizers
import TensorCore

/// The update rules `--optimizer` names.
public enum OptimizerKind: String, CaseIterable, Sendable, Codable {
  case sgd, adagrad, rmsprop, adam, adamw, lbfgs

  /// The name as papers and PyTorch write it: "SGD", "L-BFGS", ...
  public var displayName: String {
    switch self {
    case .sgd: "SGD"
    case .adagrad: "Adagrad"
    case .rmsprop: "RMSprop"
    case .adam: "Adam"
    case .adamw: "AdamW"
    case .lbfgs: "L-BFGS"
    }
  }

  /// PyTorch's defaults (SGD has none there; 0.1 is the usual starting point for these models).
  public var defaultLearningRate: Double {
    switch self {
    case .sgd: 0.1
    case .adagrad, .rmsprop: 0.01
    case .adam, .adamw: 0.001
    case .lbfgs: 1
    }
  }
}

/// The optimizer and its hyperparameters.
public struct OptimizerSpec: Equatable, Sendable, Codable {
  public var kind: OptimizerKind = .sgd
  public var learningRate: Double
  public var momentum: Double = 0
  public var nesterov: Bool = false
  /// L2 weight decay: wd * p added to the gradient (see `SGD`).
  public var weightDecay: Double = 0
  /// Decoupled weight decay lambda: p *= 1 - lr lambda each step (AdamW's; 0.01 by default for adamw).
  public var decoupledWeightDecay: Double = 0
  /// Whether the weight decays apply to biases too (PyTorch's default: yes).
  public var decayBiases: Bool = true
  public var beta1 = 0.9
  public var beta2 = 0.999
  /// RMSprop's smoothing constant.
  public var alpha = 0.99
  /// nil: the optimizer's own default (1e-10 Adagrad, 1e-8 RMSprop and Adam).
  public var eps: Double?
  /// L-BFGS's number of curvature pairs (PyTorch's history_size).
  public var history = 100
  public var lineSearch: LineSearch = .strongWolfe
  public var schedule = LearningRateSchedule()

  public init(kind: OptimizerKind = .sgd, learningRate: Double, momentum: Double = 0, nesterov: Bool = false,
              weightDecay: Double = 0, decayBiases: Bool = true) {
    self.kind = kind
    self.learningRate = learningRate
    self.momentum = momentum
    self.nesterov = nesterov
    self.weightDecay = weightDecay
    self.decayBiases = decayBiases
  }

  public var name: String { kind.rawValue }

  /// The epsilon the optimizer uses: `eps`, else its default (PyTorch's: 1e-10 Adagrad, 1e-8 RMSprop and Adam).
  public var effectiveEps: Double { eps ?? (kind == .adagrad ? 1e-10 : 1e-8) }

  /// Which parameters of `network` the weight decays apply to.
  public func decayMask<T>(for network: Network<T>) -> DecayMask {
    if decayBiases { return .all(network.parameterCount) }
    return DecayMask(decayed: network.namedParameters.filter { !$0.spec.isBias }.map(\.range),
                     count: network.parameterCount)
  }

  public func make<T: OptimizerKernels>(for network: Network<T>) -> AnyOptimizer<T> {
    let mask = decayMask(for: network)
    switch kind {
    case .sgd:
      return AnyOptimizer(SGD<T>(learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay,
                                 decoupledWeightDecay: decoupledWeightDecay, decayMask: mask))
    case .adagrad:
      return AnyOptimizer(Adagrad<T>(learningRate: learningRate, eps: effectiveEps, weightDecay: weightDecay,
                                     decoupledWeightDecay: decoupledWeightDecay, decayMask: mask))
    case .rmsprop:
      return AnyOptimizer(RMSprop<T>(learningRate: learningRate, alpha: alpha, eps: effectiveEps, momentum: momentum,
                                     weightDecay: weightDecay, decoupledWeightDecay: decoupledWeightDecay, decayMask: mask))
    case .adam, .adamw:
      return AnyOptimizer(Adam<T>(learningRate: learningRate, beta1: beta1, beta2: beta2, eps: effectiveEps,
                                  weightDecay: weightDecay, decoupledWeightDecay: decoupledWeightDecay, decayMask: mask))
    case .lbfgs:
      return AnyOptimizer(LBFGS<T>(learningRate: learningRate, history: history, lineSearch: lineSearch,
                                   weightDecay: weightDecay, decayMask: mask))
    }
  }
}
