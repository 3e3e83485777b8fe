import Collectives
import DPT
import Experiments
import Foundation
import Reports
import Training
import _Support

/// What `dpt train` prints as its run goes (rank 0): the progress bar, a row of the epoch table every `printEvery`
/// epochs and the last, with --profile where the time went (and, on several ranks, the slowest rank's compute: a
/// collective, so this observer runs on every rank), and at the end why the run stopped and its findings.
final class RunConsole: RunObserver {
  var console: Console
  let table: EpochTable
  let printEvery: Int
  let profile: Bool
  /// Where best.dptc goes under early stopping, for the message that names it.
  let bestFolder: String?
  /// The log folder's findings (which include a resumed run's earlier epochs); without one they come from this run's.
  let log: LogFolderRecorder?
  /// Rank 0's phase times, summed over the epochs.
  private(set) var phases = PhaseTimes()
  private(set) var findings: [Finding] = []

  init(console: Console, trainer: Trainer<Float>, printEvery: Int, profile: Bool, bestFolder: String?, log: LogFolderRecorder?) {
    self.console = console
    self.table = EpochTable(task: trainer.data.train.task, validation: trainer.data.validation != nil)
    self.printEvery = printEvery
    self.profile = profile
    self.bestFolder = bestFolder
    self.log = log
  }

  func runWillStart(_ run: Run) throws { console.say(table.header) }

  /// The epoch so far, for the progress bar: its steps' losses and samples.
  private var running = (epoch: 0, loss: 0.0, steps: 0, samples: 0)

  func stepEnded(_ run: Run) throws {
    let t = run.trainer
    if running.epoch != t.epoch + 1 || t.batchInEpoch <= 1 { running = (t.epoch + 1, 0, 0, 0) }
    if let l = t.lastStepLoss, l.isFinite { (running.loss, running.steps) = (running.loss + l, running.steps + 1) }
    running.samples += t.lastStepSamples
  }

  func progress(_ run: Run, epoch: Int, step: Int, steps: Int) {
    let loss = running.epoch == epoch && running.steps > 0 ? running.loss / Double(running.steps) : nil
    console.progress(epoch: epoch, step: step, steps: steps, loss: loss, samples: running.epoch == epoch ? running.samples : nil)
  }

  func epochEnded(_ run: Run, _ m: EpochMetrics) throws {
    let t = run.trainer.phaseTimes, comm = run.trainer.communicator
    phases.add(t)
    console.clearProgress()
    if m.epoch % printEvery == 0 || m.epoch == run.trainer.config.epochs { console.say(table.row(m)) }
    guard profile else { return }
    console.say("      " + RunText.phases(t, epochSeconds: m.seconds))
    guard comm.size > 1 else { return }
    // Every rank's compute this epoch (all but the exchange, where fast ranks wait for slow ones).
    let mine = t.data + t.forward + t.loss + t.backward + t.optimizer
    let all = try comm.allGather(Array(String(mine).utf8)).map { Double(String(decoding: $0, as: UTF8.self)) ?? .nan }
    console.say("      " + RunText.straggler(compute: all, hosts: World.hostNames(comm)))
  }

  func runEnded(_ run: Run, _ outcome: RunOutcome) throws {
    console.clearProgress()
    let trainer = run.trainer
    switch outcome.status {
    case .diverged, .interrupted: return  // said by the error the command throws
    case .stoppedEarly(let epoch, let best):
      let watched = trainer.data.validation != nil ? "validation" : "test"
      console.say("stopped early after epoch \(epoch): the \(watched) loss was lowest at epoch \(best) and has not improved for \(counted(epoch - best, "epoch"))\(bestFolder.map { "; \(Files.join($0, CheckpointFiles.bestName)) keeps epoch \(best)" } ?? "")")
    case .converged(let iteration, let reason):
      console.say("converged at iteration \(iteration): \(reason)")
    default: break
    }
    if trainer.skippedBatches > 0 {
      console.say("skipped \(trainer.skippedBatches) batch\(trainer.skippedBatches == 1 ? "" : "es") whose loss or gradient was not finite (--on-nan skip-batch)")
    }
    findings = log?.findings ?? (trainer.communicator.isRoot
      ? Findings.run(outcome.history.map(\.record), task: trainer.data.train.task, status: outcome.status) : [])
    for f in findings { console.say("\(f.kind): \(f.evidence)") }
  }
}

/// --trace: the first steps' lines, written whole once they are all there (rank 0).
final class TraceFile: RunObserver {
  let path: String
  let steps: Int
  private var lines: [String] = []
  private var written = false

  init(path: String, steps: Int, limit: Int?, trainer: Trainer<Float>) {
    self.path = path
    self.steps = steps
    trainer.trace = StepTrace(steps: steps, limit: limit, write: trainer.communicator.isRoot ? { [unowned self] in lines.append($0) } : nil)
  }

  func epochEnded(_ run: Run, _ metrics: EpochMetrics) throws {
    let t = run.trainer
    guard !written, t.communicator.isRoot, t.step >= steps || t.epoch >= t.config.epochs else { return }
    try OutputPaths.write(lines.joined(separator: "\n") + "\n", to: path, flag: "--trace")
    written = true
  }
}

/// --timeline: every rank records its spans from the same instant; at the end rank 0 gathers them and writes Chrome's
/// trace format.
final class TimelineFile: RunObserver {
  let path: String
  let console: Console

  init(path: String, console: Console) {
    self.path = path
    self.console = console
  }

  func runWillStart(_ run: Run) throws {
    // Every rank starts its clock right after the same collective: the ranks' spans line up.
    _ = try run.trainer.communicator.allReduce(Int64(0), .sum)
    run.trainer.timeline = Timeline()
  }

  func runEnded(_ run: Run, _ outcome: RunOutcome) throws {
    guard outcome.status != .interrupted, let mine = run.trainer.timeline else { return }
    let comm = run.trainer.communicator
    let events = try comm.allGather(Array(JSON.array(mine.events(pid: comm.rank)).serialized().utf8))
    guard comm.isRoot else { return }
    let each = try events.map { try JSON.parse(bytes: $0).array ?? [] }
    try OutputPaths.write(Timeline.traceJSON(events: each, hosts: World.hostNames(comm)).serialized(), to: path, flag: "--timeline")
    console.say("wrote \(path): \(counted(each.reduce(0) { $0 + $1.count }, "span")) of \(counted(comm.size, "rank")) (open it in Perfetto or chrome://tracing)")
  }
}
