import LeastSquares
import Collectives
import Datasets
import Foundation
import Testing
import TensorCore
import Training
import _TestSupport

@Suite struct LeastSquaresTests {
  /// y = 2 + X beta exactly (no noise): 40 rows, 5 features.
  func noiseFree(rows n: Int = 40, features d: Int = 5) -> (data: Dataset, theta: [Double]) {
    let (x, _) = Synthetic.rows(0..<n, features: d, seed: 7)
    let beta = Synthetic.coefficients(features: d, seed: 7)
    let y = (0..<n).map { i in 2 + (0..<d).reduce(0.0) { $0 + x[i * d + $1] * beta[$1] } }
    return (Dataset(features: .reals(x), count: n, sampleShape: [d], targets: y, task: .regression), [2] + beta)
  }

  func fit(_ data: Dataset, ranks: Int, _ options: LeastSquaresOptions, intercept: Bool = true) throws -> [LeastSquaresFit] {
    try InProcessGroup.run(size: ranks) { comm in
      let mine = Sharding.slice(0..<data.count, rank: comm.rank, size: comm.size)
      return try LeastSquares.fit(DesignBlock(data, rows: mine, intercept: intercept), options: options, communicator: comm)
    }
  }

  @Test(arguments: [1, 2, 3])
  func exactRecoveryOnNoiseFreeData(ranks: Int) throws {
    let (data, truth) = noiseFree()
    for method in [LeastSquaresMethod.normal, .qr] {
      let fits = try fit(data, ranks: ranks, LeastSquaresOptions(method: method))
      for f in fits {
        #expect(f.method == method)
        #expect(Reference.maxRelativeDifference(f.theta, truth) < 1e-12, "\(method) on \(ranks) ranks")
      }
      #expect(Set(fits.map(\.theta)).count == 1, "every rank holds the same solution")
    }
  }

  @Test func normalEquationsAndQRAgreeOnWellConditionedData() throws {
    let data = Synthetic.dataset(rows: 500, features: 8, seed: 3, noise: 0.5)
    let normal = try fit(data, ranks: 3, LeastSquaresOptions(method: .normal))[0]
    let qr = try fit(data, ranks: 3, LeastSquaresOptions(method: .qr))[0]
    #expect(Reference.maxRelativeDifference(normal.theta, qr.theta) < 1e-9)
    let auto = try fit(data, ranks: 2, LeastSquaresOptions(method: .auto))[0]
    #expect(auto.method == .normal && "\(auto.reason)".hasPrefix("auto: cond(X^T X)"))
    #expect(normal.warnings.isEmpty)
  }

  /// x2 = x1 + 1e-6 z: cond(X) ~ 1e6, so the normal equations (which square it) lose about 12 digits and warn;
  /// QR keeps the coefficients to ~1e-9 and auto picks it.
  @Test func nearlyCollinearColumns() throws {
    var rng = RandomSource(seed: 11)
    let n = 300
    var x = [Double](), y = [Double]()
    for _ in 0..<n {
      let x1 = rng.normal(), x2 = x1 + 1e-6 * rng.normal(), x3 = rng.normal()
      x += [x1, x2, x3]
      y.append(1 + 2 * x1 - 1 * x2 + 0.5 * x3)
    }
    let data = Dataset(features: .reals(x), count: n, sampleShape: [3], targets: y, task: .regression)
    let truth: [Double] = [1, 2, -1, 0.5]
    let qr = try fit(data, ranks: 2, LeastSquaresOptions(method: .qr))[0]
    let normal = try fit(data, ranks: 2, LeastSquaresOptions(method: .normal))[0]
    let auto = try fit(data, ranks: 2, LeastSquaresOptions(method: .auto))[0]
    let qrError = zip(qr.theta, truth).map { abs($0 - $1) }.max()!
    let normalError = zip(normal.theta, truth).map { abs($0 - $1) }.max()!
    #expect(qrError < 1e-7, "QR error \(qrError)")
    #expect(normalError > 10 * qrError, "normal \(normalError) vs QR \(qrError)")
    #expect(normal.warnings.contains { if case .normalLosesDigits = $0 { true } else { false } })
    #expect(auto.method == .qr && "\(auto.reason)".contains("would lose"))
    #expect(qr.conditionNumber > 1e5)
  }

  /// MNIST's situation: a feature that is always zero makes X^T X singular.
  @Test func singularGram() throws {
    let (data, _) = noiseFree()
    var x = data.featureValues
    for i in 0..<data.count { x[i * 5 + 2] = 0 }
    let dead = Dataset(features: .reals(x), count: data.count, sampleShape: [5], targets: data.targets, task: .regression)
    do {
      _ = try fit(dead, ranks: 2, LeastSquaresOptions(method: .normal))
      Issue.record("no error")
    } catch {
      #expect("\(error)".contains("X^T X is singular"))
      // Typed: the command line adds the fix (--ridge, --method qr); the always-zero column is named.
      guard case .singular(let column)? = error as? LeastSquaresError else { Issue.record("\(error)"); return }
      #expect(column != nil, "\(error)")
    }
    let auto = try fit(dead, ranks: 2, LeastSquaresOptions(method: .auto))[0]
    #expect(auto.method == .qr && auto.rank == 5)
    #expect(auto.theta[3] == 0 || abs(auto.theta[3]) < 1e-12, "the minimum-norm solution gives the dead feature 0")
    let ridge = try fit(dead, ranks: 2, LeastSquaresOptions(method: .normal, ridge: 1e-3))[0]
    #expect(ridge.method == .normal && abs(ridge.theta[3]) < 1e-12)
  }

  /// Ridge: the normal equations and TSQR (with sqrt(lambda) rows) solve the same problem; the intercept is not
  /// penalised unless asked.
  @Test func ridgeByBothMethods() throws {
    let data = Synthetic.dataset(rows: 60, features: 4, seed: 5, noise: 0.3)
    for penalizeIntercept in [false, true] {
      let o = { (m: LeastSquaresMethod) in LeastSquaresOptions(method: m, ridge: 7.5, penalizeIntercept: penalizeIntercept) }
      let a = try fit(data, ranks: 2, o(.normal))[0], b = try fit(data, ranks: 3, o(.qr))[0]
      #expect(Reference.maxRelativeDifference(a.theta, b.theta) < 1e-10)
      // Check the normal equations by hand: (X^T X + lambda D) theta = X^T y.
      let block = DesignBlock(data, rows: 0..<60, intercept: true)
      for j in 0..<5 {
        var lhs = 0.0, rhs = 0.0
        for i in 0..<60 {
          let row = (0..<5).map { block.value(row: i, column: $0) }
          let pred = (0..<5).reduce(0.0) { $0 + row[$1] * a.theta[$1] }
          lhs += row[j] * pred
          rhs += row[j] * block.value(row: i, column: 5)
        }
        if j > 0 || penalizeIntercept { lhs += 7.5 * a.theta[j] }
        #expect(abs(lhs - rhs) < 1e-9 * max(1, abs(rhs)))
      }
    }
  }

  @Test func standardErrorsMatchTheTextbookFormula() throws {
    let data = Synthetic.dataset(rows: 50, features: 2, seed: 9, noise: 0.2)
    for method in [LeastSquaresMethod.normal, .qr] {
      let f = try fit(data, ranks: 2, LeastSquaresOptions(method: method))[0]
      let q = try LinearFitQuality.evaluate(theta: f.theta, intercept: true, on: data, communicator: LocalCommunicator())!
      // The report's standard errors (LinearModelSummary, the one place they are computed).
      let summary = try LinearModelSummary.make(theta: f.theta, outputs: 1, names: f.names,
                                                split: DataSplit(name: "t", train: data, test: data.subset([])), scaling: nil,
                                                predict: [], inverseGram: f.inverseGram, communicator: LocalCommunicator())
      let se = summary.standardErrors!
      // (X^T X)^-1 written out for p = 3 by the adjugate.
      let b = DesignBlock(data, rows: 0..<50, intercept: true)
      var g = [[Double]](repeating: [0, 0, 0], count: 3)
      for i in 0..<50 { for r in 0..<3 { for c in 0..<3 { g[r][c] += b.value(row: i, column: r) * b.value(row: i, column: c) } } }
      let det = g[0][0] * (g[1][1] * g[2][2] - g[1][2] * g[2][1]) - g[0][1] * (g[1][0] * g[2][2] - g[1][2] * g[2][0])
        + g[0][2] * (g[1][0] * g[2][1] - g[1][1] * g[2][0])
      let inv00 = (g[1][1] * g[2][2] - g[1][2] * g[2][1]) / det
      let inv11 = (g[0][0] * g[2][2] - g[0][2] * g[2][0]) / det
      let inv22 = (g[0][0] * g[1][1] - g[0][1] * g[1][0]) / det
      let sigma2 = q.squaredErrorSum / 47
      let expected = [inv00, inv11, inv22].map { ($0 * sigma2).squareRoot() }
      #expect(Reference.maxRelativeDifference(se, expected) < 1e-10, "\(method)")
    }
  }

  @Test func cornClosedForm() throws {
    // The course's numbers (also numpy's, scipy's and sklearn's: ../shared/bench/README.md).
    let corn = try Catalog.load(.corn)
    let f = try fit(corn.train, ranks: 2, LeastSquaresOptions())[0]
    #expect(Reference.maxRelativeDifference(f.theta, [31.980671, 0.650051, 1.109868]) < 1e-6)
    let predictions = Corn.predictionRows.map { f.predict($0)[0] }
    #expect(Reference.maxRelativeDifference(predictions, [40.320448, 44.030519, 49.960326]) < 1e-7)
  }

  @Test func unstandardizedCoefficientsPredictTheSame() throws {
    let corn = try Catalog.load(.corn)
    let s = Standardization(fitting: corn.train)
    let scaled = s.apply(corn.train)
    let f = try fit(scaled, ranks: 1, LeastSquaresOptions())[0]
    let original = s.unstandardize(theta: f.theta, outputs: 1)
    #expect(Reference.maxRelativeDifference(original, [31.980671, 0.650051, 1.109868]) < 1e-6)
    for row in Corn.predictionRows {
      let direct = f.predict(s.apply(row: row))[0]
      let mapped = original[0] + original[1] * row[0] + original[2] * row[1]
      #expect(abs(direct - mapped) < 1e-10)
    }
  }
}
