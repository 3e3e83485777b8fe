import Datasets
import FileFormats
import Foundation
import Experiments
import Training
import _Support

/// The files of `dpt sweep --log-dir DIR`, written by world rank 0 as results arrive:
/// - per trial, in DIR/<setting> (or DIR/<setting>/seed-<s> when seeds repeat), what `dpt train --log-dir` writes
///   (config.json, metrics.jsonl, metrics.csv) and its checkpoint after every epoch (checkpoint.dptc; best.dptc, the
///   best epoch's, with early stopping);
/// - sweep.json: the arguments, the plan and every trial's status, from which `dpt sweep --resume DIR` goes on;
/// - TensorBoard runs in DIR/tensorboard/<trial> with `--tensorboard`;
/// - summary.json and summary.csv after every trial, and at the end the charts, the findings and report.html.
public final class SweepWriter: SweepObserver {
  public let folder: OutputFolder
  public var directory: String { folder.path }
  /// The settings so far (the search adds to them).
  public private(set) var plan: SweepPlan
  /// The search's state, for a resume to go on from.
  var searcher: JSON?
  let arguments: [String]
  let tensorboard: Bool
  let task: LearningTask
  /// What config.json records for a trial: the settings it ran with.
  let record: (SweepTrial) -> JSON
  var logs: [Int: RunLog] = [:]
  var boards: [Int: TensorBoardWriter] = [:]
  var configs: [Int: JSON] = [:]
  /// Each trial's status (with its seconds and closed form) once it has one.
  public private(set) var statuses: [Int: JSON]
  var experimentWritten = false
  /// A write that failed (reported at the end: the sweep itself goes on).
  public private(set) var problems: [String] = []

  public static let stateFile = "sweep.json"
  public static let bestCheckpoint = "best.dptc"

  /// How many times each trial was started and did not stop cleanly (a signal's stop is not a try): sweep.json keeps
  /// the count across resumes, for `--retries`.
  public private(set) var tries: [Int: Int]

  public init(folder: OutputFolder, plan: SweepPlan, searcher: (any Searcher)?, arguments: [String], statuses: [Int: JSON] = [:],
              tries: [Int: Int] = [:], tensorboard: Bool, task: LearningTask, record: @escaping (SweepTrial) -> JSON) {
    self.tries = tries
    self.folder = folder
    self.plan = plan
    self.searcher = searcher.flatMap { try? Searchers.json($0) }
    self.arguments = arguments
    self.statuses = statuses
    self.tensorboard = tensorboard
    self.task = task
    self.record = record
  }

  /// The folder of a trial's files.
  public func folder(of trial: SweepTrial) throws -> OutputFolder {
    try trial.folder.reduce(folder) { try $0.subfolder($1) }
  }

  public func checkpointBytes(of trial: SweepTrial) -> [UInt8]? {
    guard let own = try? folder(of: trial) else { return nil }
    return try? Checkpoint.readBytes(own.file(Checkpoint.fileName))
  }

  public func planChanged(_ plan: SweepPlan, searcher: any Searcher) {
    self.plan = plan
    self.searcher = try? Searchers.json(searcher)
    do { try writeState() } catch { problems.append("\(SweepWriter.stateFile): \(error)") }
  }

  /// sweep.json: what a resume needs.
  public func writeState() throws {
    let planJSON = try JSON.parse(bytes: Array(try JSONEncoder().encode(plan)))
    let trials: [JSON] = plan.trials.map { t in
      var o: [(String, JSON)] = [("index", JSON(t.index)), ("folder", JSON(t.folder.joined(separator: "/")))]
      if case .object(let s)? = statuses[t.index] { o += s.filter { $0.0 != "tries" } }
      if let n = tries[t.index] { o.append(("tries", JSON(n))) }
      return .object(o)
    }
    let state = JSON.object([("format", JSON("dpt sweep")), ("version", JSON(1)),
                             ("arguments", .array(arguments.map { JSON($0) })), ("plan", planJSON),
                             ("searcher", searcher ?? .null), ("trials", .array(trials))])
    try folder.write(SweepWriter.stateFile, state.serialized(pretty: true) + "\n")
  }

  public func trialStarted(_ trial: SweepTrial, group: Int, earlier: [EpochRecord]) {
    tries[trial.index, default: 0] += 1
    do { try writeState() } catch { problems.append("\(SweepWriter.stateFile): \(error)") }  // a job that dies now has used a try
    let setting = plan.settings[trial.setting]
    guard case .object(var c) = record(trial) else { return }
    c += [("sweep_setting", JSON(plan.name(setting))), ("sweep_seed", .number(Double(trial.seed))), ("sweep_group", JSON(group))]
    configs[trial.index] = .object(c)
    do {
      let own = try folder(of: trial)
      logs[trial.index] = try RunLog(folder: own, config: .object(c), keepEpochs: earlier.isEmpty ? nil : earlier.count, earlier: earlier)
      if tensorboard {
        let runs = try folder.subfolder("tensorboard")
        let hyper = plan.axes.map { ($0.key, $0.isNumeric) } + (plan.seeds.count > 1 ? [("seed", true)] : [])
        if !experimentWritten {
          // The axes and the metrics for TensorBoard's HParams dashboard, in the folder above the runs.
          let metrics = ["loss/val", "loss/test", "accuracy/val", "accuracy/test", "r2/val", "r2/test"].filter {
            task == .regression ? !$0.hasPrefix("accuracy") : !$0.hasPrefix("r2")
          }
          try TensorBoardWriter(folder: runs).hparamsExperiment(hyperparameters: hyper, metrics: metrics)
          experimentWritten = true
        }
        let board = TensorBoardWriter(folder: try runs.subfolder(trial.folder.joined(separator: "_")))
        var values = setting.values.map { pair -> (String, JSON) in
          (plan.axes.first { $0.option == pair[0] }?.key ?? pair[0], SweepSummary.axisValue(pair[1]))
        }
        if plan.seeds.count > 1 { values.append(("seed", JSON.number(Double(trial.seed)))) }
        try board.hparamsSessionStart(values)
        boards[trial.index] = board
      }
    } catch { problems.append("\(plan.name(setting)): \(error)") }
  }

  public func epochFinished(_ trial: SweepTrial, metrics: EpochRecord) {
    do {
      try logs[trial.index]?.append(metrics)
      try boards[trial.index]?.epoch(metrics)
    } catch { problems.append("\(trial.folder.joined(separator: "/")): \(error)") }
  }

  public func checkpoint(_ trial: SweepTrial, bytes: [UInt8], best: Bool) {
    do {
      let own = try folder(of: trial)
      try own.write(Checkpoint.fileName, Data(bytes))
      if best { try own.write(SweepWriter.bestCheckpoint, Data(bytes)) }
    } catch { problems.append("\(trial.folder.joined(separator: "/")): \(error)") }
  }

  public func trialFinished(_ outcome: TrialOutcome) {
    let i = outcome.trial.index
    if outcome.status == .interrupted, let n = tries[i] { tries[i] = max(n - 1, 0) }
    do {
      if let config = configs[i] { try logs[i]?.finish(outcome.status.json, config: config) }
      try boards[i]?.hparamsSessionEnd(succeeded: outcome.status.name != "diverged")
      guard case .object(var s) = outcome.status.json else { return }
      s += [("seconds", JSON(outcome.seconds)), ("closed_form", outcome.closedForm ?? .null)]
      statuses[i] = .object(s)
      try writeState()
    } catch { problems.append("\(outcome.trial.folder.joined(separator: "/")): \(error)") }
    logs[i] = nil
    boards[i] = nil
  }

  /// summary.json and summary.csv of the trials finished so far (written after each one).
  public func writeSummary(_ summary: SweepSummary, about: [(String, JSON)]) throws {
    try folder.write("summary.json", summary.json(extra: about).serialized(pretty: true) + "\n")
    try folder.write("summary.csv", summary.csv)
  }

  /// summary.json (with the findings), summary.csv, the charts (a validation curve per axis, the regularisation path
  /// of a linear model's weight decays) and report.html. Returns the files written.
  public func finish(_ summary: SweepSummary, about: [(String, JSON)], logLoss: Bool) throws -> (files: [String], findings: [Finding]) {
    let path = RegularisationPath(summary)
    let pbt = searcher.flatMap { try? Searchers.decode($0) } as? PBTSearch
    let findings = Findings.sweep(summary) + (path?.findings ?? []) + (pbt.map { PBTLineage.findings($0, plan: plan) } ?? [])
    let json = summary.json(extra: about + [("log_axes", .array(plan.axes.filter(\.isLogScale).map { JSON($0.key) }))],
                            findings: findings)
    try folder.write("summary.json", json.serialized(pretty: true) + "\n")
    try folder.write("summary.csv", summary.csv)
    let lines = summary.rows.map { row -> (line: ReportFiles.Line, folder: String) in
      let runs = row.runs.map(\.outcome.epochs)
      let diverged = row.runs.contains { $0.outcome.status.name == "diverged" }
      var line = ReportFiles.Line(name: row.name, rows: runs.first ?? [], repeats: Array(runs.dropFirst()), diverged: diverged)
      line.continued = row.continued
      return (line, row.folder)
    }
    let title = about.first { $0.0 == "title" }?.1.string ?? "sweep"
    var extra = path.map { [("regularisation_path.svg", $0.chart(title: title))] } ?? []
    if let pbt, let chart = PBTLineage.chart(pbt, title: title) { extra.append(("pbt_lineage.svg", chart)) }
    let files = try ReportFiles.writeSweep(folder: folder, summary: json, lines: lines, logLoss: logLoss, extra: extra)
    return (["summary.json", "summary.csv"] + files, findings)
  }
}

/// A linear model's sweep over weight decay: for each decay, the closed-form ridge solution of SGD's problem
/// (lambda = n k wd / 2) beside SGD's fit, how far apart they are, and the chart of both against the decay.
struct RegularisationPath {
  var points: [(weightDecay: Double, setting: String, closedForm: JSON)]

  /// nil unless the sweep varies weight-decay and its settings have closed forms (linear models fitted by MSE). With
  /// other axes, along the weight decays of the best setting's values of them (else the first setting's).
  init?(_ s: SweepSummary) {
    guard s.plan.axes.contains(where: { $0.option == "weight-decay" }) else { return nil }
    let anchor = s.rows[s.best ?? 0].setting
    let others = s.plan.axes.map(\.option).filter { $0 != "weight-decay" }
    var points: [(Double, String, JSON)] = []
    for row in s.rows where others.allSatisfy({ row.setting.value($0) == anchor.value($0) }) {
      guard let wd = row.setting.value("weight-decay").flatMap(Double.init),
            let c = row.runs.first(where: { $0.outcome.closedForm != nil })?.outcome.closedForm else { continue }
      points.append((wd, row.name, c))
    }
    guard points.count >= 2 else { return nil }
    self.points = points.sorted { $0.0 < $1.0 }
  }

  var findings: [Finding] {
    points.map { p in
      let c = p.closedForm
      let n = { (k: String) in NumberText.compact(c[k]?.double ?? .nan) }
      return Finding(kind: "closed-form", setting: p.setting,
                     evidence: "the ridge solution (lambda = n k wd / 2 = \(n("lambda"))) has train MSE \(n("train_mse")) and test MSE \(n("test_mse")); SGD's fit \(n("sgd_train_mse")) and \(n("sgd_test_mse")); its parameters differ by at most \(n("max_abs_parameter_difference"))")
    }
  }

  /// Every coefficient of the first output against the decay (the closed form solid, SGD dashed), or with more than
  /// eight coefficients the norm of each parameter vector.
  func chart(title: String) -> Chart {
    let xs = points.map(\.weightDecay)
    let positive = xs.allSatisfy { $0 > 0 }
    var series: [Chart.Series] = []
    let first = points[0].closedForm
    let names = first["names"]?.array?.compactMap(\.string) ?? []
    let count = first["theta"]?.array?.count ?? 0
    if count > 0 && count <= 8 {
      for j in 0..<count {
        let color = Chart.palette[j % Chart.palette.count]
        let name = names.indices.contains(j) ? names[j] : "theta[\(j)]"
        for (key, label, dash) in [("theta", "closed form", nil as String?), ("sgd_theta", "SGD", Chart.testDash)] {
          let pts = points.map { ($0.weightDecay, $0.closedForm[key]?.array?[j].double ?? .nan) }
          series.append(Chart.Series(label: "\(name) (\(label))", points: pts, color: color, dash: dash))
        }
      }
    } else {
      for (i, (key, label, dash)) in [("theta_norm", "||theta|| closed form", nil as String?), ("sgd_theta_norm", "||theta|| SGD", Chart.testDash)].enumerated() {
        series.append(Chart.Series(label: label, points: points.map { ($0.weightDecay, $0.closedForm[key]?.double ?? .nan) },
                                   color: Chart.palette[i], dash: dash))
      }
    }
    var c = Chart(title: "\(title): regularisation path, closed-form ridge (solid) and SGD (dashed)", xLabel: "weight_decay",
                  yLabel: count > 0 && count <= 8 ? "coefficient" : "norm", series: series)
    c.logX = positive
    return c
  }
}
