import Foundation
import Training
import _Support

/// Every N optimizer steps (`--log-every`), rank 0 appends a line to `steps.jsonl` in the log folder: the step, its
/// epoch, the step's loss, the learning rate it used, the global gradient norm (before clipping) and the samples per
/// second since the last line; with TensorBoard, the same as scalars under `step/`. A resumed run keeps the lines of
/// the steps its checkpoint had taken and drops later ones. The norm is the trainer's `gradientNormEvery`, which every
/// rank must set alike (the norm may be a collective): rank 0 alone holds the log.
public final class StepLog: RunObserver {
  public static let fileName = "steps.jsonl"
  public let folder: OutputFolder
  public let board: TensorBoardWriter?
  public let every: Int
  private var file: AppendFile?
  private var kept: [String] = []
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
    if file == nil { file = try folder.appending(Self.fileName, start: Data(kept.map { $0 + "\n" }.joined().utf8)) }
    try file!.append(Data((row.serialized() + "\n").utf8))
    for (tag, value) in [("loss", t.lastStepLoss), ("lr", t.optimizer.learningRate), ("grad_norm", t.lastGradientNorm), ("samples_per_sec", rate)] {
      if let value { try board?.scalar("step/\(tag)", value, step: t.step) }
    }
  }

  public func runEnded(_ run: Run, _ outcome: RunOutcome) throws {
    file?.close()
    file = nil
  }
}
