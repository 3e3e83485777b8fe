import Training
import Collectives
import Datasets
import Foundation
import Layers
import _Support

/// A linear model y = [1, x] theta in the features' original units, and how well it fits.
public struct LinearModelSummary: Sendable {
  /// (p, k) row-major, the intercept's row first.
  public var theta: [Double]
  public var outputs: Int
  public var names: [String]
  public var train: LinearFitQuality
  public var test: LinearFitQuality?
  /// Predictions for the requested feature rows (original units).
  public var predictions: [[Double]]
  /// Standard errors in original units (plain least squares, one output), else nil.
  public var standardErrors: [Double]?

  public var intercept: [Double] { Array(theta.prefix(outputs)) }
  /// The feature coefficients, (d, k) row-major.
  public var weights: [Double] { Array(theta.dropFirst(outputs)) }

  /// Summarises theta fitted in the space of `split` (standardised by `scaling` when not nil): evaluates it there
  /// (sharded over the ranks), then expresses it in original units.
  public static func make(theta fitted: [Double], outputs k: Int, names: [String], split: DataSplit,
                          scaling: Standardization?, predict rows: [[Double]], inverseGram: [Double]? = nil,
                          communicator comm: any Communicator) throws -> LinearModelSummary {
    let train = try LinearFitQuality.evaluate(theta: fitted, intercept: true, on: split.train, communicator: comm)!
    let test = try LinearFitQuality.evaluate(theta: fitted, intercept: true, on: split.test, communicator: comm)
    let theta = scaling?.unstandardize(theta: fitted, outputs: k) ?? fitted
    let p = theta.count / k
    let predictions = rows.map { x in (0..<k).map { c in theta[c] + (0..<x.count).reduce(0.0) { $0 + x[$1] * theta[($1 + 1) * k + c] } } }
    var errors: [Double]? = nil
    if let inv = inverseGram, k == 1, train.count > p {
      let sigma2 = train.squaredErrorSum / Double(train.count - p)
      let covariance = scaling?.unstandardize(covariance: inv.map { $0 * sigma2 }) ?? inv.map { $0 * sigma2 }
      errors = (0..<p).map { covariance[$0 * p + $0].squareRoot() }
    }
    return LinearModelSummary(theta: theta, outputs: k, names: names, train: train, test: test,
                              predictions: predictions, standardErrors: errors)
  }

  /// coefficients, intercept, predictions, train_mse, test_mse, r2 (training rows), test_r2, and accuracies for
  /// classification data. One output: plain numbers and lists; k outputs: lists of k.
  public var jsonFields: [(String, JSON)] {
    let k = outputs, d = weights.count / k
    func vector(_ v: [Double]) -> JSON { k == 1 ? JSON(v[0]) : JSON(v) }
    var o: [(String, JSON)] = [
      ("coefficients", .array((0..<d).map { j in vector(Array(weights[j * k..<(j + 1) * k])) })),
      ("intercept", vector(intercept)),
      ("predictions", .array(predictions.map(vector))),
      ("train_mse", JSON(train.mse)),
      ("test_mse", JSON(test?.mse)),
      ("train_rmse", JSON(train.rmse)),
      ("test_rmse", JSON(test?.rmse)),
      ("r2", JSON(train.r2)),
      ("test_r2", JSON(test?.r2)),
    ]
    if let a = train.accuracy { o += [("train_acc", JSON(a)), ("test_acc", JSON(test?.accuracy))] }
    if let se = standardErrors { o.append(("standard_errors", JSON(se))) }
    return o
  }
}

/// The closed-form solution of the problem SGD was set, beside SGD's answer.
///
/// SGD with weight decay wd on the mean-squared error (mean over the k outputs of each sample) minimises
///
///     J(W, b) = (1/n) sum_i (1/k) ||x_i W + b - y_i||^2 + (wd/2) ||W||^2   (+ (wd/2) ||b||^2 with --decay-bias true)
///
/// over the n training rows. Multiplying by n k leaves the minimiser unchanged: it is the ridge solution
/// min ||X theta - Y||^2 + lambda ||theta_penalised||^2 with lambda = n k wd / 2, the intercept penalised exactly when
/// SGD decays the bias. Both are solved on the same (standardised, when SGD's were) training rows.
public struct ClosedFormComparison: Sendable {
  public var fit: LeastSquaresFit
  public var closedForm: LinearModelSummary
  public var sgd: LinearModelSummary
  /// lambda = n k wd / 2.
  public var lambda: Double
  /// max |theta_closed - theta_sgd| over every coefficient and intercept, original units.
  public var maxParameterDifference: Double

  /// The ridge lambda of min ||X theta - Y||^2 + lambda ||theta||^2 that SGD's objective with L2 weight decay wd
  /// solves: mean reduction of MSE, (1/(n k)) ||.||^2 + (wd/2) ||.||^2, gives n k wd / 2; half-MSE halves the
  /// squared error (n k wd); the sum reduction drops the 1/(n k) (wd / 2, and wd for half-MSE).
  public static func lambda(weightDecay wd: Double, rows n: Int, outputs k: Int, half: Bool = false,
                            reduction: LossReduction = .mean) -> Double {
    let normaliser = reduction == .mean ? Double(n) * Double(k) : 1
    return normaliser * wd / 2 * (half ? 2 : 1)
  }

  /// What a sweep records: lambda, both fits' train and test MSE (and accuracy), the largest parameter difference, the
  /// norms of both parameter vectors, and both vectors themselves when they have at most 64 values (a regularisation
  /// path of every coefficient; beyond that, of their norm).
  public var json: JSON {
    func norm(_ v: [Double]) -> Double { v.map { $0 * $0 }.reduce(0, +).squareRoot() }
    var o: [(String, JSON)] = [
      ("lambda", JSON(lambda)), ("train_mse", JSON(closedForm.train.mse)), ("test_mse", JSON(closedForm.test?.mse)),
      ("sgd_train_mse", JSON(sgd.train.mse)), ("sgd_test_mse", JSON(sgd.test?.mse)),
      ("max_abs_parameter_difference", JSON(maxParameterDifference)),
      ("theta_norm", JSON(norm(closedForm.theta))), ("sgd_theta_norm", JSON(norm(sgd.theta))),
    ]
    if let a = closedForm.train.accuracy { o += [("train_acc", JSON(a)), ("sgd_train_acc", JSON(sgd.train.accuracy))] }
    if closedForm.theta.count <= 64 {
      o += [("names", .array(closedForm.names.map { JSON($0) })), ("theta", JSON(closedForm.theta)), ("sgd_theta", JSON(sgd.theta))]
    }
    return .object(o)
  }

  /// nil unless the trainer's model is linear (one dense layer) trained with MSE or half-MSE.
  public static func make<T>(_ trainer: Trainer<T>, predict rows: [[Double]]) throws -> ClosedFormComparison? {
    let c = trainer.config
    guard c.model.isLinear, c.loss == .mse || c.loss == .halfMSE else { return nil }
    let comm = trainer.communicator
    let data = trainer.data
    let k = data.train.task == .regression ? data.train.targetWidth : data.train.classCount
    let lambda = lambda(weightDecay: c.optimizer.weightDecay, rows: data.train.count, outputs: k, half: c.loss == .halfMSE,
                        reduction: c.lossReduction)
    let mine = Sharding.slice(0..<data.train.count, rank: comm.rank, size: comm.size)
    let block = DesignBlock(data.train, rows: mine, intercept: true)
    let fit = try LeastSquares.fit(
      block, options: LeastSquaresOptions(method: .auto, ridge: lambda, penalizeIntercept: c.optimizer.decayBiases),
      communicator: comm)
    let names = block.names
    let closed = try LinearModelSummary.make(
      theta: fit.theta, outputs: k, names: names, split: data, scaling: trainer.standardization, predict: rows,
      inverseGram: fit.inverseGram, communicator: comm)
    // SGD's parameters are the dense layer's W (d, k) and b (k): theta = [b; W].
    let named = trainer.network.namedParameters
    guard let w = named.first(where: { $0.name.hasSuffix(".weight") }), let b = named.first(where: { $0.name.hasSuffix(".bias") })
    else { return nil }
    let sgdTheta = trainer.parameters[b.range].map { Double($0) } + trainer.parameters[w.range].map { Double($0) }
    let sgd = try LinearModelSummary.make(
      theta: sgdTheta, outputs: k, names: names, split: data, scaling: trainer.standardization, predict: rows,
      communicator: comm)
    let difference = zip(closed.theta, sgd.theta).map { abs($0 - $1) }.max() ?? 0
    return ClosedFormComparison(fit: fit, closedForm: closed, sgd: sgd, lambda: lambda,
                                maxParameterDifference: difference)
  }
}

/// Sums that describe how a linear model theta fits a data set (reduced over the ranks).
public struct LinearFitQuality: Sendable {
  public var count: Int
  public var outputs: Int
  /// Sum of squared errors over every target value.
  public var squaredErrorSum: Double
  /// Sum of squared deviations of the targets from their column means.
  public var totalSumOfSquares: Double
  /// Samples whose largest prediction is their class (classification data), else nil.
  public var correct: Double?

  /// Mean squared error per target value.
  public var mse: Double { squaredErrorSum / Double(count * outputs) }
  public var rmse: Double { mse.squareRoot() }
  public var r2: Double? { rSquared(squaredErrorSum: squaredErrorSum, totalSumOfSquares: totalSumOfSquares) }
  public var accuracy: Double? { correct.map { $0 / Double(count) } }

  /// Evaluates theta (p, k) on `data`: each rank takes a contiguous slice of the rows, in chunks; one all-reduce.
  public static func evaluate(theta: [Double], intercept: Bool, on data: Dataset, communicator comm: any Communicator)
    throws -> LinearFitQuality?
  {
    guard data.count > 0 else { return nil }
    let k = data.task == .regression ? data.targetWidth : data.classCount
    let p = (intercept ? 1 : 0) + data.featureCount
    precondition(theta.count == p * k, "theta is \(theta.count) numbers for \(p) x \(k)")
    let mine = Sharding.slice(0..<data.count, rank: comm.rank, size: comm.size)
    var sums = [Double](repeating: 0, count: 2 + 2 * k)  // sse, correct, sum y_c, sum y_c^2
    var start = mine.lowerBound
    while start < mine.upperBound {
      let range = start..<min(start + 4096, mine.upperBound)
      let block = DesignBlock(data, rows: range, intercept: intercept)
      var prediction = [Double](repeating: 0, count: range.count * k)
      block.values.withUnsafeBufferPointer { x in  // [1 X] theta: (rows, p) (p, k), [1 X] stored by columns
        Double.gemm(transposeA: true, transposeB: false, m: range.count, n: k, k: p, alpha: 1, a: x.baseAddress!,
                    lda: range.count, b: theta, ldb: k, beta: 0, c: &prediction, ldc: k)
      }
      for r in 0..<range.count {
        var best = 0
        for c in 0..<k {
          let y = block.value(row: r, column: p + c), e = prediction[r * k + c] - y
          sums[0] += e * e
          sums[2 + c] += y
          sums[2 + k + c] += y * y
          if prediction[r * k + c] > prediction[r * k + best] { best = c }
        }
        if data.task == .classification && Int32(best) == data.labels[range.lowerBound + r] { sums[1] += 1 }
      }
      start = range.upperBound
    }
    try comm.allReduce(&sums, .sum)
    let n = Double(data.count)
    let sst = (0..<k).reduce(0.0) { $0 + sums[2 + k + $1] - sums[2 + $1] * sums[2 + $1] / n }
    return LinearFitQuality(count: data.count, outputs: k, squaredErrorSum: sums[0], totalSumOfSquares: sst,
                            correct: data.task == .classification ? sums[1] : nil)
  }
}
