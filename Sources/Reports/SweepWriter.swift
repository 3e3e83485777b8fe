import Foundation
import Training
import _Support

/// The files of `dpt sweep --log-dir DIR`, written by world rank 0 as results arrive:
/// DIR/<setting>/{config.json, metrics.jsonl, metrics.csv} (as `dpt train --log-dir`), TensorBoard runs in
/// DIR/tensorboard/<setting> with `--tensorboard`, and at the end summary.json, summary.csv, the charts and report.html.
public final class SweepWriter: SweepObserver {
  public let folder: OutputFolder
  public var directory: String { folder.path }
  let base: TrainingConfig
  let ranksPerTrial: Int
  let tensorboard: Bool
  var logs: [Int: RunLog] = [:]
  var boards: [Int: TensorBoardWriter] = [:]
  var experimentWritten = false
  /// The hyperparameters a sweep varies, as the HParams dashboard names them.
  static let hyperparameters: [(String, (SweepSetting) -> Double)] = [
    ("weight_decay", { $0.weightDecay }), ("lr", { $0.learningRate }), ("momentum", { $0.momentum }),
    ("batch_size", { Double($0.batchSize) }),
  ]
  /// A write that failed (reported at the end: the sweep itself goes on).
  public private(set) var problems: [String] = []

  public init(folder: OutputFolder, base: TrainingConfig, ranksPerTrial: Int, tensorboard: Bool) {
    self.folder = folder
    self.base = base
    self.ranksPerTrial = ranksPerTrial
    self.tensorboard = tensorboard
  }

  public func trialStarted(_ setting: SweepSetting, group: Int) {
    let config = setting.apply(to: base)
    guard case .object(var c) = config.json(worldSize: ranksPerTrial) else { return }
    c += [("sweep_setting", JSON(setting.name)), ("sweep_group", JSON(group))]
    do {
      logs[setting.index] = try RunLog(folder: try folder.subfolder(setting.slug), config: .object(c))
      if tensorboard {
        let runs = try folder.subfolder("tensorboard")
        if experimentWritten == false {
          // The grid and the final metrics for TensorBoard's HParams dashboard, in the folder above the runs.
          let board = TensorBoardWriter(folder: runs)
          let metrics = ["loss/val", "loss/test", "accuracy/val", "accuracy/test", "r2/val", "r2/test"].filter {
            base.dataset?.task == .regression ? !$0.hasPrefix("accuracy") : !$0.hasPrefix("r2")
          }
          try board.hparamsExperiment(hyperparameters: Self.hyperparameters.map(\.0), metrics: metrics)
          experimentWritten = true
        }
        let board = TensorBoardWriter(folder: try runs.subfolder(setting.slug))
        try board.hparamsSessionStart(Self.hyperparameters.map { ($0.0, $0.1(setting)) })
        boards[setting.index] = board
      }
    } catch { problems.append("\(setting.name): \(error)") }
  }

  public func epochFinished(_ setting: SweepSetting, metrics: JSON) {
    do {
      try logs[setting.index]?.append(metrics)
      try boards[setting.index]?.epoch(metrics)
    } catch { problems.append("\(setting.name): \(error)") }
  }

  public func trialFinished(_ outcome: TrialOutcome) {
    do { try boards[outcome.setting.index]?.hparamsSessionEnd(succeeded: outcome.status == .finished) } catch {
      problems.append("\(outcome.setting.name): \(error)")
    }
    logs[outcome.setting.index] = nil
    boards[outcome.setting.index] = nil
  }

  /// summary.json and summary.csv of the settings finished so far (written after each one).
  public func writeSummary(_ summary: SweepSummary, about: [(String, JSON)]) throws {
    try folder.write("summary.json", summary.json(extra: about).serialized(pretty: true) + "\n")
    try folder.write("summary.csv", summary.csv)
  }

  /// summary.json, summary.csv, the charts and report.html. Returns the files written.
  public func finish(_ summary: SweepSummary, about: [(String, JSON)], logLoss: Bool) throws -> [String] {
    let json = summary.json(extra: about)
    try folder.write("summary.json", json.serialized(pretty: true) + "\n")
    try folder.write("summary.csv", summary.csv)
    let runs = summary.rows.map { ($0.outcome.setting.name, $0.outcome.setting.slug, $0.outcome.epochs) }
    return ["summary.json", "summary.csv"] + (try ReportFiles.writeSweep(folder: folder, summary: json, runs: runs, logLoss: logLoss))
  }
}
