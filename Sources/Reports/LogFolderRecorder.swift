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

  public func runWillStart(_ run: Run) throws { try steps?.runWillStart(run) }

  /// TensorBoard's HParams for this run, written with its first epoch (nothing is written before).
  private var hparamsWritten = false
  func writeHParams(_ run: Run) throws {
    guard !hparamsWritten, let board, case .object(let fields) = config else { return }
    hparamsWritten = true
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
    try writeHParams(run)
    try board?.epoch(metrics.record)
    try steps?.epochEnded(run, metrics)  // after the epoch's row: the step lines may be written now
  }

  public func runEnded(_ run: Run, _ outcome: RunOutcome) throws {
    try steps?.runEnded(run, outcome)
    guard outcome.status != .interrupted else { return }
    if hparamsWritten { try board?.hparamsSessionEnd(succeeded: outcome.status.name != "diverged") }
    let status = outcome.status
    findings = Findings.run(log.rows, task: run.trainer.data.train.task, status: status)
    try log.finish(status.json, config: config)
    guard !log.rows.isEmpty else { return }
    try log.folder.write("findings.json", JSON.array(findings.map(\.json)).serialized(pretty: true) + "\n")
    _ = try ReportFiles.writeRun(folder: log.folder, title: title, config: config, rows: log.rows, logLoss: false,
                                 diverged: status.name == "diverged", findings: findings.map(\.json))
  }
}
