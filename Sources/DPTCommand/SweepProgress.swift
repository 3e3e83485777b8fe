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

  init(writer: SweepWriter?, console: Console, total: Int, task: LearningTask) {
    self.writer = writer
    self.console = console
    self.total = total
    self.task = task
  }

  func trialStarted(_ setting: SweepSetting, group: Int) { writer?.trialStarted(setting, group: group) }
  func epochFinished(_ setting: SweepSetting, metrics: JSON) { writer?.epochFinished(setting, metrics: metrics) }

  func trialFinished(_ outcome: TrialOutcome) {
    writer?.trialFinished(outcome)
    done += 1
    let key = task == .classification ? "val_acc" : "val_loss"
    let last = NumberText.fixed(outcome.epochs.last?[key]?.double)
    let status = outcome.status == .finished ? "finished" : "DIVERGED (\(outcome.message))"
    console.say("[\(done)/\(total)] \(outcome.setting.name) on group \(outcome.group): \(status), \(key) \(last), \(String(format: "%.1f", outcome.seconds)) s")
  }
}
