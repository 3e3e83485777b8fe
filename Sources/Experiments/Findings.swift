import Training
import Datasets
import Foundation
import _Support

/// What the curves of a run or a sweep show, with the numbers that show it: `kind` is one of best, tie, overfit,
/// noisy, underfit, diverged, not-converged, unstable, closed-form.
public struct Finding: Equatable, Sendable {
  public var kind: String
  /// The setting it is about (nil for a single run).
  public var setting: String?
  public var evidence: String

  public init(kind: String, setting: String? = nil, evidence: String) {
    self.kind = kind
    self.setting = setting
    self.evidence = evidence
  }

  public var json: JSON {
    .object([("kind", JSON(kind)), ("setting", setting.map { JSON($0) } ?? .null), ("evidence", JSON(evidence))])
  }

  public init?(json: JSON) {
    guard let kind = json["kind"]?.string, let evidence = json["evidence"]?.string else { return nil }
    self.init(kind: kind, setting: json["setting"]?.string, evidence: evidence)
  }
}

/// The rules that turn curves into findings. Thresholds are stated in each finding's evidence.
public enum Findings {
  /// A rise of the watched loss after its minimum that counts as overfitting: 5% of the minimum.
  public static let overfitRise = 0.05
  /// Steeply falling at the end: the training loss fell more than 1% an epoch over the last quarter of the epochs.
  public static let stillFalling = 0.01
  /// Unstable: the validation (or test) accuracy moves more than 2 points an epoch on average over the second half,
  /// changing direction at least twice (R^2 for regression).
  public static let swing = 0.02
  /// Overfitting needs the watched loss to rise, and the training loss to fall, by more than this many times their
  /// jitter (`jitter`) since the watched loss's minimum: the minimum of a noisy curve is itself a low draw, and two
  /// epochs' values differ by about one jitter from noise alone.
  public static let beyondJitter = 2.0
  /// Underfitting: train accuracy 5 points below the best setting's, or (regression) a train loss twice the best's.
  public static let underfitGap = 0.05

  static func n(_ x: Double) -> String { NumberText.compact(x) }

  /// A curve's jitter: the standard deviation of its epoch-to-epoch changes (0 for fewer than two changes). A steady
  /// trend has none; a curve that goes up and down by d between epochs has about d.
  public static func jitter(_ x: [Double]) -> Double {
    let d = zip(x, x.dropFirst()).map { $1 - $0 }
    guard d.count >= 2 else { return 0 }
    let mean = d.reduce(0, +) / Double(d.count)
    return (d.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d.count)).squareRoot()
  }

  /// The findings of one run's epochs (overfit, not-converged, unstable; diverged from its status).
  public static func run(_ epochs: [EpochRecord], task: LearningTask, status: RunStatus, setting: String? = nil) -> [Finding] {
    var out: [Finding] = []
    if case .diverged(let e, let reason) = status {
      out.append(Finding(kind: "diverged", setting: setting, evidence: "stopped at epoch \(e): \(reason)"))
      return out
    }
    let watchedSet: MetricSet = epochs.contains { $0.validation?.loss != nil } ? .val : .test
    let score: Metric = task == .classification ? .acc : .r2
    let watched = epochs.compactMap { r -> (Int, Double)? in
      guard let v = r.value(watchedSet, .loss), v.isFinite else { return nil }
      return (r.epoch, v)
    }
    let train = epochs.compactMap { r -> (Int, Double)? in
      guard let v = r.train.loss, v.isFinite else { return nil }
      return (r.epoch, v)
    }
    let setName = watchedSet == .val ? "validation" : "test"
    // Overfitting: the watched loss bottoms out and rises again while the training loss keeps falling, each by more
    // than twice its jitter since the minimum; a rise of 5% within the noise is said to be noise.
    if let minimum = watched.min(by: { $0.1 < $1.1 }), let last = watched.last, last.0 >= minimum.0 + 2,
       last.1 > minimum.1 * (1 + overfitRise), let trainAtMin = train.first(where: { $0.0 == minimum.0 })?.1,
       let trainLast = train.last?.1 {
      let rise = last.1 - minimum.1, fall = trainAtMin - trainLast
      let watchedJitter = jitter(watched.filter { $0.0 >= minimum.0 }.map(\.1))
      let trainJitter = jitter(train.filter { $0.0 >= minimum.0 }.map(\.1))
      let jitters = "epoch-to-epoch jitter since epoch \(minimum.0): \(setName) \(n(watchedJitter)), training \(n(trainJitter))"
      if rise > beyondJitter * watchedJitter && fall > beyondJitter * trainJitter {
        var evidence = "the \(setName) loss is lowest at epoch \(minimum.0) (\(n(minimum.1))), then rises by \(n(rise)) to \(n(last.1)) at epoch \(last.0) (more than \(Int(overfitRise * 100))%) while the training loss falls from \(n(trainAtMin)) to \(n(trainLast)), each by more than twice its \(jitters)"
        if let a = epochs.last?.value(.train, score), let b = epochs.last?.value(watchedSet, score) {
          evidence += "; final train/\(setName) \(task == .classification ? "accuracy" : "R^2") \(NumberText.fixed(a)) / \(NumberText.fixed(b)) (gap \(NumberText.fixed(a - b)))"
        }
        out.append(Finding(kind: "overfit", setting: setting, evidence: evidence))
      } else {
        let why = rise <= beyondJitter * watchedJitter
          ? "a rise within twice its jitter"
          : (fall > 0 ? "while the training loss falls by only \(n(fall)), within twice its jitter" : "while the training loss does not fall (\(n(trainAtMin)) to \(n(trainLast)))")
        out.append(Finding(kind: "noisy", setting: setting,
                           evidence: "the \(setName) loss is lowest at epoch \(minimum.0) (\(n(minimum.1))) and \(n(rise)) higher at epoch \(last.0) (more than \(Int(overfitRise * 100))%), \(why) (\(jitters)): the run's own noise, not over-fitting; a lower learning rate or a larger batch would steady it"))
      }
    }
    // Not converged: the training loss still falling steeply over the last quarter of the epochs.
    if train.count >= 4, status == .finished {
      let k = max(2, train.count / 4), (a, b) = (train[train.count - 1 - k], train[train.count - 1])
      let perEpoch = a.1 > 0 ? (1 - pow(b.1 / a.1, 1 / Double(b.0 - a.0))) : 0
      if perEpoch > stillFalling {
        out.append(Finding(kind: "not-converged", setting: setting,
                           evidence: "the training loss fell from \(n(a.1)) at epoch \(a.0) to \(n(b.1)) at epoch \(b.0), \(String(format: "%.1f", 100 * perEpoch))% an epoch (more than \(Int(stillFalling * 100))%): more epochs would lower it"))
      }
    }
    // Unstable: the watched score swinging up and down over the second half.
    let scores = epochs.compactMap { $0.value(watchedSet, score) }.filter(\.isFinite)
    if scores.count >= 6 {
      let half = Array(scores.suffix(scores.count / 2))
      let steps = zip(half, half.dropFirst()).map { $1 - $0 }
      let meanMove = steps.map(abs).reduce(0, +) / Double(steps.count)
      let reversals = zip(steps, steps.dropFirst()).filter { $0 * $1 < 0 }.count
      if meanMove > swing && reversals >= 2 {
        out.append(Finding(kind: "unstable", setting: setting,
                           evidence: "the \(setName) \(task == .classification ? "accuracy" : "R^2") moves \(NumberText.fixed(meanMove)) an epoch on average over the last \(half.count) epochs (more than \(swing)), changing direction \(reversals) times: a lower learning rate would steady it"))
      }
    }
    return out
  }

  /// The findings of a sweep: the best setting (and whether it ties), underfitting against it, and each setting's own.
  public static func sweep(_ s: SweepSummary) -> [Finding] {
    var out: [Finding] = []
    let key = "best_val_\(s.selectionKey)"
    if let b = s.best {
      let r = s.rows[b]
      var evidence = "chosen by \(s.selectionText): \(NumberText.fixed(r.value(key)))"
      if let sd = r.spread(key) { evidence += " ± \(NumberText.fixed(sd))" }
      if let e = r.bestValidationEpoch { evidence += " at epoch \(e)" }
      if let t = r.value("final_test_\(s.scoreKey)") { evidence += "; its test \(s.scoreKey == "acc" ? "accuracy" : "R^2") \(NumberText.fixed(t))" }
      if let u = s.runnerUp {
        if u.margin == 0 {
          evidence += "; equal to \(s.rows[u.index].name): a tie, named best as the first in the grid's order"
        } else {
          evidence += "; \(NumberText.fixed(u.margin)) ahead of \(s.rows[u.index].name)"
          if u.tie { evidence += ", within one standard deviation over the seeds: a tie" }
        }
      }
      out.append(Finding(kind: (s.runnerUp?.tie ?? false) ? "tie" : "best", setting: r.name, evidence: evidence))
      // Underfitting: far from the best setting's training fit.
      for row in s.rows where row.eligible && row.name != r.name {
        if s.task == .classification, let a = row.value("final_train_acc"), let best = r.value("final_train_acc"), best - a > underfitGap {
          out.append(Finding(kind: "underfit", setting: row.name,
                             evidence: "final train accuracy \(NumberText.fixed(a)), \(NumberText.fixed(best - a)) below the best setting's \(NumberText.fixed(best)) (more than \(underfitGap))"))
        } else if s.task == .regression, let a = row.value("final_train_loss"), let best = r.value("final_train_loss"), a > 2 * best {
          out.append(Finding(kind: "underfit", setting: row.name,
                             evidence: "final train loss \(n(a)), more than twice the best setting's \(n(best))"))
        }
      }
    } else {
      out.append(Finding(kind: "best", evidence: "no setting trained to a result: every one diverged, was pruned or was interrupted"))
    }
    for row in s.rows where !row.continued {
      for trial in row.runs {
        out += Findings.run(trial.outcome.epochs, task: s.task, status: trial.outcome.status,
                            setting: s.plan.seeds.count > 1 ? "\(row.name) seed \(trial.outcome.trial.seed)" : row.name)
      }
    }
    return out
  }
}
