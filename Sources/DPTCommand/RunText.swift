import ArgumentParser
import Collectives
import Datasets
import Experiments
import FileFormats
import Foundation
import Layers
import LeastSquares
import Reports
import _Support
import TensorCore
import Training

/// The text dpt prints about a run.
enum RunText {
  static func header<T>(_ t: Trainer<T>, hosts: String = "") -> String {
    let d = t.data, c = t.config
    var sets = d.test.count > 0 ? "\(d.train.count) train / \(d.test.count) test" : "\(d.train.count) train, no test set"
    if let v = d.validation { sets += " / \(v.count) validation" }
    var ranks = counted(t.worldSize, "rank") + hosts
    if t.worldSize > 1 || c.exchange.compression != .none { ranks += " | exchange: \(t.reducer.summary)" }
    ranks += " | blas: \(BLASKernelChoice.summary)"
    // Tables say whether their features were standardised: a hand computation must know which inputs the net saw.
    let scaled = t.standardization != nil ? ", standardised features" : (d.train.sampleShape.count == 1 ? ", features as given" : "")
    let loss = c.lossReduction == .sum ? "\(c.loss) (sum)" : "\(c.loss)"
    return "\(d.name): \(sets)\(scaled) | \(LayerList.text(t.layerItems)) (\(t.network.parameterCount) parameters), \(loss) | \(t.optimizer.summary)\(c.optimizer.schedule.kind == .constant && c.optimizer.schedule.warmupEpochs == 0 ? "" : ", lr schedule \(c.optimizer.schedule)") | batch \(min(c.batchSize, d.train.count))\(c.microBatches > 1 ? " x \(c.microBatches) accumulated (\(min(c.stepBatchSize, d.train.count)) a step)" : "") | \(ranks)"
  }

  static func comparisonTitle<T>(_ c: ClosedFormComparison, _ t: Trainer<T>) -> String {
    let wd = t.config.optimizer.weightDecay
    let penalty = wd == 0 ? "no penalty (weight decay 0)"
      : String(format: "ridge lambda = n k wd / 2 = %d x %d x %g / 2 = %g%@", t.data.train.count, c.closedForm.outputs, wd, c.lambda,
               t.config.optimizer.decayBiases ? ", intercept penalised (--decay-bias true)" : ", intercept not penalised")
    let scaled = t.standardization != nil ? "; both fitted on standardised features, shown in original units" : ""
    return "closed form (\(c.fit.method.rawValue): \(ErrorMessages.text(c.fit.reason))) beside \(t.config.optimizer.kind.displayName): \(penalty)\(scaled)"
  }

  /// " on 2 hosts (a, b)" when the ranks run on more than one host (a collective: every rank takes part).
  static func hosts(_ comm: any Communicator) throws -> String {
    guard comm.size > 1 else { return "" }
    let names = try comm.allGather(Array(ProcessInfo.processInfo.hostName.utf8)).map { String(decoding: $0, as: UTF8.self) }
    var unique: [String] = []
    for n in names where !unique.contains(n) { unique.append(n) }
    return unique.count > 1 ? " on \(unique.count) hosts (\(unique.joined(separator: ", ")))" : ""
  }

  /// "data 0.062s (9%) | forward 0.290s (41%) | ..."
  static func phases(_ p: PhaseTimes, epochSeconds: Double) -> String {
    p.named.map { name, t in String(format: "%@ %.3fs (%.0f%%)", name, t, 100 * t / epochSeconds) }
      .joined(separator: " | ")
  }

  /// The slowest rank of an epoch by compute time (every rank's, in rank order) against the median, e.g.
  /// "slowest: rank 3 on hostC: compute 1.40x the median (0.52 s against 0.37 s)".
  static func straggler(compute: [Double], hosts: [String]) -> String {
    let sorted = compute.sorted(), n = sorted.count
    let median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    let slowest = compute.indices.max { compute[$0] < compute[$1] } ?? 0
    let host = hosts.indices.contains(slowest) ? hosts[slowest] : "?"
    return String(format: "slowest: rank %d on %@: compute %.2fx the median (%.3f s against %.3f s)", slowest, host,
                  median > 0 ? compute[slowest] / median : 1, compute[slowest], median)
  }

  /// What `dpt train` says before its first epoch: the data's own notes, the header, a resume's position, early
  /// stopping's terms and a validation set too small to trust. (`hosts` is a collective: every rank calls this.)
  static func preamble(_ trainer: Trainer<Float>, options: TrainingOptions, resumed: (checkpoint: Checkpoint, path: String)?,
                       bestKept: Bool) throws -> [String] {
    let config = trainer.config, comm = trainer.communicator
    var lines: [String] = []
    if let header = trainer.data.header { lines.append(ErrorMessages.text(header)) }
    for w in trainer.data.warnings {
      if case .rowsDropped = w { lines.append("\(w)") } else { lines.append("warning: \(w); trained from --init's weights as given") }
    }
    if let note = try options.data.inferenceNote { lines.append(note) }
    lines.append(header(trainer, hosts: try hosts(comm)))
    if let (c, path) = resumed {
      var note = "resumed from \(Checkpoint.path(path)): \(counted(c.epoch, "epoch")) and \(counted(trainer.batchInEpoch, "batch", "batches")) done (step \(c.step))"
      if c.worldSize != comm.size {
        note += config.deterministic
          ? "; written by \(counted(c.worldSize, "rank")), continued on \(comm.size): --deterministic makes the result the same"
          : "; written by \(counted(c.worldSize, "rank")), continued on \(comm.size): the steps are the same but sums are added in another order, so the result differs from an uninterrupted \(c.worldSize)-rank run in the last bits (--deterministic avoids that)"
      }
      lines.append(note)
    }
    if let patience = options.earlyStop {
      let watched = trainer.data.validation != nil ? "validation" : "test"
      lines.append("--early-stop \(patience): stops when the \(watched) loss has not improved for \(counted(patience, "epoch"))\(watched == "test" ? " (there is no validation set: --val-fraction holds one out)" : "")"
        + (bestKept ? "; best.dptc keeps the best epoch's weights" : "; the best epoch's weights are not kept (give --checkpoint-dir or --log-dir)"))
    }
    if let v = trainer.data.validation, v.count < 30 {
      lines.append("warning: the validation set has \(counted(v.count, "row")): its loss and accuracy rest on very few samples; raise --val-fraction or use more data")
    }
    return lines
  }

  /// The closed form beside SGD, as a table.
  static func comparison(_ c: ClosedFormComparison, _ trainer: Trainer<Float>) -> [String] {
    ["", comparisonTitle(c, trainer)]
      + linearModel([("closed form", c.closedForm), (trainer.config.optimizer.kind.displayName, c.sgd)], fit: c.fit)
      + ["  largest |parameter difference|: \(number(c.maxParameterDifference).trimmingCharacters(in: .whitespaces))"]
      + c.fit.warnings.map { "warning: \(ErrorMessages.text($0))" }
  }

  /// The final metrics of `dpt train --json`: the last epoch's, the run's totals, how it ended and its findings, and
  /// a linear model's closed form (nested, so that its train_rmse, test_r2, ... do not collide with the run's own).
  static func summary<T>(_ t: Trainer<T>, _ outcome: RunOutcome, findings: [Finding], peakMemory: [Double], phases: PhaseTimes,
                         comparison: ClosedFormComparison?) -> JSON {
    let history = outcome.history
    guard let last = history.last, case .object(let final) = last.record.json else { return .null }
    let seconds = history.reduce(0) { $0 + $1.seconds }
    let samples = history.reduce(0) { $0 + $1.samples }
    var o: [(String, JSON)] = [
      ("dataset", JSON(t.data.name)), ("model", JSON(LayerList.text(t.layerItems))),
      ("parameters", JSON(t.network.parameterCount)), ("world_size", JSON(t.worldSize)),
      ("train_samples", JSON(t.data.train.count)), ("test_samples", JSON(t.data.test.count)),
    ]
    o += final.filter { !["seconds", "samples_per_sec", "eval_seconds", "lr", "evaluations"].contains($0.0) }
    o += [("seconds", JSON(seconds)), ("samples_per_sec", JSON(Double(samples) / seconds)),
          ("evaluations", JSON(history.reduce(0) { $0 + $1.evaluations })),
          ("peak_rss_mib_per_rank", JSON(peakMemory)), ("blas_kernel", JSON(BLASKernel.current)),
          ("blas", JSON(BLASKernelChoice.summary)), ("blas_threads", JSON(BLASThreads.count)),
          ("exchange", JSON(t.reducer.summary)),
          ("exchange_bytes_per_step", JSON(t.reducer.bytesSent)),
          ("phase_seconds", .object(phases.named.map { ($0.0, JSON($0.1)) }))]
    if case .object(let s) = outcome.status.json { o += s }
    o.append(("findings", .array(findings.map(\.json))))
    if let c = comparison {
      o += [("closed_form", .object(c.closedForm.jsonFields + fitFields(c.fit) + [("lambda", JSON(c.lambda))])),
            ("sgd", .object(c.sgd.jsonFields)), ("max_abs_parameter_difference", JSON(c.maxParameterDifference))]
    }
    return .object(o)
  }
}

extension RunText {
  /// The facts about a closed-form fit: condition_number, method, ...
  static func fitFields(_ fit: LeastSquaresFit) -> [(String, JSON)] {
    [("condition_number", JSON(fit.conditionNumber)), ("method", JSON(fit.method.rawValue)),
     ("method_reason", JSON(ErrorMessages.text(fit.reason))), ("rank", JSON(fit.rank)), ("ridge", JSON(fit.ridge)),
     ("solve_seconds", JSON(fit.seconds)), ("warnings", .array(fit.warnings.map { JSON(ErrorMessages.text($0)) }))]
  }

  static func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
    s.count >= w ? s + " " : (left ? s + String(repeating: " ", count: w - s.count) : String(repeating: " ", count: w - s.count) + s)
  }

  static func number(_ x: Double?) -> String {
    guard let x else { return pad("-", 14) }
    let a = abs(x)
    return pad(a != 0 && (a < 1e-4 || a >= 1e7) ? String(format: "%.6e", x) : String(format: "%.6f", x), 14)
  }

  /// Side-by-side table of one or more linear models (columns), with the terms, fit quality and predictions.
  static func linearModel(_ models: [(String, LinearModelSummary)], fit: LeastSquaresFit) -> [String] {
    let first = models[0].1
    let k = first.outputs, p = first.theta.count / k
    var lines: [String] = []
    let title = pad("", 16, left: true) + models.map { pad($0.0, 14) }.joined()
    let withErrors = models.count == 1 && first.standardErrors != nil
    lines.append(title + (withErrors ? pad("std error", 14) + pad("t", 10) : "") + (models.count == 2 ? pad("|difference|", 14) : ""))
    if p <= 30 {
      for c in 0..<k {
        for i in 0..<p {
          let name = (k > 1 ? "[\(c)] " : "") + (i < first.names.count ? first.names[i] : "x\(i)")
          var line = "  " + pad(name, 14, left: true) + models.map { number($0.1.theta[i * k + c]) }.joined()
          if withErrors, let se = first.standardErrors {
            line += number(se[i]) + pad(String(format: "%.2f", first.theta[i] / se[i]), 10)
          }
          if models.count == 2 { line += number(abs(models[0].1.theta[i * k + c] - models[1].1.theta[i * k + c])) }
          lines.append(line)
        }
      }
    } else {
      lines.append("  (\(p) x \(k) coefficients: see --json)")
    }
    func row(_ name: String, _ f: (LinearModelSummary) -> Double?) {
      lines.append("  " + pad(name, 14, left: true) + models.map { number(f($0.1)) }.joined())
    }
    row("train MSE") { $0.train.mse }
    row("test MSE") { $0.test?.mse }
    row("train RMSE") { $0.train.rmse }
    row("test RMSE") { $0.test?.rmse }
    row("R^2 (train)") { $0.train.r2 }
    if first.test != nil { row("R^2 (test)") { $0.test?.r2 } }
    if first.train.accuracy != nil {
      row("train acc") { $0.train.accuracy }
      row("test acc") { $0.test?.accuracy }
    }
    for (j, _) in first.predictions.enumerated() {
      for c in 0..<k where k <= 3 {
        row("predict #\(j + 1)\(k > 1 ? "[\(c)]" : "")") { $0.predictions[j][c] }
      }
    }
    lines.append(String(format: "  condition number ~ %.3g, rank %d of %d", fit.conditionNumber, fit.rank, fit.parameters))
    return lines
  }
}
