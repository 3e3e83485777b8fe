import ArgumentParser
import Datasets
import Layers
import Optimizers
import Training
import _Support

extension ModelKind: ExpressibleByArgument {}

extension LineSearch: ExpressibleByArgument {}
extension NonFinitePolicy: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension LossReduction: ExpressibleByArgument {}

/// A run's flags, in groups that each command takes as it uses them: `train` and `sweep` all of them
/// (`TrainingOptions`), `scaling` all but the epoch loop's (`ScalingOptions`), `eval` and `predict` the data and the
/// model (`ModelRunOptions`), so that each command's help lists only the flags it reads.
protocol RunFlags {
  var data: DataOptions { get }
  var network: ModelOptions { get }
  /// The update rule's flags, when the command takes them (else the data set's defaults).
  var optimizerFlags: OptimizerOptions? { get }
  /// The step's flags (batch, determinism, the exchange), when the command takes them.
  var stepFlags: StepOptions? { get }
  /// The epoch loop's flags, when the command takes them.
  var loopFlags: LoopOptions? { get }
}

extension RunFlags {
  /// The run's configuration: the flags given, the data set's defaults for the rest.
  func makeConfig() throws -> TrainingConfig {
    var c = TrainingConfig.defaults(for: try data.source)
    try network.apply(to: &c)
    if let o = optimizerFlags { try o.apply(to: &c, dataset: try data.source) }
    if let s = stepFlags { try s.apply(to: &c) }
    if let l = loopFlags { l.apply(to: &c) }
    c.seed = data.firstSeed
    if let standardize = data.standardize { c.standardize = standardize }
    return c
  }

  /// For `dpt train` and `scaling`: every listable flag given at most one value.
  func requireSingleValues() throws {
    for (flag, count) in [("--lr", try optimizerFlags?.lrValues?.count), ("--momentum", try optimizerFlags?.momentumValues?.count),
                          ("--weight-decay", try optimizerFlags?.weightDecayValues?.count), ("--batch-size", try stepFlags?.batchSizeValues?.count)] {
      if let count, count > 1 { throw ValidationError("\(flag) takes one value in dpt train; `dpt sweep` tries several") }
    }
    if try data.seeds.count > 1 { throw ValidationError("--seed takes one value in dpt train; `dpt sweep` repeats every setting with each seed of a list") }
  }

  /// What no one group can check alone: the exchange against the update rule, and the settings against the kind of
  /// data, before anything is loaded (usage errors, exit 64, like a group's own).
  func validateTogether() throws {
    if let step = stepFlags {
      do {
        try ExchangeSpec(compression: try step.parsedCompression(), sharedMemory: step.sharedMemory)
          .check(deterministic: step.deterministic, optimizer: optimizerFlags?.optimizer ?? .sgd)
      } catch let p as ConfigurationProblem {
        throw ValidationError(ErrorMessages.text(p, compress: step.compress))
      }
    }
    let source = try data.source
    if case .csv(_, .infer, _, _) = source { return }  // an unreadable CSV: reported when it is loaded
    let config = try makeConfig()
    do { try config.check(task: source.task, dataName: source.description) } catch let p as ConfigurationProblem {
      throw ValidationError(ErrorMessages.text(p))
    }
    // A text's windows are known without reading it (its vocabulary is not, and no layer's shape depends on it): a
    // list whose layers do not fit one another is a usage error too.
    if case .text(_, let context) = source, context > 0 {
      do { _ = try LayerList.layers(try config.model.items(inputShape: [context], outputs: 1), input: LayerInput(shape: [context], vocabulary: 1), as: Float.self) }
      catch let e as LayerError { throw ValidationError(ErrorMessages.text(e)) }
    }
    // Where the data's shape is known without reading it, a list that does not fit it is a usage error too.
    if let (sample, outputs) = source.knownShape {
      do { _ = try LayerList.build(try config.model.items(inputShape: sample, outputs: outputs), inputShape: sample, outputs: outputs, as: Float.self) }
      catch let e as LayerError { throw ValidationError(ErrorMessages.text(e)) }
      catch let p as ConfigurationProblem { throw ValidationError(ErrorMessages.text(p)) }
    }
  }
}

/// The options that define a training run, every group: `train` and `sweep`. A flag reads as before
/// (`options.lr`, `options.earlyStop`), from whichever group holds it.
@dynamicMemberLookup
struct TrainingOptions: ParsableArguments, RunFlags {
  /// The most epochs a warmup may span (a step count must stay far inside Int).
  static let largestEpochs = 1e6
  /// The shortest stall timeout: a step, an evaluation or a checkpoint can take this long on a busy host.
  static let shortestStallTimeout = 1.0
  /// The largest width, channel count or batch size dpt takes: far beyond any machine's memory for a layer, yet small
  /// enough that no product of shapes can overflow before the memory check says so.
  static let largest = 1 << 24

  @OptionGroup var data: DataOptions
  @OptionGroup var network: ModelOptions
  @OptionGroup var optimization: OptimizerOptions
  @OptionGroup var step: StepOptions
  @OptionGroup var loop: LoopOptions

  var optimizerFlags: OptimizerOptions? { optimization }
  var stepFlags: StepOptions? { step }
  var loopFlags: LoopOptions? { loop }

  subscript<T>(dynamicMember path: KeyPath<ModelOptions, T>) -> T { network[keyPath: path] }
  subscript<T>(dynamicMember path: KeyPath<OptimizerOptions, T>) -> T { optimization[keyPath: path] }
  subscript<T>(dynamicMember path: KeyPath<StepOptions, T>) -> T { step[keyPath: path] }
  subscript<T>(dynamicMember path: KeyPath<LoopOptions, T>) -> T { loop[keyPath: path] }

  func validate() throws { try validateTogether() }

  /// The values of a flag that a sweep may list ("0.1" or "0.1,0.01"), each checked.
  static func list(_ text: String?, _ flag: String, _ check: (Double) -> Bool, _ rule: String) throws -> [Double]? {
    guard let text else { return nil }
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    var values: [Double] = []
    for p in parts {
      guard let v = Double(p), v.isFinite, check(v) else { throw ValidationError("\(flag) must be \(rule) (got '\(p)')") }
      values.append(v)
    }
    return values
  }
}

/// `dpt scaling`: a step's flags (the data, the model, the update rule, the batch and the exchange), not the epoch
/// loop's.
struct ScalingOptions: ParsableArguments, RunFlags {
  @OptionGroup var data: DataOptions
  @OptionGroup var network: ModelOptions
  @OptionGroup var optimization: OptimizerOptions
  @OptionGroup var step: StepOptions

  var optimizerFlags: OptimizerOptions? { optimization }
  var stepFlags: StepOptions? { step }
  var loopFlags: LoopOptions? { nil }

  func validate() throws { try validateTogether() }
}

/// `dpt eval` and `dpt predict`: the data and the model the weights go into.
struct ModelRunOptions: ParsableArguments, RunFlags {
  @OptionGroup var data: DataOptions
  @OptionGroup var network: ModelOptions

  var optimizerFlags: OptimizerOptions? { nil }
  var stepFlags: StepOptions? { nil }
  var loopFlags: LoopOptions? { nil }

  func validate() throws { try validateTogether() }
}

/// The model and its loss.
struct ModelOptions: ParsableArguments {
  @Option(help: ArgumentHelp(
    "A list of layers, e.g. \"dense(3), relu, dense(1), tanh\", or a shorthand: linear | softmax | mlp | cnn | cnn:C1,C2 | gpt:L,D,H (default: mlp for images, linear for tables, gpt:4,128,4 for text).",
    discussion: """
      Layers (PyTorch's vocabulary; input sizes are inferred, the last width is the data's classes or targets):
      dense(N), conv2d(C, k, stride=1, padding=0), maxpool2d(k), avgpool2d(k), flatten, dropout(p), batchnorm
      (momentum=0.1, eps=1e-5), relu, tanh, sigmoid, leaky-relu(slope), prelu, requ, softmax, identity. The
      shorthands expand to lists (the run's first lines show them): mlp is flatten (for images), then per --hidden
      width dense(W) and the --activation, then dense(outputs); cnn:6,16 is two blocks of conv2d(C, 5, padding=2),
      the activation and maxpool2d(2), then flatten and the --hidden layers (default 120,84): LeNet-5's shape.
      """.reflowed, valueName: "layers"))
  var model: String?

  @Option(help: ArgumentHelp("Read the list of layers from this file: commas or newlines separate the items, # starts a comment.", valueName: "file"))
  var modelFile: String?

  @Option(parsing: .unconditional, help: ArgumentHelp("Shorthands mlp and cnn: hidden dense widths, e.g. 256 or 256,128 (default 256 for mlp, 120,84 for cnn).", valueName: "widths"))
  var hidden: String?

  @Option(help: "Shorthands mlp and cnn: the activation of the hidden layers: relu | tanh | sigmoid | leaky-relu | prelu | requ | identity (default relu).")
  var activation: String?

  @Option(parsing: .unconditional, help: "Slope of leaky-relu for x < 0 (shorthands; in a list write leaky-relu(0.2)).")
  var leakySlope: Double = 0.01

  @Option(parsing: .unconditional, help: "Shorthand cnn: the convolution kernel size (default 5).")
  var kernelSize: Int?

  @Option(name: [.customLong("output"), .customLong("output-layer")],
          help: "Shorthands: a layer after the output: none | softmax (probabilities; train them with --loss nll or hinge). dpt predict calls it --output-layer.")
  var output: String?

  @Option(help: ArgumentHelp("cross-entropy | nll | hinge | mse (l2) | half-mse (0.5 (y - t)^2) | l1 | huber | cosine (default: cross-entropy for images, mse for tables).", valueName: "name"))
  var loss: String?

  @Option(help: ArgumentHelp(
    "How a batch's losses make the objective: mean | sum (PyTorch's reduction).",
    discussion: "sum: the sum over the samples and, for the regression losses, over each sample's outputs, as torch's reduction='sum'. With it a hand-out's loss of one example and its learning rate are taken as written."))
  var lossReduction: LossReduction = .mean

  @Option(parsing: .unconditional, help: "Margin of the multiclass hinge loss.")
  var margin: Double = 1

  @Option(help: ArgumentHelp(
    "The multiclass hinge per sample: the sum over the wrong classes, or its mean over the C classes.",
    discussion: """
      sum (the course's): sum over j != y of max(0, margin + s_j - s_y), which is C times PyTorch's MultiMarginLoss.
      mean: that sum / C, exactly torch.nn.MultiMarginLoss(margin=...).
      """.reflowed))
  var hingeReduction: HingeReduction = .sum

  @Option(parsing: .unconditional, help: "Delta of the Huber loss (quadratic within it, linear beyond).")
  var huberDelta: Double = 1

  func validate() throws {
    if !(leakySlope.isFinite) { throw ValidationError("--leaky-slope must be a number") }
    if !(margin > 0) { throw ValidationError("--margin must be > 0 (got \(margin))") }
    if hingeReduction != .sum && loss != "hinge" { throw ValidationError("--hinge-reduction applies to --loss hinge only") }
    if !(huberDelta > 0) { throw ValidationError("--huber-delta must be > 0 (got \(huberDelta))") }
    if let k = kernelSize, k < 1 || k % 2 == 0 || k > 1023 { throw ValidationError("--kernel-size must be odd, from 1 to 1023 (got \(k))") }
    if let o = output, !["none", "softmax"].contains(o) { throw ValidationError("--output '\(o)': use none or softmax") }
    _ = try parsedLayers()
    _ = try parsedActivation()
    _ = try parsedLoss()
  }

  /// The shorthand named by --model ((kind, conv channels)), nil when --model is a list of layers or not given.
  func parsedShorthand() throws -> (ModelKind, [Int])? {
    guard let model, modelFile == nil else { return nil }
    if model.hasPrefix("cnn:") {
      let channels = model.dropFirst(4).split(separator: ",").map { Int($0) }
      guard !channels.isEmpty, channels.allSatisfy({ ($0 ?? 0) > 0 && $0! <= TrainingOptions.largest }) else {
        throw ValidationError("--model \(model): use cnn:C1,C2 with channel counts from 1 to \(TrainingOptions.largest), e.g. cnn:6,16")
      }
      return (.cnn, channels.map { $0! })
    }
    guard let kind = ModelKind(rawValue: model) else { return nil }
    return (kind, kind == .cnn ? [6, 16] : [])
  }

  /// The list of layers of --model or --model-file (nil for a shorthand, or neither).
  func parsedLayers() throws -> [LayerItem]? {
    if let modelFile {
      if model != nil { throw ValidationError("--model and --model-file both give the model: drop one of them") }
      let bytes: [UInt8]
      do { bytes = try Files.read(modelFile, limit: 1 << 20, missing: "check --model-file", limitReason: "the most a list of layers may take") } catch {
        throw ValidationError("--model-file \(error)")
      }
      guard let text = String(validating: bytes, as: UTF8.self) else {
        throw ValidationError("--model-file \(modelFile): not UTF-8 text")
      }
      do { return try LayerList.parse(text, file: true) } catch let e as LayerError {
        throw ValidationError("--model-file \(modelFile): \(e)")
      }
    }
    guard let model, !model.hasPrefix("gpt:"), try parsedShorthand() == nil else { return nil }
    do { return try LayerList.parse(model) } catch let e as LayerError {
      throw ValidationError("--model \(e)")
    }
  }

  func hiddenWidths(_ text: String) throws -> [Int] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false)
    let widths = parts.map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !parts.isEmpty, widths.allSatisfy({ ($0 ?? 0) > 0 }) else {
      throw ValidationError("--hidden must list positive widths such as 256 or 256,128 (got '\(text)')")
    }
    if let big = widths.first(where: { $0! > TrainingOptions.largest }) {
      throw ValidationError("--hidden width \(big!) is more than \(TrainingOptions.largest): no machine holds such a layer")
    }
    return widths.map { $0! }
  }

  func parsedActivation() throws -> HiddenActivation {
    let activation = self.activation ?? "relu"
    switch activation {
    case "relu": return .elementwise(.relu)
    case "tanh": return .elementwise(.tanh)
    case "sigmoid": return .elementwise(.sigmoid)
    case "leaky-relu", "leaky_relu", "leakyrelu": return .elementwise(.leakyReLU(slope: leakySlope))
    case "requ": return .elementwise(.requ)
    case "identity", "linear": return .elementwise(.identity)
    case "prelu": return .prelu
    default:
      throw ValidationError("--activation '\(activation)': use relu, tanh, sigmoid, leaky-relu, prelu, requ or identity")
    }
  }

  func parsedLoss() throws -> Loss? {
    guard let loss else { return nil }
    guard let l = Loss.named(loss, margin: margin, delta: huberDelta, hingeMean: hingeReduction == .mean) else {
      throw ValidationError("--loss '\(loss)': use \(Loss.names.joined(separator: ", "))")
    }
    return l
  }

  /// The model and the loss into `c`.
  func apply(to c: inout TrainingConfig) throws {
    if let model, modelFile == nil, model.hasPrefix("gpt:") {
      guard let shape = GPTShape(model.dropFirst(4)) else {
        throw ValidationError("--model \(model): use gpt:L,D,H with L blocks of width D and H heads dividing D, e.g. gpt:4,128,4")
      }
      for (flag, given) in [("--hidden", hidden != nil), ("--activation", activation != nil), ("--kernel-size", kernelSize != nil),
                            ("--output", output != nil)] where given {
        throw ValidationError("\(flag) applies to the shorthands mlp, cnn and linear, not to --model \(model)")
      }
      c.model = ModelSpec(gpt: shape)
    } else if let layers = try parsedLayers() {
      for (flag, given) in [("--hidden", hidden != nil), ("--activation", activation != nil), ("--kernel-size", kernelSize != nil),
                            ("--output", output != nil)] where given {
        throw ValidationError("\(flag) applies to the shorthands (mlp, cnn, linear); a list of layers says it itself, e.g. \"dense(256), tanh, dense(10), softmax\"")
      }
      c.model = ModelSpec(layers: layers)
    } else {
      if let (kind, channels) = try parsedShorthand() {
        c.model.kind = kind
        c.model.channels = channels
      } else if let model {
        throw ValidationError("--model '\(model)': use a list of layers such as \"dense(256), relu, dense(10)\", or linear, softmax, mlp, cnn or cnn:C1,C2")
      }
      switch c.model.kind {
      case .mlp: c.model.hidden = try hiddenWidths(hidden ?? "256")
      case .cnn: c.model.hidden = try hidden.map(hiddenWidths) ?? [120, 84]
      case .linear, .softmax:
        if hidden != nil { throw ValidationError("--hidden applies to --model mlp and cnn") }
        c.model.hidden = []
      }
      c.model.activation = try parsedActivation()
      c.model.kernel = kernelSize ?? 5
      c.model.outputSoftmax = output == "softmax"
    }
    c.lossReduction = lossReduction
    if let l = try parsedLoss() {
      c.loss = l
    } else if c.model.layers == nil && c.model.kind == .softmax {
      c.loss = .crossEntropy
    }
  }
}

/// The update rule and its learning-rate schedule.
struct OptimizerOptions: ParsableArguments {
  @Option(help: "The update rule.")
  var optimizer: OptimizerKind = .sgd

  @Option(parsing: .unconditional, help: ArgumentHelp("Learning rate (default: 0.1 sgd (0.05 for cnn), 0.01 adagrad and rmsprop, 0.001 adam and adamw, 1 lbfgs's first trial step). A sweep takes a list: 0.1,0.01.", valueName: "lr"))
  var lr: String?

  @Option(parsing: .unconditional, help: ArgumentHelp("Momentum of sgd (default 0.9) and rmsprop (default 0). A sweep takes a list.", valueName: "mu"))
  var momentum: String?

  @Flag(help: "Nesterov momentum (sgd; needs --momentum > 0).")
  var nesterov = false

  @Option(parsing: .unconditional, help: ArgumentHelp(
    "L2 weight decay wd, added to the gradient as wd * p (default: sgd 5e-4 for images, 0 for tables; every other optimizer 0, as PyTorch's). A sweep takes a list: 5e-2,5e-4,5e-6.",
    discussion: """
      The optimizer then minimises mean loss + (wd/2) ||p||^2 over the decayed parameters. For --model linear --loss
      mse on n training rows with k outputs that is the ridge problem of `dpt lstsq --ridge LAMBDA` with
      LAMBDA = n k wd / 2 (add --penalize-intercept when --decay-bias is true, the default).
      """.reflowed, valueName: "wd"))
  var weightDecay: String?

  @Option(parsing: .unconditional, help: ArgumentHelp("Decoupled weight decay lambda: p *= 1 - lr lambda each step (AdamW's; default 0.01 for adamw, else 0).", valueName: "lambda"))
  var decoupledWeightDecay: Double?

  @Option(help: "Whether weight decay applies to biases too (PyTorch's default: true).")
  var decayBias: Bool = true

  @Option(parsing: .unconditional, help: "Adam's beta1 (default 0.9).")
  var beta1: Double?

  @Option(parsing: .unconditional, help: "Adam's beta2 (default 0.999).")
  var beta2: Double?

  @Option(parsing: .unconditional, help: "The epsilon of adagrad (1e-10), rmsprop and adam (1e-8).")
  var eps: Double?

  @Option(parsing: .unconditional, help: "RMSprop's smoothing constant (default 0.99).")
  var alpha: Double?

  @Option(parsing: .unconditional, help: ArgumentHelp("L-BFGS's number of curvature pairs (default 100, PyTorch's history_size).", valueName: "pairs"))
  var history: Int?

  @Option(help: "L-BFGS's line search (default: strong-wolfe, as PyTorch's line_search_fn=\"strong_wolfe\"; backtracking halves the step until the loss falls enough).")
  var lineSearch: LineSearch?

  @Option(help: "constant | step | cosine")
  var lrSchedule: String = "constant"

  @Option(parsing: .unconditional, help: "--lr-schedule step: multiply the learning rate by --lr-gamma every this many epochs.")
  var lrStepEpochs: Int = 10

  @Option(parsing: .unconditional, help: "--lr-schedule step: the factor.")
  var lrGamma: Double = 0.1

  @Option(parsing: .unconditional, help: "--lr-schedule cosine: the final learning rate.")
  var lrMin: Double = 0

  @Option(parsing: .unconditional, help: "Epochs of linear warmup from lr/steps to lr (large global batches on many ranks need it).")
  var warmupEpochs: Double = 0

  var lrValues: [Double]? { get throws { try TrainingOptions.list(lr, "--lr", { $0 > 0 }, "a number > 0") } }
  var momentumValues: [Double]? { get throws { try TrainingOptions.list(momentum, "--momentum", { $0 >= 0 && $0 < 1 }, "in [0, 1)") } }
  var weightDecayValues: [Double]? { get throws { try TrainingOptions.list(weightDecay, "--weight-decay", { $0 >= 0 }, ">= 0") } }

  func validate() throws {
    _ = try lrValues
    _ = try weightDecayValues
    let momentum = try momentumValues
    // Which settings the optimizer reads: the table a sweep's settings and config.json use too.
    let given: [(OptimizerOption, Bool)] = [
      (.momentum, momentum != nil), (.nesterov, nesterov), (.beta1, beta1 != nil), (.beta2, beta2 != nil), (.alpha, alpha != nil),
      (.eps, eps != nil), (.history, history != nil), (.lineSearch, lineSearch != nil), (.decoupledWeightDecay, decoupledWeightDecay != nil),
    ]
    for (option, isGiven) in given where isGiven && !option.applies(to: optimizer) {
      throw ValidationError(option.notApplicable(to: optimizer))
    }
    if nesterov && (momentum ?? [0.9]).contains(where: { $0 <= 0 }) { throw ValidationError("--nesterov needs --momentum > 0") }
    if let v = decoupledWeightDecay, !(v >= 0 && v.isFinite) { throw ValidationError("--decoupled-weight-decay must be >= 0 (got \(v))") }
    for (name, value) in [("--beta1", beta1), ("--beta2", beta2), ("--alpha", alpha)] {
      if let v = value, !(v >= 0 && v < 1) { throw ValidationError("\(name) must be in [0, 1) (got \(v))") }
    }
    if let e = eps, !(e > 0) { throw ValidationError("--eps must be > 0 (got \(e))") }
    if let h = history, h < 1 || h > 100_000 { throw ValidationError("--history must be from 1 to 100000 (got \(h))") }
    if lrStepEpochs < 1 { throw ValidationError("--lr-step-epochs must be at least 1") }
    if !(lrGamma > 0) || !lrGamma.isFinite || !(lrMin >= 0) || !lrMin.isFinite {
      throw ValidationError("--lr-gamma must be a number > 0 and --lr-min one >= 0 (got \(lrGamma) and \(lrMin))")
    }
    // Epochs become step counts: a warmup of 1e18 epochs overflowed Int (SIGILL).
    if !(warmupEpochs >= 0 && warmupEpochs <= TrainingOptions.largestEpochs) {
      throw ValidationError("--warmup-epochs must be a number of epochs from 0 to \(NumberText.compact(TrainingOptions.largestEpochs)) (got \(warmupEpochs))")
    }
    _ = try schedule()
  }

  func schedule() throws -> LearningRateSchedule {
    let kind: LearningRateSchedule.Kind
    switch lrSchedule {
    case "constant": kind = .constant
    case "step": kind = .step(everyEpochs: lrStepEpochs, gamma: lrGamma)
    case "cosine": kind = .cosine(minimum: lrMin)
    default: throw ValidationError("--lr-schedule '\(lrSchedule)': use constant, step or cosine")
    }
    return LearningRateSchedule(kind, warmupEpochs: warmupEpochs)
  }

  /// The update rule into `c`: the optimizer's defaults for the data set, then what the flags say.
  func apply(to c: inout TrainingConfig, dataset: DatasetSource) throws {
    c.useOptimizer(optimizer, dataset: dataset)
    var o = c.optimizer
    if let lr = try lrValues?.first { o.learningRate = lr }
    if let mu = try momentumValues?.first { o.momentum = mu }
    o.nesterov = nesterov
    if let wd = try weightDecayValues?.first { o.weightDecay = wd }
    if let lambda = decoupledWeightDecay { o.decoupledWeightDecay = lambda }
    o.decayBiases = decayBias
    if let b = beta1 { o.beta1 = b }
    if let b = beta2 { o.beta2 = b }
    o.eps = eps
    if let a = alpha { o.alpha = a }
    if let h = history { o.history = h }
    if let l = lineSearch { o.lineSearch = l }
    o.schedule = try schedule()
    c.optimizer = o
  }
}

/// One step on N ranks: the batch, accumulation, clipping, determinism and the gradient exchange.
struct StepOptions: ParsableArguments {
  @Option(parsing: .unconditional, help: ArgumentHelp("Global batch size, shared by all ranks (default 128 for images, 32 for tables, the whole training set for lbfgs). A sweep takes a list.", valueName: "n"))
  var batchSize: String?

  @Flag(help: "Bitwise identical results for any number of ranks: fixed chunks per batch, sums in exact 64-bit fixed point (slower).")
  var deterministic = false

  @Option(parsing: .unconditional, help: "--deterministic: samples per chunk (the same whatever the number of ranks).")
  var deterministicChunk: Int = 16

  @Option(parsing: .unconditional, help: ArgumentHelp("Gradient accumulation: N micro-batches of --batch-size make one optimizer step on N times the batch, with one exchange a step (exactly that step; bitwise with --deterministic).", valueName: "n"))
  var accumulate: Int = 1

  @Option(parsing: .unconditional, help: ArgumentHelp("Clip the global gradient norm to X after the reduction, as torch.nn.utils.clip_grad_norm_ (the same on every rank).", valueName: "X"))
  var clipGradNorm: Double?

  @Option(help: ArgumentHelp(
    "Gradient compression on the wire: \(Compression.syntax).",
    discussion: """
      bf16 and fp16 send 16-bit values (fp16 with a power-of-two scale per block) and add them in float32;
      topk:F sends the fraction F of each block's values largest in magnitude, as (index, value) pairs, and keeps the
      rest for the next step (error feedback); powersgd:R sends two rank-R factors per large weight matrix, with error feedback and a warm start, and the
      rest uncompressed. Compressed runs are bitwise repeatable for a seed and world size, but N ranks no longer take
      exactly the step one rank takes on the whole batch.
      """.reflowed, valueName: "kind"))
  var compress: String = "none"

  @Option(parsing: .unconditional, help: ArgumentHelp(
    "Gradient buckets of this many bytes, each reduced while the backward pass goes on; 0: one blocking all-reduce of the whole gradient after the backward pass.",
    discussion: """
      Default: 0 when every rank runs on one host; across hosts 262144, or 1048576 with --compress bf16 or fp16.
      Given, the ranks of one host exchange messages too, unless --shared-memory is given as well.
      """.reflowed))
  var bucketSize: Int?

  @Flag(inversion: .prefixedNo, help: ArgumentHelp(
    "Ranks on one host reduce through shared memory and split the optimizer step over one shared parameter buffer.",
    discussion: """
      Default: on whenever a host runs several ranks and --compress is none; across hosts each local rank then
      carries its shard of the sum to the same local rank of the other hosts (hierarchical). With --compress bf16 or
      fp16 it is off unless asked for (the shards then cross hosts compressed); powersgd never uses it.
      """.reflowed))
  var sharedMemory: Bool?

  @Option(parsing: .unconditional, help: "Steps with the uncompressed exchange before compression starts (default: 2 for powersgd, as PyTorch's benchmark peer; 0 for bf16 and fp16).")
  var compressWarmupSteps: Int?

  var batchSizeValues: [Int]? {
    get throws {
      try TrainingOptions.list(batchSize, "--batch-size", { $0 >= 1 && $0 == $0.rounded() && $0 <= Double(TrainingOptions.largest) },
                               "a whole number from 1 to \(TrainingOptions.largest)")?.map { Int($0) }
    }
  }

  func validate() throws {
    _ = try batchSizeValues
    let largest = TrainingOptions.largest
    if let x = clipGradNorm, !(x > 0 && x.isFinite) { throw ValidationError("--clip-grad-norm must be a number > 0 (got \(x))") }
    if accumulate < 1 || accumulate > largest { throw ValidationError("--accumulate must be from 1 to \(largest) (got \(accumulate))") }
    if deterministicChunk < 1 || deterministicChunk > largest { throw ValidationError("--deterministic-chunk must be from 1 to \(largest) (got \(deterministicChunk))") }
    _ = try parsedCompression()
    if let b = bucketSize, b < 0 { throw ValidationError("--bucket-size must be >= 0 bytes (got \(b))") }
    if let w = compressWarmupSteps, w < 0 { throw ValidationError("--compress-warmup-steps must be >= 0 (got \(w))") }
  }

  func parsedCompression() throws -> Compression {
    guard let c = Compression(compress) else {
      throw ValidationError("--compress '\(compress)': use \(Compression.syntax) (F a fraction in (0, 1] such as 0.01, R a rank such as 4)")
    }
    return c
  }

  /// The batch, determinism and exchange into `c` (after the optimizer's defaults: L-BFGS's full batch yields to
  /// --batch-size).
  func apply(to c: inout TrainingConfig) throws {
    if let batchSize = try batchSizeValues?.first { c.batchSize = batchSize }
    c.deterministic = deterministic
    c.deterministicChunk = deterministicChunk
    c.accumulate = accumulate > 1 ? accumulate : nil
    c.clipGradNorm = clipGradNorm
    c.exchange = ExchangeSpec(compression: try parsedCompression(), bucketBytes: bucketSize, warmupSteps: compressWarmupSteps,
                              sharedMemory: sharedMemory)
  }
}

/// The epoch loop: how long, what a non-finite loss does, early stopping, divergence and the stall watchdog.
struct LoopOptions: ParsableArguments {
  @Option(parsing: .unconditional, help: ArgumentHelp("Passes over the training set (default 5 for images, 500 for tables; for full-batch lbfgs, iterations).", valueName: "n"))
  var epochs: Int?

  @Flag(help: "Leave out the last, short batch of each epoch.")
  var dropLast = false

  @Option(help: "A NaN or infinite loss: stop names the epoch and step and keeps the last checkpoint; skip-batch makes no update for that batch.")
  var onNan: NonFinitePolicy = .stop

  @Option(parsing: .unconditional, help: ArgumentHelp(
    "End the job when a collective of the training loop has waited this many seconds (0: wait forever).",
    discussion: """
      The ranks still answering name the ones that stopped (a stopped process, a lost link) with their hosts, and
      end the job with MPI_Abort; the last checkpoint stays intact. The default, 300, is far above the slowest
      legitimate wait (a step, an evaluation, a checkpoint).
      """.reflowed))
  var stallTimeout: Double = 300

  @Option(parsing: .unconditional, help: ArgumentHelp(
    "Stop when the validation loss has not improved for N epochs, keeping the best epoch's weights (best.dptc).",
    discussion: "Without a validation set (--val-fraction) it watches the test loss, and says so. The run's status is then stopped-early, with the epoch.", valueName: "n"))
  var earlyStop: Int?

  @Option(parsing: .unconditional, help: ArgumentHelp(
    "A run whose training loss grows beyond this factor times its first logged loss stops with status diverged (as one whose loss is NaN or infinite).", valueName: "x"))
  var divergeFactor: Double = 1e4

  func validate() throws {
    let largest = TrainingOptions.largest
    if let e = epochs, e <= 0 || e > largest { throw ValidationError("--epochs must be from 1 to \(largest) (got \(e))") }
    if let n = earlyStop, n < 1 || n > largest { throw ValidationError("--early-stop must be a number of epochs from 1 to \(largest) (got \(n))") }
    if !(divergeFactor > 1) || !divergeFactor.isFinite { throw ValidationError("--diverge-factor must be a number > 1 (got \(divergeFactor))") }
    if !(stallTimeout >= 0) || !stallTimeout.isFinite || (stallTimeout > 0 && stallTimeout < TrainingOptions.shortestStallTimeout) {
      throw ValidationError("--stall-timeout must be 0 (no watchdog) or at least \(NumberText.compact(TrainingOptions.shortestStallTimeout)) s (got \(stallTimeout)): a shorter wait blames ranks that are only computing")
    }
  }

  func apply(to c: inout TrainingConfig) {
    if let epochs { c.epochs = epochs }
    c.dropLast = dropLast
    c.onNonFinite = onNan
  }
}

import Foundation

/// `--hinge-reduction`: the course's sum over the wrong classes, or PyTorch's mean over all classes.
enum HingeReduction: String, ExpressibleByArgument, CaseIterable {
  case sum, mean
}
