import Datasets
import Layers
import Optimizers

/// The kinds of model `dpt train --model` builds.
public enum ModelKind: String, CaseIterable, Sendable {
  /// x W + b: regression with MSE, or a linear classifier with any loss.
  case linear
  /// x W + b followed by softmax cross-entropy (multinomial logistic regression).
  case softmax
  /// Dense layers with an activation between them: --hidden 256 or --hidden 256,128.
  case mlp
}

/// A model to build: its kind, hidden widths and activation.
public struct ModelSpec: Equatable, Sendable, CustomStringConvertible {
  public var kind: ModelKind
  public var hidden: [Int]
  public var activation: Activation

  public init(kind: ModelKind, hidden: [Int] = [], activation: Activation = .relu) {
    self.kind = kind
    self.hidden = hidden
    self.activation = activation
  }

  /// The network for samples of `inputShape` and `outputs` output values.
  public func build<T: LayerKernels>(inputShape: [Int], outputs: Int, as: T.Type = T.self) -> Network<T> {
    var layers: [any Layer<T>] = []
    var width = inputShape.reduce(1, *)
    if inputShape.count != 1 { layers.append(Flatten<T>(shape: inputShape)) }
    if kind == .mlp {
      for h in hidden {
        layers.append(Dense<T>(inputs: width, outputs: h))
        layers.append(ActivationLayer<T>(activation, shape: [h]))
        width = h
      }
    }
    layers.append(Dense<T>(inputs: width, outputs: outputs))
    return Network(layers)
  }

  public var description: String {
    switch kind {
    case .linear, .softmax: kind.rawValue
    case .mlp: "mlp \(hidden.map(String.init).joined(separator: ",")) \(activation)"
    }
  }
}

/// The optimizer and its hyperparameters.
public struct OptimizerSpec: Equatable, Sendable {
  public var name: String = "sgd"
  public var learningRate: Double
  public var momentum: Double = 0
  public var nesterov: Bool = false
  /// L2 weight decay: wd * p added to the gradient (see `SGD`).
  public var weightDecay: Double = 0
  /// Whether the weight decay applies to biases too (PyTorch's default: yes).
  public var decayBiases: Bool = true

  public init(learningRate: Double, momentum: Double = 0, nesterov: Bool = false, weightDecay: Double = 0,
              decayBiases: Bool = true) {
    self.learningRate = learningRate
    self.momentum = momentum
    self.nesterov = nesterov
    self.weightDecay = weightDecay
    self.decayBiases = decayBiases
  }

  /// Which parameters of `network` the weight decay applies to.
  public func decayMask<T>(for network: Network<T>) -> DecayMask {
    if decayBiases { return .all(network.parameterCount) }
    return DecayMask(decayed: network.namedParameters.filter { !$0.spec.isBias }.map(\.range),
                     count: network.parameterCount)
  }

  public func make<T: OptimizerKernels>(for network: Network<T>) -> any Optimizer<T> {
    SGD<T>(learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay,
           decayMask: decayMask(for: network))
  }
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
  public static func defaults(for dataset: DatasetSource) -> TrainingConfig {
    switch dataset.task {
    case .classification:
      return TrainingConfig(
        dataset: dataset, model: ModelSpec(kind: .mlp, hidden: [256], activation: .relu), loss: .crossEntropy,
        optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4), batchSize: 128, epochs: 5)
    case .regression:
      return TrainingConfig(
        dataset: dataset, standardize: true, model: ModelSpec(kind: .linear), loss: .mse,
        optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9), batchSize: 32, epochs: 500)
    }
  }

  public func json(worldSize: Int) -> JSON {
    .object([
      ("dataset", JSON(dataset.description)),
      ("test_fraction", JSON(testFraction ?? (dataset.isTable ? dataset.defaultTestFraction : nil))),
      ("standardize", .bool(standardize)),
      ("model", JSON(model.kind.rawValue)),
      ("hidden", .array(model.hidden.map { JSON($0) })),
      ("activation", JSON(model.activation.description)),
      ("loss", JSON(loss.rawValue)),
      ("optimizer", JSON(optimizer.name)),
      ("lr", JSON(optimizer.learningRate)),
      ("momentum", JSON(optimizer.momentum)),
      ("nesterov", .bool(optimizer.nesterov)),
      ("weight_decay", JSON(optimizer.weightDecay)),
      ("decay_bias", .bool(optimizer.decayBiases)),
      ("batch_size", JSON(batchSize)),
      ("epochs", JSON(epochs)),
      ("seed", .number(Double(seed))),
      ("drop_last", .bool(dropLast)),
      ("world_size", JSON(worldSize)),
    ])
  }
}
