import ArgumentParser
import Collectives
import Datasets
import Foundation
import Reports
import Training

struct Train: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train a model data-parallel; rank 0 prints one row per epoch.",
    discussion: """
      Examples:
        dpt train --dataset mnist --epochs 5
        mpirun -np 2 dpt train --dataset fashion-mnist --hidden 256 --batch-size 128 --log-dir runs/fashion
        dpt train --dataset corn --json
      """)

  @OptionGroup var options: TrainingOptions

  @Option(help: "Write config.json, metrics.jsonl, metrics.csv, accuracy.svg, loss.svg and report.html into this folder.")
  var logDir: String?

  @Flag(help: "With --log-dir, also write TensorBoard event files (DIR/tensorboard).")
  var tensorboard = false

  @Flag(help: "Print the final metrics as one JSON object on stdout (the table goes to stderr).")
  var json = false

  @Flag(help: "After each epoch, print where rank 0's training time went (data, forward, loss, backward, allreduce, optimizer).")
  var profile = false

  @Option(help: "Feature rows for the closed-form comparison of a linear model, e.g. \"6,4;10,5;14,8\" (corn's default is the course's rows).")
  var predict: String?

  @Option(help: "Print every N-th epoch's row (and the last); the log files keep every epoch.")
  var printEvery: Int = 1

  func validate() throws {
    try options.requireSingleValues()
    if printEvery < 1 { throw ValidationError("--print-every must be at least 1 (got \(printEvery))") }
    if tensorboard && logDir == nil { throw ValidationError("--tensorboard needs --log-dir") }
    if let p = predict { _ = try parsePredictRows(p) }
  }

  func run() throws {
    let config = try options.makeConfig()
    try Launch.withWorld { comm in try train(config, comm) }
  }

  func train(_ config: TrainingConfig, _ comm: any Communicator) throws {
    var console = Console(isRoot: comm.isRoot, jsonOutput: json)
    // Everything that can fail on bad input happens inside `agree`: if it fails on any rank, every rank stops here
    // with the same message, before any log file is written.
    let (trainer, log, board, rows) = try comm.agree { () throws -> (Trainer<Float>, RunLog?, TensorBoardWriter?, [[Double]]) in
      let data = try options.data.load(validation: options.data.valFraction ?? 0)
      let trainer = try Trainer<Float>(config: config, data: data, communicator: comm)
      let rows = try predictionRows(predict, source: config.dataset, features: data.train.featureCount)
      let log = try comm.isRoot ? logDir.map { try RunLog(directory: $0, config: config.json(worldSize: comm.size)) } : nil
      let board = try comm.isRoot && tensorboard ? logDir.map { try TensorBoardWriter(directory: ($0 as NSString).appendingPathComponent("tensorboard")) } : nil
      return (trainer, log, board, rows)
    }
    console.say(Report.header(trainer))
    let table = EpochTable(task: trainer.data.train.task, validation: trainer.data.validation != nil)
    console.say(table.header)
    var history: [EpochMetrics] = []
    for e in 1...config.epochs {
      trainer.resetPhaseTimes()
      let m = try trainer.runEpoch { step, steps in console.progress(epoch: e, step: step, steps: steps) }
      console.clearProgress()
      if e % printEvery == 0 || e == config.epochs { console.say(table.row(m)) }
      if profile { console.say("      " + Report.phases(trainer.phaseTimes, epochSeconds: m.seconds)) }
      try log?.append(m.json)
      if let board {
        for (key, tag) in [("train_loss", "loss/train"), ("val_loss", "loss/val"), ("test_loss", "loss/test"),
                           ("train_acc", "accuracy/train"), ("val_acc", "accuracy/val"), ("test_acc", "accuracy/test")] {
          if let v = m.json[key]?.double { try board.scalar(tag, v, step: m.epoch) }
        }
      }
      history.append(m)
    }
    if let log {
      _ = try RunReport.writeRun(directory: log.directory, title: "\(config.model) on \(trainer.data.name)",
                                 config: config.json(worldSize: comm.size), rows: history.map(\.json), logLoss: true)
    }
    // Every rank's peak memory, gathered on rank 0 (a collective: every rank takes part).
    let peaks = try comm.allGather(Array(String(ProcessMemory.peakResidentMiB ?? .nan).utf8))
      .map { Double(String(decoding: $0, as: UTF8.self)) ?? .nan }
    // A linear model trained with MSE: the closed-form solution of the same problem beside it.
    let comparison = try ClosedFormComparison.make(trainer, predict: rows)
    if let c = comparison, !json {
      console.say("")
      console.say(Report.comparisonTitle(c, trainer))
      for line in Report.linearModel([("closed form", c.closedForm), ("SGD", c.sgd)], fit: c.fit) { console.say(line) }
      console.say("  largest |parameter difference|: \(Report.number(c.maxParameterDifference).trimmingCharacters(in: .whitespaces))")
      for w in c.fit.warnings { console.say("warning: \(w)") }
    }
    if json {
      var summary = Report.summary(trainer, history, peakMemory: peaks)
      if let c = comparison, case .object(var o) = summary {
        o += c.closedForm.jsonFields + Report.fitFields(c.fit)
        o += [("lambda", JSON(c.lambda)), ("sgd", .object(c.sgd.jsonFields)),
              ("max_abs_parameter_difference", JSON(c.maxParameterDifference))]
        summary = .object(o)
      }
      console.result(summary.serialized())
    }
  }
}

/// The text dpt prints about a run.
enum Report {
  static func header<T>(_ t: Trainer<T>) -> String {
    let d = t.data, c = t.config
    var sets = d.test.count > 0 ? "\(d.train.count) train / \(d.test.count) test" : "\(d.train.count) train, no test set"
    if let v = d.validation { sets += " / \(v.count) validation" }
    let ranks = t.worldSize == 1 ? "1 rank" : "\(t.worldSize) ranks"
    let scaled = t.standardization != nil ? ", standardised features" : ""
    return "\(d.name): \(sets)\(scaled) | \(c.model) (\(t.network.parameterCount) parameters), \(c.loss) | \(t.optimizer.summary)\(c.optimizer.schedule.kind == .constant && c.optimizer.schedule.warmupEpochs == 0 ? "" : ", lr schedule \(c.optimizer.schedule)") | batch \(min(c.batchSize, d.train.count)) | \(ranks)"
  }

  static func comparisonTitle<T>(_ c: ClosedFormComparison, _ t: Trainer<T>) -> String {
    let wd = t.config.optimizer.weightDecay
    let penalty = wd == 0 ? "no penalty (weight decay 0)"
      : String(format: "ridge lambda = n k wd / 2 = %d x %d x %g / 2 = %g%@", t.data.train.count, c.closedForm.outputs, wd, c.lambda,
               t.config.optimizer.decayBiases ? ", intercept penalised (--decay-bias true)" : ", intercept not penalised")
    let scaled = t.standardization != nil ? "; both fitted on standardised features, shown in original units" : ""
    return "closed form (\(c.fit.method.rawValue): \(c.fit.reason)) beside SGD: \(penalty)\(scaled)"
  }

  /// "data 0.062s (9%) | forward 0.290s (41%) | ..."
  static func phases(_ p: PhaseTimes, epochSeconds: Double) -> String {
    p.named.map { name, t in String(format: "%@ %.3fs (%.0f%%)", name, t, 100 * t / epochSeconds) }
      .joined(separator: " | ")
  }

  /// The final metrics of `dpt train --json`.
  static func summary<T>(_ t: Trainer<T>, _ history: [EpochMetrics], peakMemory: [Double]) -> JSON {
    guard let last = history.last, case .object(let final) = last.json else { return .null }
    let seconds = history.reduce(0) { $0 + $1.seconds }
    let samples = history.reduce(0) { $0 + $1.samples }
    var o: [(String, JSON)] = [
      ("dataset", JSON(t.data.name)), ("model", JSON(t.config.model.description)),
      ("parameters", JSON(t.network.parameterCount)), ("world_size", JSON(t.worldSize)),
      ("train_samples", JSON(t.data.train.count)), ("test_samples", JSON(t.data.test.count)),
    ]
    o += final.filter { !["seconds", "samples_per_sec", "eval_seconds", "lr"].contains($0.0) }
    o += [("seconds", JSON(seconds)), ("samples_per_sec", JSON(Double(samples) / seconds)),
          ("peak_rss_mib_per_rank", JSON(peakMemory))]
    return .object(o)
  }
}
