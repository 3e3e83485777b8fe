import ArgumentParser
import Collectives
import Datasets
import Foundation
import LeastSquares
import _Support
import Training

extension LeastSquaresMethod: ExpressibleByArgument {}

struct LstsqCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "lstsq",
    abstract: "Closed-form least squares or ridge regression, distributed like the training.",
    discussion: """
      Solves min ||X theta - Y||^2 + LAMBDA ||theta||^2 (the intercept unpenalised unless --penalize-intercept) on
      the training rows `dpt train` would use (same --dataset, --test-fraction, --seed). Each rank forms its rows'
      Gram matrix with dsyrk, one all-reduce, one Cholesky solve (normal); or each rank takes the QR factorisation of
      its rows and rank 0 factors the stacked R factors again (qr, TSQR). auto uses the normal equations unless
      cond(X^T X) > 1e8, and says why.

      SGD with `--weight-decay wd` on `--model linear --loss mse` solves the same problem with LAMBDA = n k wd / 2
      (n training rows, k outputs); with --decay-bias true (the default) the intercept is penalised too.

      Examples:
        dpt lstsq --dataset corn --predict "6,4;10,5;14,8"
        mpirun -np 2 dpt lstsq --dataset mnist --ridge 10 --json
        mpirun -np 2 dpt lstsq --dataset synthetic:1000000,100 \\
          --no-intercept --method qr
      """.reflowed)

  @OptionGroup var data: DataOptions

  @Option(parsing: .unconditional, help: ArgumentHelp("Ridge penalty LAMBDA >= 0.", valueName: "lambda"))
  var ridge: Double = 0

  @Flag(help: "Apply the ridge penalty to the intercept too (as SGD's weight decay does with --decay-bias true).")
  var penalizeIntercept = false

  @Option(help: "auto | normal | qr")
  var method: LeastSquaresMethod = .auto

  @Flag(inversion: .prefixedNo, help: "Fit an intercept.")
  var intercept = true

  @Option(parsing: .unconditional, help: ArgumentHelp("Feature rows to predict, e.g. \"6,4;10,5;14,8\" (corn's default is the course's three rows).", valueName: "rows"))
  var predict: String?

  @Flag(help: "Print the result as one JSON object on stdout.")
  var json = false

  func validate() throws {
    guard ridge >= 0, ridge.isFinite else { throw ValidationError("--ridge must be >= 0 (got \(ridge))") }
    if let p = predict { _ = try parsePredictRows(p) }
    if try data.seeds.count > 1 { throw ValidationError("--seed takes one value in dpt lstsq (the closed form has no randomness but the split)") }
  }

  func run() throws {
    let source = try data.source
    try Launch.withWorld { comm in try solve(source, comm) }
  }

  func solve(_ source: DatasetSource, _ comm: any Communicator) throws {
    let console = Console(isRoot: comm.isRoot, jsonOutput: json)
    let (split, scaling, block, rows) = try comm.agree(describing: ErrorMessages.line) { () throws -> (DataSplit?, Standardization?, DesignBlock, [[Double]]) in
      // Synthetic rows without a test set: each rank generates only its own rows.
      if case .synthetic(let n, let d) = source, (data.testFraction ?? 0) == 0, data.standardize != true {
        let mine = Sharding.slice(0..<n, rank: comm.rank, size: comm.size)
        let block = DesignBlock(Synthetic.dataset(mine, features: d, seed: data.firstSeed), rows: 0..<mine.count, intercept: intercept)
        return (nil, nil, block, try predictionRows(predict, source: source, features: d))
      }
      var split = try data.load()
      var scaling: Standardization? = nil
      if data.standardize == true { (split, scaling) = try split.standardized() }
      let mine = Sharding.slice(0..<split.train.count, rank: comm.rank, size: comm.size)
      let rows = try predictionRows(predict, source: source, features: split.train.featureCount)
      return (split, scaling, DesignBlock(split.train, rows: mine, intercept: intercept), rows)
    }
    if scaling != nil && !intercept { throw CommandError("--standardize needs the intercept (drop --no-intercept)") }
    let options = LeastSquaresOptions(method: method, ridge: ridge, penalizeIntercept: penalizeIntercept)
    let fit = try LeastSquares.fit(block, options: options, communicator: comm)
    var summary: LinearModelSummary? = nil
    if let split {
      summary = try LinearModelSummary.make(
        theta: fit.theta, outputs: fit.outputs, names: fit.names, split: split, scaling: scaling, predict: rows,
        inverseGram: fit.inverseGram, communicator: comm)
    }
    if json {
      var o: [(String, JSON)] = [("dataset", JSON(source.description)), ("rows", JSON(fit.rows)),
                                 ("features", JSON(block.features)), ("outputs", JSON(fit.outputs))]
      if let summary {
        o += summary.jsonFields
      } else {
        let k = fit.outputs, offset = intercept ? k : 0
        o += [("coefficients", JSON(Array(fit.theta.dropFirst(offset)))),
              ("intercept", intercept ? JSON(fit.theta[0]) : .null),
              ("predictions", JSON(rows.map { fit.predict($0)[0] }))]
      }
      o += RunText.fitFields(fit)
      console.result(JSON.object(o).serialized())
      return
    }
    let sets = split.map { s in s.test.count > 0 ? "\(s.train.count) train / \(s.test.count) test rows" : "\(s.train.count) rows" } ?? "\(fit.rows) rows"
    console.say("\(source): \(sets), \(block.features) features\(intercept ? " + intercept" : ""), \(fit.outputs) output\(fit.outputs == 1 ? "" : "s")\(scaling != nil ? ", standardised features" : "")\(ridge > 0 ? ", ridge \(ridge)" : "")")
    console.say("method: \(fit.method.rawValue) (\(ErrorMessages.text(fit.reason))); \(String(format: "%.3f", fit.seconds)) s on \(comm.size) rank\(comm.size == 1 ? "" : "s")")
    if let summary {
      for line in RunText.linearModel([("closed form", summary)], fit: fit) { console.say(line) }
    } else {
      console.say(String(format: "condition number ~ %.3g, rank %d", fit.conditionNumber, fit.rank))
      if fit.parameters <= 20 {
        for (name, v) in zip(fit.names, fit.theta) { console.say("  " + RunText.pad(name, 14, left: true) + RunText.number(v)) }
      }
    }
    for w in fit.warnings { console.say("warning: \(ErrorMessages.text(w))") }
  }
}
