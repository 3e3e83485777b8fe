import Datasets
import Layers
import Optimizers
import TensorCore

/// The kinds of model `dpt train --model` builds.
public enum ModelKind: String, CaseIterable, Sendable {
  /// x W + b: regression with MSE, or a linear classifier with any loss.
  case linear
  /// x W + b followed by softmax cross-entropy (multinomial logistic regression).
  case softmax
  /// Dense layers with an activation between them: --hidden 256 or --hidden 256,128.
  case mlp
  /// Convolution blocks then dense layers: `cnn:C1,C2` (see `ModelSpec`).
  case cnn
}

/// The non-linearity between hidden layers: element-wise, or PReLU with learnable slopes.
public enum HiddenActivation: Equatable, Sendable, CustomStringConvertible {
  case elementwise(Activation)
  case prelu

  public var description: String {
    switch self {
    case .elementwise(let a): a.description
    case .prelu: "prelu"
    }
  }

  func layer<T: LayerKernels>(shape: [Int]) -> any Layer<T> {
    switch self {
    case .elementwise(let a): ActivationLayer<T>(a, shape: shape)
    case .prelu: PReLU<T>(shape: shape)
    }
  }
}

/// A model to build.
///
/// - linear / softmax: one dense layer (softmax: trained with cross-entropy on the logits).
/// - mlp: dense layers of the `hidden` widths with the activation after each, then the output layer.
/// - cnn: per entry C of `channels` a block conv kxk (C channels, stride 1, padding k/2 so the size is kept),
///   activation, 2x2 max pooling; then the `hidden` dense layers and the output layer. `cnn:6,16` with hidden
///   120,84 is LeNet-5's shape on 28x28 digits.
/// - outputSoftmax: a softmax layer after the output (probabilities; train with nll or hinge).
public struct ModelSpec: Equatable, Sendable, CustomStringConvertible {
  public var kind: ModelKind
  public var hidden: [Int]
  public var activation: HiddenActivation
  public var channels: [Int]
  public var kernel: Int
  public var outputSoftmax: Bool

  public init(kind: ModelKind, hidden: [Int] = [], activation: HiddenActivation = .elementwise(.relu),
              channels: [Int] = [], kernel: Int = 5, outputSoftmax: Bool = false) {
    self.kind = kind
    self.hidden = hidden
    self.activation = activation
    self.channels = channels
    self.kernel = kernel
    self.outputSoftmax = outputSoftmax
  }

  public init(kind: ModelKind, hidden: [Int] = [], activation: Activation) {
    self.init(kind: kind, hidden: hidden, activation: .elementwise(activation))
  }

  /// The network for samples of `inputShape` and `outputs` output values.
  public func build<T: LayerKernels>(inputShape: [Int], outputs: Int, as: T.Type = T.self) throws -> Network<T> {
    var layers: [any Layer<T>] = []
    var shape = inputShape
    if kind == .cnn {
      guard shape.count == 3 else {
        throw TrainingError("--model cnn needs images (channels x height x width); this data set has rows of \(shape.reduce(1, *)) features: use --model mlp or linear")
      }
      for c in channels {
        guard shape[1] >= 2 && shape[2] >= 2 else {
          throw TrainingError("--model cnn:\(channels.map(String.init).joined(separator: ",")): \(inputShape[1])x\(inputShape[2]) images are too small for \(channels.count) blocks of 2x2 pooling")
        }
        layers.append(Conv2D<T>(inChannels: shape[0], outChannels: c, kernel: kernel, padding: kernel / 2,
                                height: shape[1], width: shape[2]))
        shape = layers.last!.outputShape
        layers.append(activation.layer(shape: shape))
        layers.append(MaxPool2D<T>(shape: shape, size: 2))
        shape = layers.last!.outputShape
      }
    }
    if shape.count != 1 {
      layers.append(Flatten<T>(shape: shape))
      shape = layers.last!.outputShape
    }
    if kind == .mlp || kind == .cnn {
      for h in hidden {
        layers.append(Dense<T>(inputs: shape[0], outputs: h))
        layers.append(activation.layer(shape: [h]))
        shape = [h]
      }
    }
    layers.append(Dense<T>(inputs: shape[0], outputs: outputs))
    if outputSoftmax { layers.append(Softmax<T>(size: outputs)) }
    return Network(layers)
  }

  public var description: String {
    var s: String
    switch kind {
    case .linear, .softmax: s = kind.rawValue
    case .mlp: s = "mlp \(hidden.map(String.init).joined(separator: ",")) \(activation)"
    case .cnn:
      s = "cnn \(channels.map(String.init).joined(separator: ",")) (\(kernel)x\(kernel))"
      if !hidden.isEmpty { s += " + \(hidden.map(String.init).joined(separator: ","))" }
      s += " \(activation)"
    }
    return outputSoftmax ? s + " + softmax" : s
  }
}

/// The update rules `--optimizer` names.
public enum OptimizerKind: String, CaseIterable, Sendable {
  case sgd, adagrad, rmsprop, adam, adamw, lbfgs

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
public struct OptimizerSpec: Equatable, Sendable {
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

/// What to do when the loss of a batch is NaN or infinite.
public enum NonFinitePolicy: String, CaseIterable, Sendable {
  /// End the run with a message naming the epoch and step (the last checkpoint stays).
  case stop
  /// Leave the parameters as they were, count the batch as skipped, go on.
  case skipBatch = "skip-batch"
}

/// Everything that defines a training run; `config.json` records it.
public struct TrainingConfig: Sendable {
  public var dataset: DatasetSource
  public var testFraction: Double?
  /// Standardise real-valued features with the training rows' mean and standard deviation.
  public var standardize: Bool
  public var model: ModelSpec
  public var loss: Loss
  public var optimizer: OptimizerSpec
  /// The global batch size, shared by all ranks.
  public var batchSize: Int
  public var epochs: Int
  public var seed: UInt64
  /// Leave out the last batch of an epoch when it is short (default: keep it).
  public var dropLast: Bool = false
  /// Samples per forward pass during evaluation (does not change any result).
  public var evaluationBatchSize: Int = 1000
  /// What a NaN or infinite loss does: stop the run (default) or skip that batch's update.
  public var onNonFinite: NonFinitePolicy = .stop
  /// Bitwise identical results for any number of ranks (see `Trainer`); slower.
  public var deterministic = false
  /// Samples per chunk in deterministic mode: every global batch is cut into chunks of this size whatever the ranks.
  public var deterministicChunk = 16
  /// How the ranks' gradients are combined: buckets, overlap, compression.
  public var exchange = ExchangeSpec()

  public init(dataset: DatasetSource, testFraction: Double? = nil, standardize: Bool = false, model: ModelSpec,
              loss: Loss, optimizer: OptimizerSpec, batchSize: Int, epochs: Int, seed: UInt64 = 0,
              dropLast: Bool = false) {
    self.dataset = dataset
    self.testFraction = testFraction
    self.standardize = standardize
    self.model = model
    self.loss = loss
    self.optimizer = optimizer
    self.batchSize = batchSize
    self.epochs = epochs
    self.seed = seed
    self.dropLast = dropLast
  }

  /// What a user gets without flags: an MLP on the image sets, the linear model on tables.
  /// Problems of the settings themselves and against the kind of data (`task`), knowable before any data is loaded:
  /// each reported with the flag to change.
  public func check(task: Task, dataName: String) throws {
    let config = self
    if config.loss.takesClasses && task == .regression {
      let csv = dataName.hasPrefix("csv:") ? " (--target class reads a CSV's last column as class labels)" : ""
      throw TrainingError("--loss \(config.loss.name) needs class labels, but \(dataName) is a regression data set\(csv): use --loss mse, l1, huber or cosine")
    }
    if config.model.kind == .softmax && config.loss != .crossEntropy {
      throw TrainingError("--model softmax is trained with cross-entropy; use --model linear for --loss \(config.loss.name)")
    }
    if config.model.outputSoftmax && config.loss == .crossEntropy {
      throw TrainingError("--output softmax followed by --loss cross-entropy applies softmax twice (cross-entropy takes logits): use --loss nll or hinge after the softmax layer, or drop --output softmax")
    }
    if config.model.outputSoftmax && config.model.kind == .softmax {
      throw TrainingError("--model softmax already ends in softmax cross-entropy: drop --output softmax")
    }
    if config.loss == .nll && !config.model.outputSoftmax {
      throw TrainingError("--loss nll takes probabilities: add --output softmax, or use --loss cross-entropy, which takes logits")
    }
  }

  public static func defaults(for dataset: DatasetSource) -> TrainingConfig {
    switch dataset.task {
    case .classification where dataset.isTable && dataset != .mnist:
      // A CSV of class labels: its features are standardised, as a regression table's are.
      return TrainingConfig(
        dataset: dataset, standardize: true, model: ModelSpec(kind: .mlp, hidden: [256], activation: .elementwise(.relu)),
        loss: .crossEntropy, optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4), batchSize: 32,
        epochs: 5)
    case .classification:
      return TrainingConfig(
        dataset: dataset, model: ModelSpec(kind: .mlp, hidden: [256], activation: .elementwise(.relu)), loss: .crossEntropy,
        optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4), batchSize: 128, epochs: 5)
    case .regression:
      return TrainingConfig(
        dataset: dataset, standardize: true, model: ModelSpec(kind: .linear), loss: .mse,
        optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9), batchSize: 32, epochs: 500)
    }
  }

  /// The settings of the chosen optimizer beyond lr, momentum and the decays, with the values it uses.
  var optimizerSettings: [(String, JSON)] {
    let o = optimizer
    switch o.kind {
    case .sgd: return []
    case .adagrad: return [("eps", JSON(o.effectiveEps))]
    case .rmsprop: return [("alpha", JSON(o.alpha)), ("eps", JSON(o.effectiveEps))]
    case .adam, .adamw: return [("beta1", JSON(o.beta1)), ("beta2", JSON(o.beta2)), ("eps", JSON(o.effectiveEps))]
    case .lbfgs: return [("history", JSON(o.history)), ("line_search", JSON(o.lineSearch.rawValue))]
    }
  }

  public func json(worldSize: Int) -> JSON {
    .object([
      ("dataset", JSON(dataset.description)),
      ("test_fraction", JSON(testFraction ?? (dataset.isTable ? dataset.defaultTestFraction : nil))),
      ("target", { () -> JSON in
        switch dataset {
        case .csv(_, .classes): return JSON("class")
        case .csv(_, .values(let k)): return JSON(k == 1 ? "value" : "value:\(k)")
        default: return .null
        }
      }()),
      ("standardize", .bool(standardize)),
      ("model", JSON(model.kind.rawValue)),
      ("hidden", .array(model.hidden.map { JSON($0) })),
      ("channels", .array(model.channels.map { JSON($0) })),
      ("kernel_size", JSON(model.kernel)),
      ("activation", JSON(model.activation.description)),
      ("output_softmax", .bool(model.outputSoftmax)),
      ("loss", JSON(loss.description)),
      ("optimizer", JSON(optimizer.name)),
      ("lr", JSON(optimizer.learningRate)),
      ("lr_schedule", JSON(optimizer.schedule.description)),
      ("momentum", JSON(optimizer.momentum)),
      ("nesterov", .bool(optimizer.nesterov)),
      ("weight_decay", JSON(optimizer.weightDecay)),
      ("decoupled_weight_decay", JSON(optimizer.decoupledWeightDecay)),
      ("decay_bias", .bool(optimizer.decayBiases)),
    ] + optimizerSettings + [
      ("batch_size", JSON(batchSize)),
      ("epochs", JSON(epochs)),
      ("seed", .number(Double(seed))),
      ("drop_last", .bool(dropLast)),
      ("deterministic", .bool(deterministic)),
      ("compress", JSON(exchange.compression.description)),
      ("bucket_size", exchange.bucketBytes.map { JSON($0) } ?? JSON("default")),
      ("shared_memory", exchange.sharedMemory.map { JSON.bool($0) } ?? JSON("default")),
      ("on_nan", JSON(onNonFinite.rawValue)),
      ("world_size", JSON(worldSize)),
    ])
  }
}
