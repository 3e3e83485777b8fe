import Foundation
import Training
import _Support

/// Every N optimizer steps (`--log-every`), rank 0 appends a line to `steps.jsonl` in the log folder: the step, its
/// epoch, the step's loss, the learning rate it used, the global gradient norm (before clipping) and the samples per
/// second since the last line; with TensorBoard, the same as scalars under `step/`. A resumed run keeps the lines of
/// the steps its checkpoint had taken and drops later ones. The norm is the trainer's `gradientNormEvery`, which every
/// rank must set alike (the norm may be a collective): rank 0 alone holds the log. As for the epochs' log, nothing is
/// written until the first epoch has ended: a run that fails before leaves the folder as it was.
public final class StepLog: RunObserver {
  public static let fileName = "steps.jsonl"
  public let folder: OutputFolder
  public let board: TensorBoardWriter?
  public let every: Int
  private var file: AppendFile?
  private var kept: [String] = []
  /// The lines and scalars of the steps before the first epoch was logged.
  private var pending: [(line: String, scalars: [(String, Double)], step: Int)] = []
  private var since = (samples: 0, time: WallClock.now())

  /// A log of every `every` steps into `folder`; resuming at step `keepSteps`, the lines after it are dropped.
  public init(folder: OutputFolder, board: TensorBoardWriter?, every: Int, keepSteps: Int? = nil) {
    (self.folder, self.board, self.every) = (folder, board, max(every, 1))
    if let keepSteps, let text = try? Files.read(folder.file(Self.fileName), limit: 1 << 30, missing: "") {
      kept = String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init)
        .filter { line in (try? JSON.parse(line))?["step"]?.int.map { $0 <= keepSteps } ?? false }
    }
  }

  /// About 20 lines an epoch of `batches` steps.
  public static func defaultEvery(batchesPerEpoch batches: Int) -> Int { max(1, batches / 20) }

  public func runWillStart(_ run: Run) throws { since = (0, WallClock.now()) }

  public func stepEnded(_ run: Run) throws {
    let t = run.trainer
    since.samples += t.lastStepSamples
    guard t.communicator.isRoot, t.step % every == 0 else { return }
    let now = WallClock.now(), seconds = now - since.time
    let rate = seconds > 0 ? Double(since.samples) / seconds : nil
    since = (0, now)
    let row = JSON.object([("step", JSON(t.step)), ("epoch", JSON(t.epoch + 1)), ("loss", JSON(t.lastStepLoss)),
                           ("lr", JSON(t.optimizer.learningRate)), ("grad_norm", JSON(t.lastGradientNorm)),
                           ("samples_per_sec", JSON(rate))])
    let scalars = [("loss", t.lastStepLoss), ("lr", t.optimizer.learningRate), ("grad_norm", t.lastGradientNorm), ("samples_per_sec", rate)]
      .compactMap { tag, value in value.map { ("step/\(tag)", $0) } }
    pending.append((row.serialized(), scalars, t.step))
    if file != nil { try flush() }
  }

  /// An epoch is in the log: the step lines so far are written, and every later one at once.
  public func epochEnded(_ run: Run, _ metrics: EpochMetrics) throws {
    if file == nil { file = try folder.appending(Self.fileName, start: Data(kept.map { $0 + "\n" }.joined().utf8)) }
    try flush()
  }

  private func flush() throws {
    for p in pending {
      try file!.append(Data((p.line + "\n").utf8))
      for (tag, value) in p.scalars { try board?.scalar(tag, value, step: p.step) }
    }
    pending = []
  }

  public func runEnded(_ run: Run, _ outcome: RunOutcome) throws {
    file?.close()
    file = nil
  }
}
