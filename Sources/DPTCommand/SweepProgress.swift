import ArgumentParser
import Collectives
import Datasets
import Experiments
import Foundation
import Reports
import _Support
import Training

/// Rank 0's view while a sweep runs: the files, and a line per finished trial.
final class SweepProgress: SweepObserver {
  let writer: SweepWriter?
  let console: Console
  var plan: SweepPlan
  /// How many trials the sweep will run (nil: its search decides as it goes).
  let total: Int?
  let task: LearningTask
  var done: Int
  /// The outcomes so far (those kept from before a resume included), in trial order.
  var finished: [TrialOutcome]
  /// Writes the summary of what finished so far (a failure to write is a warning: the sweep goes on).
  let saveSummary: ([TrialOutcome]) throws -> Void

  init(writer: SweepWriter?, console: Console, plan: SweepPlan, total: Int?, task: LearningTask, kept: [TrialOutcome],
       saveSummary: @escaping ([TrialOutcome]) throws -> Void) {
    self.writer = writer
    self.console = console
    self.plan = plan
    self.total = total
    self.task = task
    self.finished = kept
    self.done = kept.count
    self.saveSummary = saveSummary
  }

  func trialStarted(_ trial: SweepTrial, group: Int, earlier: [EpochRecord]) { writer?.trialStarted(trial, group: group, earlier: earlier) }
  func epochFinished(_ trial: SweepTrial, metrics: EpochRecord) { writer?.epochFinished(trial, metrics: metrics) }
  func checkpoint(_ trial: SweepTrial, bytes: [UInt8], best: Bool) { writer?.checkpoint(trial, bytes: bytes, best: best) }
  func checkpointBytes(of trial: SweepTrial) -> [UInt8]? { writer?.checkpointBytes(of: trial) }
  /// Population-based training's exploits said so far.
  var exploitsSaid = 0

  func planChanged(_ plan: SweepPlan, searcher: any Searcher) {
    self.plan = plan
    writer?.planChanged(plan, searcher: searcher)
    guard let pbt = searcher as? PBTSearch else { return }
    for e in pbt.exploits.dropFirst(exploitsSaid) {
      console.say("exploit after epoch \(e.epoch): member \(e.member) (\(NumberText.fixed(e.memberScore))) takes member \(e.donor)'s weights (\(NumberText.fixed(e.donorScore))): \(e.changes) (its own, the donor's, the new)")
    }
    exploitsSaid = pbt.exploits.count
  }

  func trialFinished(_ outcome: TrialOutcome) {
    writer?.trialFinished(outcome)
    done += 1
    let key = task == .classification ? "val_acc" : "val_loss"
    let last = NumberText.fixed(outcome.epochs.last?.value(.val, task == .classification ? .acc : .loss))
    let name = plan.name(plan.settings[outcome.trial.setting]) + (plan.seeds.count > 1 ? " seed \(outcome.trial.seed)" : "")
    let status = outcome.status == .finished ? "finished" : outcome.status.description
    console.say("[\(done)/\(total.map(String.init) ?? "?")] \(name) on group \(outcome.group): \(status), \(key) \(last), \(String(format: "%.1f", outcome.seconds)) s")
    finished.append(outcome)
    finished.sort { $0.trial.index < $1.trial.index }
    do { try saveSummary(finished) } catch { console.say("warning: \(error)") }
  }
}
