import ArgumentParser
import Collectives
import Datasets
import Experiments
import FileFormats
import Foundation
import LeastSquares
import Reports
import _Support
import TensorCore
import Training

struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Train a model data-parallel; rank 0 prints one row per epoch.",
    discussion: """
      Examples:
        dpt train --dataset mnist --epochs 5
        mpirun -np 2 dpt train --dataset fashion-mnist --hidden 256 \\
          --batch-size 128 --log-dir runs/fashion
        dpt train --dataset csv:table.csv --target class --init init.safetensors
        dpt train --dataset corn --json
      """.reflowed)

  @OptionGroup var options: TrainingOptions

  @OptionGroup var outputs: TrainOutputs

  func validate() throws {
    try options.requireSingleValues()
    if outputs.trace != nil && options.accumulate > 1 {
      throw ValidationError("--trace records one forward and backward pass a step: drop --accumulate (or --trace)")
    }
  }

  func run() throws {
    let config = try options.makeConfig()
    try Launch.withWorld { comm in try train(config, comm) }
  }

  /// Everything that can fail on bad input happens inside `agree` (whose bodies call no collective): if it fails on
  /// any rank, every rank stops with the same message, before any file is written.
  func train(_ config: TrainingConfig, _ comm: any Communicator) throws {
    let console = Console(isRoot: comm.isRoot, jsonOutput: outputs.json)
    // Deterministic results must not depend on how OpenBLAS splits work between threads either.
    if config.deterministic { BLASThreads.set(1) }
    let resumed = try outputs.resumed(comm)
    let runID = resumed?.runID ?? OutputFolder.newRunID()
    let (logFolder, checkpointFolder) = try outputs.claim(comm, runID: runID, resuming: resumed != nil, data: options.data)
    defer {
      logFolder?.release()
      checkpointFolder?.release()
    }
    let initBytes = try outputs.initialWeights(comm)
    let (trainer, rows, recorded) = try comm.agree(describing: ErrorMessages.line) { () throws -> (Trainer<Float>, [[Double]], JSON) in
      let data = try options.data.load(validation: options.data.valFraction ?? 0, lenient: outputs.`init` != nil)
      let trainer = try Trainer<Float>(config: config, data: data, communicator: comm, synchronize: false)
      let rows = try predictionRows(outputs.predict, source: try options.data.source, features: data.train.featureCount)
      if comm.isRoot, let path = outputs.`init` {
        let file = try SafeTensorsFile(decoding: initBytes, path: path)
        (trainer.parameters, trainer.buffers) = try SafeTensors.state(for: trainer.network, from: file, path: path)
      }
      // The settings config.json and checkpoints record, with the file trained on (`dpt eval` checks it).
      let fingerprint = comm.isRoot && (logFolder != nil || checkpointFolder != nil) ? try options.data.source.fingerprint() : nil
      let recorded = trainer.recordedConfig.appending([("run_id", JSON(runID))] + (fingerprint.map { [("data_fingerprint", JSON($0))] } ?? []))
      if let resumed, let resume = outputs.resume { try trainer.resume(from: resumed, path: Checkpoint.path(resume)) }
      return (trainer, rows, recorded)
    }
    trainer.runID = runID
    // Restored replicas are equal already (the same bytes); the exchange sets itself up either way.
    try trainer.synchronizeParameters(broadcast: resumed == nil)
    // The folders are rank 0's; the policy is every rank's, from the flags.
    let earlyStop = options.earlyStop, bestFolder = checkpointFolder ?? logFolder, keeps = outputs.checkpointDir != nil
    let run = Run(trainer: trainer, checkpoints: CheckpointPolicy(everyEpoch: keeps, everySteps: outputs.checkpointEvery,
                                                                 best: keeps || outputs.logDir != nil, onInterrupt: keeps),
                  patience: earlyStop, divergeFactor: options.divergeFactor, recordedConfig: recorded)
    // Every rank measures the gradient norm at the logged steps: it may be a collective.
    let every = outputs.logDir == nil ? 0 : outputs.logEvery ?? StepLog.defaultEvery(batchesPerEpoch: trainer.batchesPerEpoch)
    if every > 0 { trainer.gradientNormEvery = every }
    let logs = try comm.agree(describing: ErrorMessages.line) { () throws -> LogFolderRecorder? in
      guard let logFolder else { return nil }
      // A resume keeps the epochs its checkpoint completed when the log is that run's own.
      let keep = resumed != nil && logFolder.previousRunID == runID ? resumed!.epoch : nil
      let log = try RunLog(folder: logFolder, config: recorded, keepEpochs: keep)
      run.earlier = log.rows
      let board = try outputs.tensorboard ? TensorBoardWriter(folder: logFolder.subfolder("tensorboard")) : nil
      let steps = every > 0 ? StepLog(folder: logFolder, board: board, every: every, keepSteps: keep.map { _ in trainer.step }) : nil
      return LogFolderRecorder(log: log, board: board, title: "\(config.model) on \(trainer.data.name)", config: recorded, steps: steps)
    }
    for line in try RunText.preamble(trainer, options: options, resumed: resumed.map { ($0, outputs.resume!) }, bestKept: run.checkpoints.best) {
      console.say(line)
    }
    let shown = RunConsole(console: console, trainer: trainer, printEvery: outputs.printEvery, profile: outputs.profile,
                           bestFolder: bestFolder?.path, log: logs)
    // The log ends before the console, which prints its findings.
    let given: [(any RunObserver)?] = [logs, CheckpointFiles(folder: checkpointFolder, bestFolder: earlyStop != nil ? bestFolder : nil), shown]
    var observers = given.compactMap { $0 }
    if let path = outputs.trace { observers.append(TraceFile(path: path, steps: outputs.traceSteps, limit: outputs.traceLimit, trainer: trainer)) }
    if let path = outputs.timeline { observers.append(TimelineFile(path: path, console: console)) }
    if outputs.histograms { observers.append(Histograms(board: logs?.board)) }  // on every rank: the gradient is gathered
    // A signal stops every rank after the same step; the watchdog bounds every collective of the training loop.
    Signals.install()
    trainer.stopRequested = { Signals.received }
    let disarm = Launch.armWatchdog(trainer.communicator, timeout: options.stallTimeout > 0 ? options.stallTimeout : nil)
    defer { disarm() }
    let outcome: RunOutcome
    do { outcome = try run.execute(observers: observers) } catch let s as CollectiveStall {
      throw JobStalled(stall: s, epoch: trainer.epoch + 1, step: trainer.batchInEpoch + 1, timeout: options.stallTimeout,
                       checkpointDir: outputs.checkpointDir)
    }
    switch outcome.status {
    case .interrupted:
      let (epoch, step) = outcome.stoppedAt ?? (trainer.epoch, trainer.batchInEpoch)
      throw Interrupted(status: Signals.exitStatus, description: "interrupted (\(Signals.name)) at epoch \(epoch), step \(step); "
        + (outputs.checkpointDir.map { "resume with --resume \($0)" } ?? "nothing was saved (--checkpoint-dir keeps the state to resume from)"))
    case .diverged(let epoch, let reason):
      if let n = outcome.nonFinite { throw n }
      // The factor is named only where it decided (a loss that grew), not for a loss that stopped being a number.
      let factor = reason.contains("times its first value") ? " (--diverge-factor \(NumberText.compact(options.divergeFactor)))" : ""
      throw CommandError("diverged at epoch \(epoch): \(reason)\(factor); lower --lr\(outputs.checkpointDir.map { "; the last checkpoint in \($0) is from before" } ?? "")")
    default: break
    }
    // Every rank's peak memory, gathered on rank 0 (a collective: every rank takes part).
    let peaks = try comm.allGather(Array(String(ProcessMemory.peakResidentMiB ?? .nan).utf8))
      .map { Double(String(decoding: $0, as: UTF8.self)) ?? .nan }
    // A linear model trained with MSE: the closed-form solution of the same problem beside it.
    let comparison = try ClosedFormComparison.make(trainer, predict: rows)
    if let c = comparison, !outputs.json { for line in RunText.comparison(c, trainer) { console.say(line) } }
    if outputs.json {
      console.result(RunText.summary(trainer, outcome, findings: shown.findings, peakMemory: peaks, phases: shown.phases, comparison: comparison).serialized())
    }
  }
}
