import ArgumentParser
import Datasets
import Layers
import Training

extension ModelKind: ExpressibleByArgument {}

/// Which rows a run uses: the data set, its split and the feature scaling. `train` and `lstsq` share it, so the
/// closed form is fitted on exactly the rows SGD trains on.
struct DataOptions: ParsableArguments {
  @Option(help: "mnist | fashion-mnist | corn | idx:DIR | csv:PATH (a numeric CSV, target in the last column) | synthetic:ROWS,FEATURES.")
  var dataset: String = "mnist"

  @Option(help: ArgumentHelp(
    "Fraction of a table's rows held out as the test set, chosen by --seed (default 0.2; corn 0).",
    discussion: "Applies to mnist, corn, csv:PATH and synthetic; the IDX data sets have their own test files."))
  var testFraction: Double?

  @Option(help: "Seed of initialisation, shuffling and the train/test split.")
  var seed: UInt64 = 0

  @Flag(inversion: .prefixedNo, help: "Standardise table features with the training rows' mean and std (train: default on for tables; lstsq: off).")
  var standardize: Bool?

  func validate() throws {
    if let f = testFraction, !(f >= 0 && f < 1) { throw ValidationError("--test-fraction must be in [0, 1) (got \(f))") }
    if testFraction != nil, !(try source).isTable {
      throw ValidationError("--test-fraction applies to tables (mnist, corn, csv:PATH, synthetic); \(dataset) has its own test files")
    }
  }

  var source: DatasetSource {
    get throws {
      do { return try DatasetSource(dataset) } catch { throw ValidationError("\(error)") }
    }
  }
}

/// Parses `--predict "6,4;10,5;14,8"`: rows separated by ';', values by ','.
func parsePredictRows(_ text: String) throws -> [[Double]] {
  let rows = text.split(separator: ";").map { $0.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) } }
  guard !rows.isEmpty, rows.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 != nil && $0!.isFinite } }) else {
    throw ValidationError("--predict takes rows of numbers such as \"6,4;10,5;14,8\" (got '\(text)')")
  }
  return rows.map { $0.map { $0! } }
}

/// The rows to predict: --predict, else the course's rows for corn, else none. Checks their width.
func predictionRows(_ text: String?, source: DatasetSource, features: Int) throws -> [[Double]] {
  let rows = try text.map(parsePredictRows) ?? (source == .corn ? Corn.predictionRows : [])
  if let bad = rows.firstIndex(where: { $0.count != features }) {
    throw TrainingError("--predict row \(bad + 1) has \(rows[bad].count) values; \(source) has \(features) features")
  }
  return rows
}

/// The options that define a training run, shared by `train` (and the commands built on it).
struct TrainingOptions: ParsableArguments {
  @OptionGroup var data: DataOptions

  @Option(help: "linear | softmax | mlp (default: mlp for images, linear for tables).")
  var model: ModelKind?

  @Option(help: "Hidden layer widths of --model mlp, e.g. 256 or 256,128.")
  var hidden: String = "256"

  @Option(help: "Activation of the MLP's hidden layers: relu | tanh | sigmoid | leaky-relu | requ | identity.")
  var activation: String = "relu"

  @Option(help: "Slope of leaky-relu for x < 0.")
  var leakySlope: Double = 0.01

  @Option(help: "cross-entropy | mse (default: cross-entropy for images, mse for tables).")
  var loss: String?

  @Option(help: "Learning rate (default 0.1).")
  var lr: Double?

  @Option(help: "Momentum (default 0.9).")
  var momentum: Double?

  @Flag(help: "Nesterov momentum (needs --momentum > 0).")
  var nesterov = false

  @Option(help: ArgumentHelp(
    "L2 weight decay wd, added to the gradient as wd * p (default 5e-4 for images, 0 for tables).",
    discussion: """
      SGD then minimises mean loss + (wd/2) ||p||^2 over the decayed parameters. For --model linear --loss mse on n
      training rows with k outputs that is the ridge problem of `dpt lstsq --ridge LAMBDA` with LAMBDA = n k wd / 2
      (add --penalize-intercept when --decay-bias is true, the default).
      """))
  var weightDecay: Double?

  @Option(help: "Whether weight decay applies to biases too (PyTorch's default: true).")
  var decayBias: Bool = true

  @Option(help: "Global batch size, shared by all ranks (default 128 for images, 32 for tables).")
  var batchSize: Int?

  @Option(help: "Passes over the training set (default 5 for images, 500 for tables).")
  var epochs: Int?

  @Flag(help: "Leave out the last, short batch of each epoch.")
  var dropLast = false

  func validate() throws {
    if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a number > 0 (got \(lr))") }
    if let m = momentum, !(m >= 0 && m < 1) { throw ValidationError("--momentum must be in [0, 1) (got \(m))") }
    if nesterov && (momentum ?? defaults.optimizer.momentum) <= 0 {
      throw ValidationError("--nesterov needs --momentum > 0")
    }
    if let wd = weightDecay, !(wd >= 0 && wd.isFinite) {
      throw ValidationError("--weight-decay must be >= 0 (got \(wd))")
    }
    if let b = batchSize, b <= 0 { throw ValidationError("--batch-size must be at least 1 (got \(b))") }
    if let e = epochs, e <= 0 { throw ValidationError("--epochs must be at least 1 (got \(e))") }
    if !(leakySlope.isFinite) { throw ValidationError("--leaky-slope must be a number") }
    _ = try hiddenWidths()
    _ = try parsedActivation()
    _ = try parsedLoss()
  }

  var defaults: TrainingConfig { TrainingConfig.defaults(for: (try? data.source) ?? .mnist) }

  func hiddenWidths() throws -> [Int] {
    let parts = hidden.split(separator: ",", omittingEmptySubsequences: false)
    let widths = parts.map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !parts.isEmpty, widths.allSatisfy({ ($0 ?? 0) > 0 }) else {
      throw ValidationError("--hidden must list positive widths such as 256 or 256,128 (got '\(hidden)')")
    }
    return widths.map { $0! }
  }

  func parsedActivation() throws -> Activation {
    switch activation {
    case "relu": return .relu
    case "tanh": return .tanh
    case "sigmoid": return .sigmoid
    case "leaky-relu", "leaky_relu", "leakyrelu": return .leakyReLU(slope: leakySlope)
    case "requ": return .requ
    case "identity", "linear": return .identity
    default:
      throw ValidationError("--activation '\(activation)': use relu, tanh, sigmoid, leaky-relu, requ or identity")
    }
  }

  func parsedLoss() throws -> Loss? {
    guard let loss else { return nil }
    guard let l = Loss(rawValue: loss) ?? (loss == "l2" ? .mse : nil) else {
      throw ValidationError("--loss '\(loss)': use \(Loss.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return l
  }

  /// The run's configuration: the flags given, the data set's defaults for the rest.
  func makeConfig() throws -> TrainingConfig {
    var c = TrainingConfig.defaults(for: try data.source)
    c.testFraction = data.testFraction
    if let model {
      c.model.kind = model
      if model != .mlp { c.model.hidden = [] }
    }
    if c.model.kind == .mlp { c.model.hidden = try hiddenWidths() }
    c.model.activation = try parsedActivation()
    if let l = try parsedLoss() {
      c.loss = l
    } else if c.model.kind == .softmax {
      c.loss = .crossEntropy
    }
    if let lr { c.optimizer.learningRate = lr }
    if let momentum { c.optimizer.momentum = momentum }
    c.optimizer.nesterov = nesterov
    if let weightDecay { c.optimizer.weightDecay = weightDecay }
    c.optimizer.decayBiases = decayBias
    if let batchSize { c.batchSize = batchSize }
    if let epochs { c.epochs = epochs }
    c.seed = data.seed
    if let standardize = data.standardize { c.standardize = standardize }
    c.dropLast = dropLast
    return c
  }
}

import Foundation
