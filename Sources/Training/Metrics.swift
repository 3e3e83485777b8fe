import Datasets
import _Support

/// Sums over a data set (reduced across ranks), from which the reported metrics follow.
public struct Evaluation: Equatable, Sendable {
  public var count: Int
  /// Sum of per-sample losses.
  public var lossSum: Double
  /// Samples whose largest output is their class (classification).
  public var correct: Double
  /// Sum of squared errors over every target value (regression).
  public var squaredErrorSum: Double
  /// Sum of squared deviations of the targets from their mean (regression, for R^2).
  public var totalSumOfSquares: Double
  /// Target values per sample.
  public var targetWidth: Int

  public init(count: Int, lossSum: Double, correct: Double, squaredErrorSum: Double, totalSumOfSquares: Double, targetWidth: Int) {
    self.count = count
    self.lossSum = lossSum
    self.correct = correct
    self.squaredErrorSum = squaredErrorSum
    self.totalSumOfSquares = totalSumOfSquares
    self.targetWidth = targetWidth
  }

  public var loss: Double { lossSum / Double(count) }
  public var accuracy: Double { correct / Double(count) }
  public var rmse: Double { (squaredErrorSum / Double(count * targetWidth)).squareRoot() }
  /// R^2, pooled over the target columns (see `rSquared`).
  public var r2: Double? { rSquared(squaredErrorSum: squaredErrorSum, totalSumOfSquares: totalSumOfSquares) }
}

/// R^2 = 1 - SSE / SST; nil where it is undefined: targets without spread (SST = 0, as in a set of one row), where the
/// formula gives -inf or nan. Tables print "-" there and JSON null.
public func rSquared(squaredErrorSum: Double, totalSumOfSquares: Double) -> Double? {
  totalSumOfSquares > 0 ? 1 - squaredErrorSum / totalSumOfSquares : nil
}

/// One epoch's row of the log: the keys of `metrics.jsonl`.
public struct EpochMetrics: Sendable {
  public var epoch: Int
  public var task: LearningTask
  public var train: Evaluation
  /// The validation rows held out of the training set (sweeps), else nil.
  public var validation: Evaluation?
  public var test: Evaluation?
  /// Wall time of the epoch's training steps (evaluation excluded).
  public var seconds: Double
  public var samples: Int
  public var evaluationSeconds: Double
  public var learningRate: Double
  /// Loss-and-gradient evaluations of a global batch in the epoch's training steps (the steps, plus L-BFGS's trial
  /// points).
  public var evaluations: Int
  /// The loss of the run's first step, before any update (the first epoch's row only): what divergence is measured
  /// against.
  public var initialLoss: Double?
  /// Batches of the epoch whose update was skipped (`--on-nan skip-batch`), and the epoch's batches.
  public var skippedBatches = 0
  public var batches = 0

  public init(epoch: Int, task: LearningTask, train: Evaluation, validation: Evaluation? = nil, test: Evaluation?,
              seconds: Double, samples: Int, evaluationSeconds: Double, learningRate: Double, evaluations: Int = 0) {
    self.epoch = epoch
    self.task = task
    self.train = train
    self.validation = validation
    self.test = test
    self.seconds = seconds
    self.samples = samples
    self.evaluationSeconds = evaluationSeconds
    self.learningRate = learningRate
    self.evaluations = evaluations
  }

  public var samplesPerSecond: Double { Double(samples) / seconds }

  /// Its row of metrics.jsonl.
  public var record: EpochRecord {
    let classification = task == .classification
    func scores(_ e: Evaluation?) -> EpochRecord.Scores {
      EpochRecord.Scores(loss: e?.loss, accuracy: classification ? e?.accuracy : nil, rmse: classification ? nil : e?.rmse,
                         r2: classification ? nil : e?.r2)
    }
    return EpochRecord(epoch: epoch, classification: classification, train: scores(train), validation: validation.map(scores),
                       test: scores(test), seconds: seconds, samplesPerSecond: samplesPerSecond,
                       evaluationSeconds: evaluationSeconds, learningRate: learningRate, evaluations: evaluations,
                       initialLoss: initialLoss, skippedBatches: skippedBatches > 0 ? skippedBatches : nil,
                       batches: skippedBatches > 0 ? batches : nil)
  }
}

/// The sets an epoch's row reports, by their key prefix in metrics.jsonl.
public enum MetricSet: String, CaseIterable, Sendable {
  case train, val, test
}

/// The metrics of a set, by their key suffix in metrics.jsonl: `acc` for classification, `rmse` and `r2` for
/// regression.
public enum Metric: String, Sendable {
  case loss, acc, rmse, r2
}

/// One epoch's row of metrics.jsonl as a typed value: what the trainer hands to RunLog, TensorBoard, the run monitor,
/// the findings and the sweep, and what they read back from the files of a run made earlier.
public struct EpochRecord: Equatable, Sendable {
  public struct Scores: Equatable, Sendable {
    public var loss: Double?
    public var accuracy: Double?
    public var rmse: Double?
    public var r2: Double?

    public init(loss: Double?, accuracy: Double? = nil, rmse: Double? = nil, r2: Double? = nil) {
      self.loss = loss
      self.accuracy = accuracy
      self.rmse = rmse
      self.r2 = r2
    }
  }

  public var epoch: Int
  /// Classification rows have accuracies; regression rows RMSE and R^2.
  public var classification: Bool
  public var train: Scores
  /// The validation rows held out of the training set (sweeps), else nil.
  public var validation: Scores?
  /// Its values are nil when the data has no test rows.
  public var test: Scores
  public var seconds: Double?
  public var samplesPerSecond: Double?
  public var evaluationSeconds: Double?
  public var learningRate: Double?
  public var evaluations: Int?
  /// The loss of the run's first step (the first epoch's row only).
  public var initialLoss: Double?
  /// Batches skipped for a loss or gradient that was not finite (`--on-nan skip-batch`), of `batches` in the epoch;
  /// nil when none was.
  public var skippedBatches: Int?
  public var batches: Int?

  public init(epoch: Int, classification: Bool, train: Scores, validation: Scores? = nil, test: Scores, seconds: Double? = nil,
              samplesPerSecond: Double? = nil, evaluationSeconds: Double? = nil, learningRate: Double? = nil,
              evaluations: Int? = nil, initialLoss: Double? = nil, skippedBatches: Int? = nil, batches: Int? = nil) {
    self.skippedBatches = skippedBatches
    self.batches = batches
    self.epoch = epoch
    self.classification = classification
    self.train = train
    self.validation = validation
    self.test = test
    self.seconds = seconds
    self.samplesPerSecond = samplesPerSecond
    self.evaluationSeconds = evaluationSeconds
    self.learningRate = learningRate
    self.evaluations = evaluations
    self.initialLoss = initialLoss
  }

  public func scores(_ set: MetricSet) -> Scores? {
    switch set {
    case .train: train
    case .val: validation
    case .test: test
    }
  }

  /// A value by set and metric (nil when the row has none).
  public func value(_ set: MetricSet, _ metric: Metric) -> Double? {
    guard let s = scores(set) else { return nil }
    switch metric {
    case .loss: return s.loss
    case .acc: return s.accuracy
    case .rmse: return s.rmse
    case .r2: return s.r2
    }
  }

  /// The score of a set: accuracy for classification, R^2 for regression.
  public var scoreMetric: Metric { classification ? .acc : .r2 }

  /// The best epoch of one run, or of a setting's runs (one per seed): the epoch at which the mean over the runs of
  /// the watched set (validation, else test) is best by the metric a sweep selects on (the highest accuracy for
  /// classification, the lowest loss for regression); the first of equal ones. The one definition tables, charts and
  /// findings use (`bestEpochDefinition` says it in words).
  public static func bestEpoch(of runs: [[EpochRecord]]) -> Int? {
    guard let first = runs.first, !first.isEmpty else { return nil }
    let classification = first.contains { $0.classification }
    let set: MetricSet = first.contains { $0.validation != nil } ? .val : .test
    let metric: Metric = classification ? .acc : .loss
    var best: (epoch: Int, value: Double)?
    for r in first {
      let values = runs.compactMap { run in run.first { $0.epoch == r.epoch }?.value(set, metric) }
      guard values.count == runs.count, values.allSatisfy(\.isFinite) else { continue }
      let mean = values.reduce(0, +) / Double(values.count)
      if best == nil || (classification ? mean > best!.value : mean < best!.value) { best = (r.epoch, mean) }
    }
    return best?.epoch
  }

  /// `bestEpoch(of:)` in words, for legends and tables: "best epoch: highest validation accuracy (mean over seeds)".
  public static func bestEpochDefinition(classification: Bool, validation: Bool, seeds: Int) -> String {
    "best epoch: \(classification ? "highest" : "lowest") \(validation ? "validation" : "test") \(classification ? "accuracy" : "loss")\(seeds > 1 ? " (mean over seeds)" : "")"
  }

  /// In the order of the file: epoch, train_loss, train_acc, test_loss, test_acc, seconds, samples_per_sec; for
  /// regression train_rmse, train_r2, test_rmse, test_r2; with a validation set val_loss, val_acc (val_rmse,
  /// val_r2); then eval_seconds, lr and evaluations (loss-and-gradient evaluations). Missing values (no test set)
  /// are null.
  public var json: JSON {
    var o: [(String, JSON)] = [
      ("epoch", JSON(epoch)),
      ("train_loss", JSON(train.loss)),
      ("train_acc", JSON(classification ? train.accuracy : nil)),
      ("test_loss", JSON(test.loss)),
      ("test_acc", JSON(classification ? test.accuracy : nil)),
      ("seconds", JSON(seconds)),
      ("samples_per_sec", JSON(samplesPerSecond)),
    ]
    if !classification {
      o += [("train_rmse", JSON(train.rmse)), ("train_r2", JSON(train.r2)), ("test_rmse", JSON(test.rmse)), ("test_r2", JSON(test.r2))]
    }
    if let v = validation {
      o += [("val_loss", JSON(v.loss))]
      o += classification ? [("val_acc", JSON(v.accuracy))] : [("val_rmse", JSON(v.rmse)), ("val_r2", JSON(v.r2))]
    }
    o += [("eval_seconds", JSON(evaluationSeconds)), ("lr", JSON(learningRate)), ("evaluations", JSON(evaluations.map(Double.init)))]
    if let initialLoss { o.append(("initial_loss", JSON(initialLoss))) }
    if let skippedBatches, let batches { o += [("skipped_batches", JSON(skippedBatches)), ("batches", JSON(batches))] }
    return .object(o)
  }

  /// A row of metrics.jsonl (nil when it has no epoch).
  public init?(json r: JSON) {
    guard let epoch = r["epoch"]?.int else { return nil }
    func scores(_ set: String) -> Scores {
      Scores(loss: r["\(set)_loss"]?.double, accuracy: r["\(set)_acc"]?.double, rmse: r["\(set)_rmse"]?.double,
             r2: r["\(set)_r2"]?.double)
    }
    self.init(epoch: epoch, classification: r["train_rmse"] == nil && r["train_r2"] == nil, train: scores("train"),
              validation: r["val_loss"] == nil ? nil : scores("val"), test: scores("test"), seconds: r["seconds"]?.double,
              samplesPerSecond: r["samples_per_sec"]?.double, evaluationSeconds: r["eval_seconds"]?.double,
              learningRate: r["lr"]?.double, evaluations: r["evaluations"]?.int, initialLoss: r["initial_loss"]?.double,
              skippedBatches: r["skipped_batches"]?.int, batches: r["batches"]?.int)
  }
}
