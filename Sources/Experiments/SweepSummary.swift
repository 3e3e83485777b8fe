import Training
import Datasets
import Foundation
import _Support

/// One row per setting: final and best train/val/test metrics (the mean over its seeds, with their standard
/// deviation), the epoch of the best validation score, status and time; and the best setting, chosen on the
/// validation set only (the test set is reported, never used to choose), with whether its margin over the runner-up
/// is within the seeds' noise.
public struct SweepSummary: Sendable {
  /// One trial: a setting with one seed.
  public struct Run: Sendable {
    public var outcome: TrialOutcome
    /// final_train_loss, best_val_acc, ... (nil where a set or a value is missing).
    public var values: [(String, Double?)]
    /// The epoch of the best validation accuracy (classification) or lowest validation loss (regression).
    public var bestValidationEpoch: Int?

    public func value(_ key: String) -> Double? { values.first { $0.0 == key }?.1 ?? nil }
  }

  /// One setting: its runs (one per seed) and their mean.
  public struct Row: Sendable {
    public var setting: SweepSetting
    public var name: String
    public var folder: String
    public var runs: [Run]
    /// The mean over the runs whose value exists, and the standard deviation over them (nil with one).
    public var mean: [(String, Double?)]
    public var sd: [(String, Double?)]
    /// Why its trials are not results of their own (`Searcher.supersededSettings`): "continued" (its epochs are part
    /// of a later setting's) or "replaced"; such a setting is neither chosen nor judged on its own.
    public var superseded: String?
    public var continued: Bool { superseded != nil }

    public func value(_ key: String) -> Double? { mean.first { $0.0 == key }?.1 ?? nil }
    public func spread(_ key: String) -> Double? { sd.first { $0.0 == key }?.1 ?? nil }

    /// The runs' status: theirs when they agree, else "mixed (2 finished, 1 diverged)".
    public var status: String {
      if let superseded { return superseded }
      let names = runs.map(\.outcome.status.name)
      guard let first = names.first, names.allSatisfy({ $0 == first }) else {
        var counts: [(String, Int)] = []
        for n in names {
          if let i = counts.firstIndex(where: { $0.0 == n }) { counts[i].1 += 1 } else { counts.append((n, 1)) }
        }
        return "mixed (" + counts.map { "\($0.1) \($0.0)" }.joined(separator: ", ") + ")"
      }
      return first
    }

    /// Whether every run trained to a result the choice may use (finished, stopped early or converged).
    public var eligible: Bool {
      !continued && !runs.isEmpty && runs.allSatisfy {
        switch $0.outcome.status {
        case .finished, .stoppedEarly, .converged: true
        default: false
        }
      }
    }

    /// The setting's best epoch: that of the mean over its seeds (`EpochRecord.bestEpoch(of:)`).
    public var bestValidationEpoch: Int? { EpochRecord.bestEpoch(of: runs.map(\.outcome.epochs).filter { !$0.isEmpty }) }
  }

  public var task: LearningTask
  public var plan: SweepPlan
  public var rows: [Row]
  /// Index into `rows` of the best setting (nil when none may be chosen).
  public var best: Int?
  /// The runner-up, its margin to the best, and whether that margin is zero or within one standard deviation (a tie;
  /// the first of the two in the grid's order is named best).
  public var runnerUp: (index: Int, margin: Double, tie: Bool)?

  /// "acc" for classification, "r2" for regression: the score that is best when largest.
  public var scoreKey: String { task == .classification ? "acc" : "r2" }
  /// What the best setting is chosen by: the highest validation accuracy, or (regression) the lowest validation loss.
  public var selectionKey: String { task == .classification ? "acc" : "loss" }
  /// "mean best validation accuracy over 3 seeds".
  public var selectionText: String {
    (plan.seeds.count > 1 ? "mean " : "") + "best validation " + (task == .classification ? "accuracy" : "loss")
      + (plan.seeds.count > 1 ? " over \(plan.seeds.count) seeds" : "")
  }

  /// The metrics of one trial's epochs: final and best of loss and score for each set.
  public static func values(_ epochs: [EpochRecord], task: LearningTask) -> (values: [(String, Double?)], bestEpoch: Int?) {
    let score: Metric = task == .classification ? .acc : .r2
    func series(_ set: MetricSet, _ metric: Metric) -> [Double?] { epochs.map { $0.value(set, metric) } }
    var values: [(String, Double?)] = []
    for set in MetricSet.allCases {
      for (metric, better) in [(Metric.loss, { (a: Double, b: Double) in a < b }), (score, { (a: Double, b: Double) in a > b })] {
        let s = series(set, metric)
        values.append(("final_\(set.rawValue)_\(metric.rawValue)", s.last ?? nil))
        let finite = s.compactMap { $0 }.filter { $0.isFinite }
        values.append(("best_\(set.rawValue)_\(metric.rawValue)", finite.isEmpty ? nil : finite.reduce(finite[0]) { better($1, $0) ? $1 : $0 }))
      }
    }
    let bestEpoch = EpochRecord.bestEpoch(of: [epochs])
    return (values, bestEpoch)
  }

  /// `superseded`: the settings whose trials are not results of their own (`Searcher.supersededSettings`).
  public init(outcomes: [TrialOutcome], plan: SweepPlan, task: LearningTask, superseded: [Int: String] = [:]) {
    self.task = task
    self.plan = plan
    var rows: [Row] = []
    for setting in plan.settings {
      let runs = outcomes.filter { $0.trial.setting == setting.index }.map { o -> Run in
        let (values, bestEpoch) = SweepSummary.values(o.epochs, task: task)
        return Run(outcome: o, values: values, bestValidationEpoch: bestEpoch)
      }
      guard let first = runs.first else { continue }
      var mean: [(String, Double?)] = [], sd: [(String, Double?)] = []
      for (key, _) in first.values {
        let xs = runs.compactMap { $0.value(key) }.filter(\.isFinite)
        let m = xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count)
        mean.append((key, m))
        sd.append((key, xs.count > 1 ? (xs.map { ($0 - m!) * ($0 - m!) }.reduce(0, +) / Double(xs.count - 1)).squareRoot() : nil))
      }
      rows.append(Row(setting: setting, name: plan.name(setting), folder: plan.slug(setting), runs: runs, mean: mean, sd: sd,
                      superseded: superseded[setting.index]))
    }
    self.rows = rows
    // The best by the mean validation metric; the first of equal ones (the order of the grid).
    let key = "best_val_\(task == .classification ? "acc" : "loss")"
    let candidates = rows.indices.filter { rows[$0].eligible && rows[$0].value(key) != nil }
    let better = { (a: Double, b: Double) in task == .classification ? a > b : a < b }
    let ranked = candidates.sorted { a, b in
      let (x, y) = (rows[a].value(key)!, rows[b].value(key)!)
      return x == y ? a < b : better(x, y)
    }
    best = ranked.first
    if ranked.count > 1 {
      let (a, b) = (ranked[0], ranked[1])
      let margin = abs(rows[a].value(key)! - rows[b].value(key)!)
      let noise = max(rows[a].spread(key) ?? 0, rows[b].spread(key) ?? 0)
      runnerUp = (b, margin, margin == 0 || (noise > 0 && margin <= noise))
    }
  }

  func runJSON(_ r: Run) -> JSON {
    var o: [(String, JSON)] = [("seed", .number(Double(r.outcome.trial.seed))), ("folder", JSON(r.outcome.trial.folder.joined(separator: "/")))]
    if case .object(let status) = r.outcome.status.json { o += status }
    o += [("epochs", JSON(r.outcome.epochs.count)), ("tries", JSON(r.outcome.tries))]
    o += r.values.map { ($0.0, JSON($0.1)) }
    o += [("best_val_epoch", r.bestValidationEpoch.map { JSON($0) } ?? .null), ("seconds", JSON(r.outcome.seconds)),
          ("group", JSON(r.outcome.group))]
    return .object(o)
  }

  /// The axis's value as JSON: a number when it reads as one.
  public static func axisValue(_ v: String) -> JSON { Double(v).map { JSON($0) } ?? JSON(v) }

  func rowJSON(_ r: Row) -> JSON {
    var o: [(String, JSON)] = [("setting", JSON(r.name))]
    for pair in r.setting.values {
      let key = plan.axes.first { $0.option == pair[0] }?.key ?? pair[0]
      o.append((key, SweepSummary.axisValue(pair[1])))
    }
    o += [("status", JSON(r.status)), ("epochs", JSON(r.runs.map(\.outcome.epochs.count).max() ?? 0)),
          ("tries", JSON(r.runs.map(\.outcome.tries).max() ?? 1))]
    if r.runs.count == 1, case .object(let status) = r.runs[0].outcome.status.json { o += status.filter { $0.0 != "status" } }
    for (key, m) in r.mean {
      o.append((key, JSON(m)))
      if plan.seeds.count > 1 { o.append((key + "_sd", JSON(r.spread(key)))) }
    }
    o += [("best_val_epoch", r.bestValidationEpoch.map { JSON($0) } ?? .null),
          ("seconds", JSON(r.runs.reduce(0) { $0 + $1.outcome.seconds } / Double(r.runs.count))), ("folder", JSON(r.folder))]
    if plan.seeds.count > 1 {
      o += [("seeds", .array(r.runs.map { .number(Double($0.outcome.trial.seed)) })), ("runs", .array(r.runs.map(runJSON)))]
    } else if let g = r.runs.first?.outcome.group {
      o.append(("group", JSON(g)))
    }
    return .object(o)
  }

  /// summary.json: the best setting (with how it was chosen and whether it ties), the findings, and one object per
  /// setting.
  public func json(extra: [(String, JSON)] = [], findings: [Finding] = []) -> JSON {
    var choice: [(String, JSON)] = [("best", best.map { JSON(rows[$0].name) } ?? .null), ("best_by", JSON(selectionText))]
    if let r = runnerUp {
      choice += [("runner_up", JSON(rows[r.index].name)), ("margin", JSON(r.margin)), ("tie", .bool(r.tie))]
    }
    return .object(extra + choice + [("axes", .array(plan.axes.map { JSON($0.key) })),
                                     ("findings", .array(findings.map(\.json))), ("settings", .array(rows.map(rowJSON)))])
  }

  /// summary.csv: one line per setting, the scalar columns of summary.json's settings.
  public var csv: String {
    let objects = rows.map(rowJSON)
    guard case .object(let first)? = objects.first else { return "" }
    let keys = first.map(\.0).filter { !["runs", "seeds", "reason"].contains($0) }
    var text = keys.joined(separator: ",") + "\n"
    for case .object(let o) in objects {
      text += keys.map { k in
        guard let v = o.first(where: { $0.0 == k })?.1 else { return "" }
        switch v {
        case .null: return ""
        case .string(let s): return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        default: return v.serialized()
        }
      }.joined(separator: ",") + "\n"
    }
    return text
  }

  /// The table printed at the end, the best setting marked with * (± the standard deviation over seeds).
  public var table: [String] {
    let score = scoreKey
    let header = ["", "setting", "status", "best val \(score)", "at epoch", "train \(score)", "val \(score)", "test \(score)", "seconds"]
    var lines = [header]
    for (i, r) in rows.enumerated() {
      func f(_ key: String) -> String {
        let v = NumberText.fixed(r.value(key))
        return r.spread(key).map { v + " ±" + NumberText.fixed($0) } ?? v
      }
      lines.append([i == best ? "*" : "", r.name, r.status, f("best_val_\(score)"), r.bestValidationEpoch.map(String.init) ?? "-",
                    f("final_train_\(score)"), f("final_val_\(score)"), f("final_test_\(score)"),
                    String(format: "%.1f", r.runs.reduce(0) { $0 + $1.outcome.seconds } / Double(r.runs.count))])
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
