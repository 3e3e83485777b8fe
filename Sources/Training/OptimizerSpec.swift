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

/// The settings some optimizers read and others do not, with the optimizers that read each: the one table `dpt
/// train`'s validation, config.json and a sweep's settings (which leave out what does not apply) all consult.
public enum OptimizerOption: String, CaseIterable, Sendable {
  case momentum, nesterov, beta1, beta2, alpha, eps, history
  case lineSearch = "line-search"
  case decoupledWeightDecay = "decoupled-weight-decay"

  /// The optimizers that read it.
  public var optimizers: [OptimizerKind] {
    switch self {
    case .momentum: [.sgd, .rmsprop]
    case .nesterov: [.sgd]
    case .beta1, .beta2: [.adam, .adamw]
    case .alpha: [.rmsprop]
    case .eps: [.adagrad, .rmsprop, .adam, .adamw]
    case .history, .lineSearch: [.lbfgs]
    case .decoupledWeightDecay: [.sgd, .adagrad, .rmsprop, .adam, .adamw]
    }
  }

  public func applies(to kind: OptimizerKind) -> Bool { optimizers.contains(kind) }

  /// Why it does not apply to `kind`, and what to use instead: "--momentum does not apply to --optimizer lbfgs (L-BFGS
  /// keeps curvature pairs instead): it applies to --optimizer sgd and rmsprop only; drop it".
  public func notApplicable(to kind: OptimizerKind) -> String {
    let names = optimizers.map(\.rawValue)
    let list = names.count == 1 ? names[0] : names.dropLast().joined(separator: ", ") + " and " + names.last!
    var hint = ""
    switch (self, kind) {
    case (.momentum, .lbfgs): hint = " (L-BFGS keeps curvature pairs instead)"
    case (.momentum, .adam), (.momentum, .adamw): hint = " (use --beta1)"
    case (.decoupledWeightDecay, .lbfgs): hint = " (its line search needs one objective: use --weight-decay)"
    default: break
    }
    return "--\(rawValue) does not apply to --optimizer \(kind.rawValue)\(hint): it applies to --optimizer \(list) only; drop it"
  }
}
