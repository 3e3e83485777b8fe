import Datasets
import Foundation
import Layers
import Optimizers
import TensorCore
import _Support

/// What to do when the loss of a batch is NaN or infinite.
public enum NonFinitePolicy: String, CaseIterable, Sendable, Codable {
  /// End the run with a message naming the epoch and step (the last checkpoint stays).
  case stop
  /// Leave the parameters as they were, count the batch as skipped, go on.
  case skipBatch = "skip-batch"
}

/// How to train: the model, loss, optimizer and schedule, the batch and the exchange. The data is not part of it
/// (a trainer is given its rows; `DataSplit.origin` says where dpt loaded them from); `config.json` records both as
/// a `RunDescription`.
public struct TrainingConfig: Sendable, Codable, Equatable {
  /// Standardise real-valued features with the training rows' mean and standard deviation.
  public var standardize: Bool
  public var model: ModelSpec
  public var loss: Loss
  /// The mean of the batch's losses (the default) or their sum (PyTorch's `reduction`).
  public var lossReduction: LossReduction = .mean
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
  /// The global gradient norm is clipped to this after the reduction (`--clip-grad-norm`, as
  /// `torch.nn.utils.clip_grad_norm_`): g *= min(1, X / (||g|| + 1e-6)); nil: not clipped.
  public var clipGradNorm: Double?
  /// Gradient accumulation (`--accumulate N`): micro-batches of `batchSize` a step, one exchange a step (nil: 1).
  public var accumulate: Int?

  /// Micro-batches a step (`accumulate`, at least 1).
  public var microBatches: Int { max(accumulate ?? 1, 1) }
  /// The global batch of one optimizer step: `batchSize` times the micro-batches.
  public var stepBatchSize: Int {
    let (product, overflow) = batchSize.multipliedReportingOverflow(by: microBatches)
    return overflow ? Int.max : product
  }

  public init(standardize: Bool = false, model: ModelSpec, loss: Loss, optimizer: OptimizerSpec, batchSize: Int,
              epochs: Int, seed: UInt64 = 0, dropLast: Bool = false) {
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
  public func check(task: LearningTask, dataName: String) throws {
    let config = self
    if config.loss.takesClasses && task == .regression {
      throw ConfigurationProblem.lossNeedsClasses(loss: config.loss.name, dataSet: dataName)
    }
    let shorthand = config.model.layers == nil
    if shorthand && config.model.kind == .softmax && config.loss != .crossEntropy {
      throw ConfigurationProblem.softmaxModelNeedsCrossEntropy(loss: config.loss.name)
    }
    if shorthand && config.model.outputSoftmax && config.model.kind == .softmax { throw ConfigurationProblem.softmaxAfterSoftmaxModel }
    if config.model.endsInSoftmax && config.loss == .crossEntropy { throw ConfigurationProblem.softmaxTwice(inList: config.model.layers != nil) }
    if config.loss == .nll && !config.model.endsInSoftmax { throw ConfigurationProblem.nllNeedsProbabilities }
  }

  /// Switches to optimizer `kind` with its defaults, the one place they are decided: PyTorch's for every optimizer
  /// (weight decay 0, AdamW's decoupled 0.01, betas 0.9/0.999, alpha 0.99, L-BFGS history 100 on the full batch),
  /// except SGD, which keeps the course's defaults of the data set `dataset` (`defaults(for:)`; nil for rows a program
  /// made), with a step of 0.05 on a CNN (at 0.1 with momentum 0.9 LeNet's first steps diverge). Call it after
  /// choosing the model.
  public mutating func useOptimizer(_ kind: OptimizerKind, dataset: DatasetSource?) {
    let course = dataset.map { TrainingConfig.defaults(for: $0).optimizer } ?? OptimizerSpec(learningRate: 0.1, momentum: 0.9)
    var o = OptimizerSpec(kind: kind, learningRate: kind == .sgd ? (model.hasConvolution ? 0.05 : course.learningRate) : kind.defaultLearningRate)
    if kind == .sgd {
      o.momentum = course.momentum
      o.weightDecay = course.weightDecay
    }
    o.decoupledWeightDecay = kind == .adamw ? 0.01 : 0
    o.schedule = optimizer.schedule
    optimizer = o
    if kind == .lbfgs { batchSize = Int.max }
  }

  public static func defaults(for dataset: DatasetSource) -> TrainingConfig {
    if case .text = dataset {
      // A character GPT of nanoGPT's small shape, on windows of the text.
      return TrainingConfig(model: ModelSpec(gpt: GPTShape(layers: 4, width: 128, heads: 4)), loss: .crossEntropy,
                            optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9), batchSize: 32, epochs: 5)
    }
    switch dataset.task {
    case .classification where dataset.isTable && dataset != .mnist:
      // A CSV of class labels: its features are standardised, as a regression table's are.
      return TrainingConfig(
        standardize: true, model: ModelSpec(kind: .mlp, hidden: [256], activation: .elementwise(.relu)),
        loss: .crossEntropy, optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4), batchSize: 32,
        epochs: 5)
    case .classification:
      return TrainingConfig(
        model: ModelSpec(kind: .mlp, hidden: [256], activation: .elementwise(.relu)), loss: .crossEntropy,
        optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4), batchSize: 128, epochs: 5)
    case .regression:
      return TrainingConfig(
        standardize: true, model: ModelSpec(kind: .linear), loss: .mse,
        optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9), batchSize: 32, epochs: 500)
    }
  }

  /// The settings of the chosen optimizer beyond lr, momentum and the decays, with the values it uses (those
  /// `OptimizerOption` says it reads).
  var optimizerSettings: [(String, JSON)] {
    let o = optimizer
    let values: [(OptimizerOption, JSON)] = [
      (.alpha, JSON(o.alpha)), (.beta1, JSON(o.beta1)), (.beta2, JSON(o.beta2)), (.eps, JSON(o.effectiveEps)),
      (.history, JSON(o.history)), (.lineSearch, JSON(o.lineSearch.rawValue)),
    ]
    return values.filter { $0.0.applies(to: o.kind) }.map { ($0.0.rawValue.replacingOccurrences(of: "-", with: "_"), $0.1) }
  }

  /// config.json, for a run on the data `data` loaded (nil: rows a program made). `layers`: the model's list as built
  /// (a shorthand expanded), when known. `trainRows`: the training set's size, recorded as the batch size of a
  /// full-batch run (L-BFGS's default).
  public func json(data: DataOrigin?, worldSize: Int, layers: [LayerItem]? = nil, trainRows: Int? = nil) -> JSON {
    let dataset = data?.source, testFraction = data?.testFraction
    return .object([
      ("dataset", dataset.map { JSON($0.description) } ?? .null),
      ("test_fraction", JSON(testFraction ?? dataset.flatMap { $0.isTable ? $0.defaultTestFraction : nil })),
      ("target", { () -> JSON in
        switch dataset {
        case .csv(_, let t, _, _)?, .npz(_, let t)?, .npy(_, _, let t)?: return t.spelling.map { JSON($0) } ?? .null
        default: return .null
        }
      }()),
      ("header", { () -> JSON in
        if case .csv(_, _, let h, _)? = dataset { return JSON(h.rawValue) }
        return .null
      }()),
      ("missing", { () -> JSON in
        if case .csv(_, _, _, let m)? = dataset { return JSON((m ?? .error).rawValue) }
        return .null
      }()),
      ("standardize", .bool(standardize)),
      ("model", JSON((layers ?? model.layers).map(LayerList.text) ?? model.kind.rawValue)),
    ] + (model.layers == nil ? [
      ("model_shorthand", JSON(model.kind.rawValue)),
      ("hidden", .array(model.hidden.map { JSON($0) })),
      ("channels", .array(model.channels.map { JSON($0) })),
      ("kernel_size", JSON(model.kernel)),
      ("activation", JSON(model.activation.description)),
      ("output_softmax", .bool(model.outputSoftmax)),
    ] : []) + [
      ("loss", JSON(loss.description)),
      ("loss_reduction", JSON(lossReduction.rawValue)),
      ("optimizer", JSON(optimizer.name)),
      ("lr", JSON(optimizer.learningRate)),
      ("lr_schedule", JSON(optimizer.schedule.description)),
      // Momentum only where the optimizer has one (L-BFGS, Adam and Adagrad never read it).
      ("momentum", OptimizerOption.momentum.applies(to: optimizer.kind) ? JSON(optimizer.momentum) : .null),
      ("nesterov", .bool(optimizer.nesterov)),
      ("weight_decay", JSON(optimizer.weightDecay)),
      ("decoupled_weight_decay", JSON(optimizer.decoupledWeightDecay)),
      ("decay_bias", .bool(optimizer.decayBiases)),
    ] + optimizerSettings + [
      ("batch_size", JSON(trainRows.map { min(batchSize, $0) } ?? batchSize)),
      ("epochs", JSON(epochs)),
      ("seed", .number(Double(seed))),
      ("drop_last", .bool(dropLast)),
      ("deterministic", .bool(deterministic)),
      ("accumulate", JSON(microBatches)),
      ("clip_grad_norm", clipGradNorm.map { JSON($0) } ?? .null),
      ("compress", JSON(exchange.compression.description)),
      ("bucket_size", exchange.bucketBytes.map { JSON($0) } ?? JSON("default")),
      ("shared_memory", exchange.sharedMemory.map { JSON.bool($0) } ?? JSON("default")),
      ("on_nan", JSON(onNonFinite.rawValue)),
      ("world_size", JSON(worldSize)),
      // The same settings as a typed value: what `eval`, `predict` and `export` decode.
      ("run", RunDescription(data: data, training: self).json),
    ])
  }
}

/// A run as its records describe it (config.json's and the checkpoint's "run"): the data it loaded and how it
/// trained, as typed values that `eval`, `predict`, `export` and `--resume` decode.
public struct RunDescription: Equatable, Sendable, Codable {
  /// nil for rows a program made.
  public var data: DataOrigin?
  public var training: TrainingConfig

  public init(data: DataOrigin?, training: TrainingConfig) {
    self.data = data
    self.training = training
  }

  /// Its Codable encoding, keys in snake case as config.json's own and the flags' words (`batch_size`,
  /// `weight_decay`, `test_fraction`), values as the command line spells them (`"relu"`, `"hinge(margin=1.0)"`).
  public var json: JSON {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    guard let bytes = try? encoder.encode(self), let json = try? JSON.parse(bytes: Array(bytes)) else { return .null }
    return json
  }

  /// A description from its encoding; reads the camel-case keys of earlier versions too (a key without an underscore
  /// passes unchanged), and the "run" of the version before those, one TrainingConfig with the data set (`dataset`,
  /// `testFraction`) among its settings.
  public init(run: JSON) throws {
    let bytes = Data(run.serialized().utf8)
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    if run["training"] != nil {
      self = try decoder.decode(RunDescription.self, from: bytes)
      return
    }
    struct Earlier: Decodable {
      var dataset: DatasetSource?
      var testFraction: Double?
    }
    let earlier = try decoder.decode(Earlier.self, from: bytes)
    self.init(data: earlier.dataset.map { DataOrigin(source: $0, testFraction: earlier.testFraction) },
              training: try decoder.decode(TrainingConfig.self, from: bytes))
  }
}
