import Datasets
import Foundation
import _Support

/// One row per setting: final and best train/val/test metrics, the epoch of the best validation score, status and
/// time; and the best setting, chosen on the validation set only (the test set is reported, never used to choose).
public struct SweepSummary: Sendable {
  public struct Row: Sendable {
    public var outcome: TrialOutcome
    /// final_train_loss, best_val_acc, ... (nil where a set or a value is missing).
    public var values: [(String, Double?)]
    /// The epoch of the best validation accuracy (classification) or lowest validation loss (regression).
    public var bestValidationEpoch: Int?

    public func value(_ key: String) -> Double? { values.first { $0.0 == key }?.1 ?? nil }
  }

  public var task: LearningTask
  public var rows: [Row]
  /// Index into `rows` of the best setting (nil when every setting diverged).
  public var best: Int?

  /// "acc" for classification, "r2" for regression: the score that is best when largest.
  public var scoreKey: String { task == .classification ? "acc" : "r2" }
  /// What the best setting is chosen by: the highest validation accuracy, or (regression) the lowest validation loss.
  public var selectionKey: String { task == .classification ? "acc" : "loss" }

  public init(outcomes: [TrialOutcome], task: LearningTask) {
    self.task = task
    let score = task == .classification ? "acc" : "r2"
    rows = outcomes.map { o in
      func series(_ key: String) -> [Double?] { o.epochs.map { $0[key]?.double } }
      var values: [(String, Double?)] = []
      for set in ["train", "val", "test"] {
        for (metric, better) in [("loss", { (a: Double, b: Double) in a < b }), (score, { (a: Double, b: Double) in a > b })] {
          let s = series("\(set)_\(metric)")
          values.append(("final_\(set)_\(metric)", s.last ?? nil))
          let finite = s.compactMap { $0 }.filter { $0.isFinite }
          values.append(("best_\(set)_\(metric)", finite.isEmpty ? nil : finite.reduce(finite[0]) { better($1, $0) ? $1 : $0 }))
        }
      }
      // The best validation epoch, by score (classification) or loss (regression).
      let key = task == .classification ? "val_acc" : "val_loss"
      let val = series(key)
      var bestEpoch: Int? = nil
      for (i, v) in val.enumerated() {
        guard let v, v.isFinite else { continue }
        if bestEpoch == nil { bestEpoch = i; continue }
        let current = val[bestEpoch!]!
        if task == .classification ? v > current : v < current { bestEpoch = i }
      }
      return Row(outcome: o, values: values, bestValidationEpoch: bestEpoch.map { $0 + 1 })
    }
    var best: Int? = nil
    for (i, row) in rows.enumerated() where row.outcome.status == .finished {
      guard let candidate = task == .classification ? row.value("best_val_acc") : row.value("best_val_loss") else { continue }
      guard let b = best else { best = i; continue }
      let current = task == .classification ? rows[b].value("best_val_acc")! : rows[b].value("best_val_loss")!
      if task == .classification ? candidate > current : candidate < current { best = i }
    }
    self.best = best
  }

  func rowJSON(_ r: Row) -> JSON {
    var o = r.outcome.setting.json
    o += [("status", JSON(r.outcome.status.rawValue)), ("epochs", JSON(r.outcome.epochs.count))]
    o += r.values.map { ($0.0, JSON($0.1)) }
    o += [("best_val_epoch", r.bestValidationEpoch.map { JSON($0) } ?? .null), ("seconds", JSON(r.outcome.seconds)),
          ("group", JSON(r.outcome.group)), ("folder", JSON(r.outcome.setting.slug))]
    if !r.outcome.message.isEmpty { o.append(("message", JSON(r.outcome.message))) }
    return .object(o)
  }

  /// summary.json: the best setting and one object per setting.
  public func json(extra: [(String, JSON)] = []) -> JSON {
    .object(extra + [("best", best.map { JSON(rows[$0].outcome.setting.name) } ?? .null),
                     ("settings", .array(rows.map(rowJSON)))])
  }

  /// summary.csv: one line per setting, the columns of summary.json's settings.
  public var csv: String {
    let objects = rows.map(rowJSON)
    guard case .object(let first)? = objects.first else { return "" }
    let keys = first.map(\.0).filter { $0 != "message" }
    var text = keys.joined(separator: ",") + "\n"
    for case .object(let o) in objects {
      text += keys.map { k in
        guard let v = o.first(where: { $0.0 == k })?.1 else { return "" }
        switch v {
        case .null: return ""
        case .string(let s): return s.contains(",") || s.contains(" ") ? "\"\(s)\"" : s
        default: return v.serialized()
        }
      }.joined(separator: ",") + "\n"
    }
    return text
  }

  /// The table printed at the end, the best setting marked with *.
  public var table: [String] {
    let score = scoreKey
    let header = ["", "setting", "status", "best val \(score)", "at epoch", "train \(score)", "val \(score)", "test \(score)", "seconds"]
    var lines = [header]
    for (i, r) in rows.enumerated() {
      let f = { (x: Double?) in NumberText.fixed(x) }
      lines.append([i == best ? "*" : "", r.outcome.setting.name, r.outcome.status.rawValue, f(r.value("best_val_\(score)")),
                    r.bestValidationEpoch.map(String.init) ?? "-", f(r.value("final_train_\(score)")),
                    f(r.value("final_val_\(score)")), f(r.value("final_test_\(score)")),
                    String(format: "%.1f", r.outcome.seconds)])
    }
    let widths = (0..<header.count).map { c in lines.map { $0[c].count }.max()! }
    return lines.map { row in
      zip(row, widths).enumerated().map { c, pair in
        c <= 2 ? pair.0.padding(toLength: pair.1, withPad: " ", startingAt: 0)
               : String(repeating: " ", count: pair.1 - pair.0.count) + pair.0
      }.joined(separator: "  ")
    }
  }
}
