import Foundation

/// Watches a run epoch by epoch and says when it should stop: divergence (a training loss that is not finite, or
/// more than `divergeFactor` times the first logged one), early stopping (the validation loss, or without a
/// validation set the test loss, not improved for `patience` epochs), and the optimizer's convergence.
public struct RunMonitor: Sendable {
  /// Epochs without improvement before stopping (nil: never stop early).
  public var patience: Int?
  public var divergeFactor: Double
  /// Under `--on-nan skip-batch` the trainer skips non-finite batches itself, and a non-finite epoch loss is not
  /// divergence.
  public var skipsNonFinite: Bool
  /// The reference of divergence: the first step's loss, else the first logged training loss.
  public private(set) var firstLoss: Double?
  /// The best watched loss so far and its epoch.
  public private(set) var best: (epoch: Int, loss: Double)?

  public init(patience: Int? = nil, divergeFactor: Double = 1e4, skipsNonFinite: Bool = false) {
    self.patience = patience
    self.divergeFactor = divergeFactor
    self.skipsNonFinite = skipsNonFinite
  }

  /// Which set early stopping watches: "val" or "test" (nil: neither exists).
  public static func watched(_ m: EpochMetrics) -> String? { m.validation != nil ? "val" : m.test != nil ? "test" : nil }

  /// Restores the state of a resumed run from its logged epochs (the rows of metrics.jsonl).
  public mutating func replay(_ rows: [EpochRecord]) {
    for r in rows {
      guard let loss = r.train.loss else { continue }
      _ = observe(epoch: r.epoch, trainLoss: loss, watched: r.validation?.loss ?? r.test.loss, initial: r.initialLoss)
    }
  }

  /// Observes an epoch: whether the watched loss improved (the best epoch to keep), and the reason to stop, if any.
  /// An epoch whose every batch was skipped (`--on-nan skip-batch`) has diverged: nothing was trained.
  public mutating func observe(_ m: EpochMetrics) -> (improved: Bool, stop: RunStatus?) {
    if m.batches > 0 && m.skippedBatches >= m.batches {
      return (false, .diverged(epoch: m.epoch, reason: "every batch of the epoch (\(m.batches)) was skipped: its loss or gradient was not finite"))
    }
    return observe(epoch: m.epoch, trainLoss: m.train.loss, watched: (m.validation ?? m.test)?.loss, initial: m.initialLoss)
  }

  /// `initial`: the loss of the run's first step (the first epoch's row has it), the reference for divergence; else
  /// the first logged training loss is.
  public mutating func observe(epoch: Int, trainLoss loss: Double, watched: Double?, initial: Double? = nil) -> (improved: Bool, stop: RunStatus?) {
    if firstLoss == nil, let initial, initial.isFinite { firstLoss = initial }
    if !loss.isFinite {
      if skipsNonFinite { return (false, nil) }
      return (false, .diverged(epoch: epoch, reason: "the training loss is \(loss)"))
    }
    if let first = firstLoss, first > 0, loss > divergeFactor * first {
      return (false, .diverged(epoch: epoch, reason: String(format: "the training loss %.3g is more than %g times its first value %.3g",
                                                         loss, divergeFactor, first)))
    }
    if firstLoss == nil { firstLoss = loss }
    guard let watched else { return (false, nil) }
    var improved = false
    if best == nil || watched < best!.loss {
      best = (epoch, watched)
      improved = true
    }
    if let patience, let b = best, epoch - b.epoch >= patience {
      return (improved, .stoppedEarly(epoch: epoch, best: b.epoch))
    }
    return (improved, nil)
  }
}
