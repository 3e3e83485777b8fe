import Experiments
import Foundation
import Training
import _Support

/// A run's `--log-dir`, kept by rank 0 as the run goes: each epoch a row of metrics.jsonl and metrics.csv (and
/// TensorBoard's events), and every few steps a line of steps.jsonl (`StepLog`); at the end config.json's status,
/// findings.json, the charts and report.html. An interrupted run leaves its rows for the resume to continue.
public final class LogFolderRecorder: RunObserver {
  public let log: RunLog
  public let board: TensorBoardWriter?
  let title: String
  let config: JSON
  /// The per-step lines (nil: `--log-every 0`).
  public let steps: StepLog?
  /// The findings of every logged epoch (a resumed run's earlier ones included), once the run has ended.
  public private(set) var findings: [Finding] = []

  public init(log: RunLog, board: TensorBoardWriter?, title: String, config: JSON, steps: StepLog? = nil) {
    self.log = log
    self.board = board
    self.title = title
    self.config = config
    self.steps = steps
  }

  public func runWillStart(_ run: Run) throws {
    try steps?.runWillStart(run)
    guard let board, case .object(let fields) = config else { return }
    // TensorBoard's HParams for this run alone: its settings (numbers and words) against its final metrics.
    let skipped: Set<String> = ["run_id", "data_fingerprint", "dataset_path"]
    let values = fields.filter { k, v in !skipped.contains(k) && (v.double != nil || v.string != nil || v.bool != nil) }
      .map { k, v in (k, v.bool.map { JSON($0 ? "true" : "false") } ?? v) }
    let metrics = run.trainer.data.train.task == .regression ? ["loss/val", "loss/test", "r2/val", "r2/test"]
      : ["loss/val", "loss/test", "accuracy/val", "accuracy/test"]
    try board.hparamsExperiment(hyperparameters: values.map { ($0.0, $0.1.double != nil) }, metrics: metrics)
    try board.hparamsSessionStart(values)
  }
  public func stepEnded(_ run: Run) throws { try steps?.stepEnded(run) }

  public func epochEnded(_ run: Run, _ metrics: EpochMetrics) throws {
    try log.append(metrics.record)
    try board?.epoch(metrics.record)
  }

  public func runEnded(_ run: Run, _ outcome: RunOutcome) throws {
    try steps?.runEnded(run, outcome)
    guard outcome.status != .interrupted else { return }
    try board?.hparamsSessionEnd(succeeded: outcome.status.name != "diverged")
    let status = outcome.status
    findings = Findings.run(log.rows, task: run.trainer.data.train.task, status: status)
    try log.finish(status.json, config: config)
    guard !log.rows.isEmpty else { return }
    try log.folder.write("findings.json", JSON.array(findings.map(\.json)).serialized(pretty: true) + "\n")
    _ = try ReportFiles.writeRun(folder: log.folder, title: title, config: config, rows: log.rows, logLoss: false,
                                 diverged: status.name == "diverged", findings: findings.map(\.json))
  }
}
