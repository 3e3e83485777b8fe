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

  public var loss: Double { lossSum / Double(count) }
  public var accuracy: Double { correct / Double(count) }
  public var rmse: Double { (squaredErrorSum / Double(count * targetWidth)).squareRoot() }
  /// 1 - SSE / SST, pooled over the target columns.
  public var r2: Double { 1 - squaredErrorSum / totalSumOfSquares }
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

  /// In the order of the file: epoch, train_loss, train_acc, test_loss, test_acc, seconds, samples_per_sec; for
  /// regression train_rmse, train_r2, test_rmse, test_r2; with a validation set val_loss, val_acc (val_rmse,
  /// val_r2); then eval_seconds, lr and evaluations (loss-and-gradient evaluations). Missing values (no test set)
  /// are null.
  public var json: JSON {
    let classification = task == .classification
    var o: [(String, JSON)] = [
      ("epoch", JSON(epoch)),
      ("train_loss", JSON(train.loss)),
      ("train_acc", JSON(classification ? train.accuracy : nil)),
      ("test_loss", JSON(test?.loss)),
      ("test_acc", JSON(classification ? test?.accuracy : nil)),
      ("seconds", JSON(seconds)),
      ("samples_per_sec", JSON(samplesPerSecond)),
    ]
    if !classification {
      o += [("train_rmse", JSON(train.rmse)), ("train_r2", JSON(train.r2)),
            ("test_rmse", JSON(test?.rmse)), ("test_r2", JSON(test?.r2))]
    }
    if let v = validation {
      o += [("val_loss", JSON(v.loss))]
      o += classification ? [("val_acc", JSON(v.accuracy))] : [("val_rmse", JSON(v.rmse)), ("val_r2", JSON(v.r2))]
    }
    o += [("eval_seconds", JSON(evaluationSeconds)), ("lr", JSON(learningRate)), ("evaluations", JSON(evaluations))]
    if let initialLoss { o.append(("initial_loss", JSON(initialLoss))) }
    return .object(o)
  }
}

import Foundation
