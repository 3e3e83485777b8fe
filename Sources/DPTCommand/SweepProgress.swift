import ArgumentParser
import Collectives
import Datasets
import Foundation
import Reports
import Training
import _Support

/// Rank 0's view while a sweep runs: the files, and a line per finished setting.
final class SweepProgress: SweepObserver {
  let writer: SweepWriter?
  let console: Console
  let total: Int
  let task: LearningTask
  var done = 0
  /// The outcomes so far, in setting order.
  var finished: [TrialOutcome] = []
  /// Writes the summary of what finished so far (a failure to write is a warning: the sweep goes on).
  let saveSummary: ([TrialOutcome]) throws -> Void

  init(writer: SweepWriter?, console: Console, total: Int, task: LearningTask, saveSummary: @escaping ([TrialOutcome]) throws -> Void) {
    self.writer = writer
    self.console = console
    self.total = total
    self.task = task
    self.saveSummary = saveSummary
  }

  func trialStarted(_ setting: SweepSetting, group: Int) { writer?.trialStarted(setting, group: group) }
  func epochFinished(_ setting: SweepSetting, metrics: JSON) { writer?.epochFinished(setting, metrics: metrics) }

  func trialFinished(_ outcome: TrialOutcome) {
    writer?.trialFinished(outcome)
    done += 1
    let key = task == .classification ? "val_acc" : "val_loss"
    let last = NumberText.fixed(outcome.epochs.last?[key]?.double)
    let status = switch outcome.status {
    case .finished: "finished"
    case .diverged: "DIVERGED (\(outcome.message))"
    case .interrupted: "interrupted (\(outcome.message))"
    }
    console.say("[\(done)/\(total)] \(outcome.setting.name) on group \(outcome.group): \(status), \(key) \(last), \(String(format: "%.1f", outcome.seconds)) s")
    finished.append(outcome)
    finished.sort { $0.setting.index < $1.setting.index }
    do { try saveSummary(finished) } catch { console.say("warning: \(error)") }
  }
}
