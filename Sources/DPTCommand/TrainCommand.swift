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
      """)

  @OptionGroup var options: TrainingOptions

  @Option(help: ArgumentHelp("Write config.json, metrics.jsonl, metrics.csv, accuracy.svg, loss.svg and report.html into this folder.", valueName: "dir"))
  var logDir: String?

  @Flag(help: "With --log-dir, also write TensorBoard event files (DIR/tensorboard).")
  var tensorboard = false

  @Flag(help: "Print the final metrics as one JSON object on stdout (the table goes to stderr).")
  var json = false

  @Flag(help: "After each epoch, print where rank 0's training time went (data, forward, loss, backward, allreduce, optimizer).")
  var profile = false

  @Option(parsing: .unconditional, help: ArgumentHelp("Feature rows for the closed-form comparison of a linear model, e.g. \"6,4;10,5;14,8\" (corn's default is the course's rows).", valueName: "rows"))
  var predict: String?

  @Option(parsing: .unconditional, help: ArgumentHelp("Print every N-th epoch's row (and the last); the log files keep every epoch.", valueName: "n"))
  var printEvery: Int = 1

  @Option(help: ArgumentHelp("Write a checkpoint (DIR/checkpoint.dptc: parameters, optimizer state, position, config) after every epoch, atomically.", valueName: "dir"))
  var checkpointDir: String?

  @Option(parsing: .unconditional, help: ArgumentHelp("With --checkpoint-dir: also every N optimizer steps.", valueName: "steps"))
  var checkpointEvery: Int?

  @Option(help: ArgumentHelp("Continue from the checkpoint in this folder (or file): same model and data; --epochs is the total.", valueName: "dir"))
  var resume: String?

  @Option(help: ArgumentHelp(
    "Start from these weights (a .safetensors file in `dpt export`'s layout: PyTorch's state_dict names and shapes).",
    discussion: "e.g. from PyTorch: safetensors.torch.save_file(model.state_dict(), \"init.safetensors\") for a torch.nn.Sequential of the same layers. Every parameter must be there, with its shape.", valueName: "file.safetensors"))
  var `init`: String?

  @Flag(help: "Replace the results of another run in --log-dir (without it, a --log-dir that holds a run is an error, unless --resume continues it), and a --trace or --timeline file that is not an earlier one.")
  var overwrite = false

  @Option(help: ArgumentHelp(
    "Write the first steps layer by layer to this file (JSON lines): each layer's input, output, dL/d output, weights and their gradients, then the loss.",
    discussion: "For checking a hand computation: values in PyTorch's layout for the rows of the global batch in order, gathered from every rank. `dpt trace FILE` prints it as tables.", valueName: "file.jsonl"))
  var trace: String?

  @Option(help: ArgumentHelp(
    "Write a timeline of every rank to this file (Chrome's trace format: open it in Perfetto or chrome://tracing).",
    discussion: "One process per rank, named by its host; spans for data, forward, loss, backward, exchange, optimizer, evaluation and checkpoints, gathered to rank 0 at the end of the run.", valueName: "file.json"))
  var timeline: String?

  @Option(parsing: .unconditional, help: ArgumentHelp("With --trace: how many steps (default 1).", valueName: "n"))
  var traceSteps: Int = 1

  @Option(parsing: .unconditional, help: ArgumentHelp("With --trace: at most this many values per tensor (a longer one keeps its shape, norm and first values).", valueName: "k"))
  var traceLimit: Int?

  func validate() throws {
    try options.requireSingleValues()
    if printEvery < 1 { throw ValidationError("--print-every must be at least 1 (got \(printEvery))") }
    if tensorboard && logDir == nil { throw ValidationError("--tensorboard needs --log-dir") }
    if let p = predict { _ = try parsePredictRows(p) }
    if checkpointEvery != nil && checkpointDir == nil { throw ValidationError("--checkpoint-every needs --checkpoint-dir") }
    if let n = checkpointEvery, n < 1 { throw ValidationError("--checkpoint-every must be at least 1 (got \(n))") }
    if `init` != nil && resume != nil { throw ValidationError("--init and --resume both set the weights: drop one of them") }
    if trace == nil && (traceSteps != 1 || traceLimit != nil) { throw ValidationError("--trace-steps and --trace-limit need --trace") }
    if traceSteps < 1 { throw ValidationError("--trace-steps must be at least 1 (got \(traceSteps))") }
    if let k = traceLimit, k < 1 { throw ValidationError("--trace-limit must be at least 1 (got \(k))") }
    if trace != nil && options.accumulate > 1 {
      throw ValidationError("--trace records one forward and backward pass a step: drop --accumulate (or --trace)")
    }
  }

  func run() throws {
    let config = try options.makeConfig()
    try Launch.withWorld { comm in try train(config, comm) }
  }

  /// The files --log-dir gets.
  var logFiles: [String] { RunLog.files + ReportFiles.runFiles + (tensorboard ? ["tensorboard/"] : []) }

  func train(_ config: TrainingConfig, _ comm: any Communicator) throws {
    var console = Console(isRoot: comm.isRoot, jsonOutput: json)
    // Deterministic results must not depend on how OpenBLAS splits work between threads either.
    if config.deterministic { BLASThreads.set(1) }
    // Everything that can fail on bad input happens inside `agree` (whose bodies call no collective): if it fails on
    // any rank, every rank stops with the same message, before any file is written. A checkpoint is read by rank 0
    // (it wrote it; other hosts may not have the file) and broadcast.
    var checkpointBytes: [UInt8] = []
    if let resume {
      checkpointBytes = try comm.agree(describing: ErrorMessages.line) { comm.isRoot ? try InputFiles.checkpointBytes(resume, flag: "--resume") : [] }
      checkpointBytes = try comm.broadcast(bytes: checkpointBytes, root: 0)
    }
    let resumed = try comm.agree(describing: ErrorMessages.line) { try resume.map { try Checkpoint(decoding: checkpointBytes, path: Checkpoint.path($0)) } }
    // The output folders are claimed (locked, checked against what they hold and against every input) by rank 0,
    // which writes them all, before anything is loaded or trained; nothing in them changes until the first epoch ends.
    let runID = resumed?.runID ?? OutputFolder.newRunID()
    let claim: OutputFolder.Claim = overwrite ? .replace : resumed != nil ? .resume(runID: runID) : .fresh
    let (logFolder, checkpointFolder) = try comm.agree(describing: ErrorMessages.line) { () throws -> (OutputFolder?, OutputFolder?) in
      guard comm.isRoot else { return (nil, nil) }
      let logs = try logDir.map {
        try OutputPaths.folder($0, flag: "--log-dir", command: "dpt train", claim: claim, runID: runID, willWrite: logFiles)
      }
      var checkpoints: OutputFolder?
      if let checkpointDir {
        if let logs, Files.resolved(checkpointDir) == Files.resolved(logs.path) {
          checkpoints = logs
        } else {
          checkpoints = try OutputPaths.folder(checkpointDir, flag: "--checkpoint-dir", command: "dpt train", claim: claim,
                                               runID: runID, willWrite: [Checkpoint.fileName])
        }
      }
      var outputs: [(flag: String, files: [String])] = []
      if let logs { outputs.append(("--log-dir", OutputPaths.outputFiles(logs, writes: logFiles))) }
      if let checkpoints { outputs.append(("--checkpoint-dir", OutputPaths.outputFiles(checkpoints, writes: [Checkpoint.fileName]))) }
      let inputs = (try options.data.source).files.map { OutputPaths.Input(flag: "--dataset", path: $0) }
        + [`init`.map { OutputPaths.Input(flag: "--init", path: $0) }, resume.map { OutputPaths.Input(flag: "--resume", path: Checkpoint.path($0)) }]
          .compactMap { $0 }
      // Single files: never inside the run's own folders (their manifests own what they hold), never one another.
      let folders = [logs?.path, checkpoints?.path].compactMap { $0 }
      if let trace {
        try OutputPaths.file(trace, flag: "--trace", kind: .trace, overwrite: overwrite, folders: folders, inputs: inputs)
        outputs.append(("--trace", [trace]))
      }
      if let timeline {
        try OutputPaths.file(timeline, flag: "--timeline", kind: .timeline, overwrite: overwrite, folders: folders, inputs: inputs)
        outputs.append(("--timeline", [timeline]))
      }
      try OutputPaths.distinct([trace.map { ("--trace", $0) }, timeline.map { ("--timeline", $0) }].compactMap { $0 })
      try OutputPaths.checkInputs(inputs, outputs: outputs, allowed: resume.map { (Checkpoint.path($0), "--checkpoint-dir") })
      return (logs, checkpoints)
    }
    defer {
      logFolder?.release()
      checkpointFolder?.release()
    }
    // --init's file is read by rank 0, whose parameters every rank receives (synchronizeParameters broadcasts them).
    let initBytes = try comm.agree(describing: ErrorMessages.line) { () throws -> [UInt8] in
      guard comm.isRoot, let path = `init` else { return [] }
      return try InputFiles.safetensors(path, flag: "--init")
    }
    let (trainer, rows, fingerprint) = try comm.agree(describing: ErrorMessages.line) { () throws -> (Trainer<Float>, [[Double]], String?) in
      let data = try options.data.load(validation: options.data.valFraction ?? 0, lenient: `init` != nil)
      let trainer = try Trainer<Float>(config: config, data: data, communicator: comm, synchronize: false)
      let rows = try predictionRows(predict, source: try options.data.source, features: data.train.featureCount)
      if comm.isRoot, let path = `init` {
        let file = try SafeTensorsFile(decoding: initBytes, path: path)
        (trainer.parameters, trainer.buffers) = try SafeTensors.state(for: trainer.network, from: file, path: path)
      }
      // Which file the run trained on, for `dpt eval` to check before it opens a file a checkpoint names.
      let fingerprint = comm.isRoot && (logDir != nil || checkpointDir != nil) ? try options.data.source.fingerprint() : nil
      guard let resumed, let resume else { return (trainer, rows, fingerprint) }
      let path = Checkpoint.path(resume)
      try trainer.restore(resumed, path: path)
      guard resumed.epoch < config.epochs || trainer.batchInEpoch > 0 else {
        throw WeightsProblem.malformed("\(path): the run is already at epoch \(resumed.epoch) of --epochs \(config.epochs): raise --epochs to train further")
      }
      return (trainer, rows, fingerprint)
    }
    trainer.runID = runID
    let checkpoint = resumed
    // Restored replicas are equal already (the same bytes); the exchange sets itself up either way.
    try trainer.synchronizeParameters(broadcast: checkpoint == nil)
    if timeline != nil {
      // Every rank starts its clock right after the same collective: the ranks' spans line up.
      _ = try comm.allReduce(Int64(0), .sum)
      trainer.timeline = Timeline()
    }
    /// The run's settings as config.json and checkpoints record them.
    func configJSON() -> JSON {
      guard case .object(var o) = trainer.recordedConfig else { return .null }
      o.append(("run_id", JSON(runID)))
      if let fingerprint { o.append(("data_fingerprint", JSON(fingerprint))) }
      return .object(o)
    }
    /// A checkpoint of this step, taken on every rank (a sharded optimizer's state is gathered), written by rank 0.
    func saveCheckpoint() throws {
      var c = try trainer.checkpoint()
      c.config = configJSON()
      if let checkpointFolder { try c.write(to: checkpointFolder) }
    }
    let (log, board) = try comm.agree(describing: ErrorMessages.line) { () throws -> (RunLog?, TensorBoardWriter?) in
      guard let logFolder else { return (nil, nil) }
      // A resume keeps the epochs its checkpoint completed when the log is that run's own.
      let keep = checkpoint != nil && logFolder.previousRunID == runID ? checkpoint!.epoch : nil
      let log = try RunLog(folder: logFolder, config: configJSON(), keepEpochs: keep)
      let board = try tensorboard ? TensorBoardWriter(folder: logFolder.subfolder("tensorboard")) : nil
      return (log, board)
    }
    if let header = trainer.data.header { console.say(ErrorMessages.text(header)) }
    for w in trainer.data.warnings { console.say("warning: \(w); trained from --init's weights as given") }
    // --trace: the first steps' lines, written whole once they are all there (rank 0).
    var traceLines: [String] = []
    var traceWritten = false
    if trace != nil {
      trainer.trace = StepTrace(steps: traceSteps, limit: traceLimit, write: comm.isRoot ? { traceLines.append($0) } : nil)
    }
    func writeTrace() throws {
      guard let trace, !traceWritten, comm.isRoot, trainer.step >= traceSteps || trainer.epoch >= config.epochs else { return }
      try OutputPaths.write(traceLines.joined(separator: "\n") + "\n", to: trace, flag: "--trace")
      traceWritten = true
    }
    if let note = try options.data.inferenceNote { console.say(note) }
    console.say(RunText.header(trainer, hosts: try RunText.hosts(comm)))
    if let c = checkpoint {
      var note = "resumed from \(Checkpoint.path(resume!)): \(counted(c.epoch, "epoch")) and \(counted(trainer.batchInEpoch, "batch", "batches")) done (step \(c.step))"
      if c.worldSize != comm.size {
        note += config.deterministic
          ? "; written by \(counted(c.worldSize, "rank")), continued on \(comm.size): --deterministic makes the result the same"
          : "; written by \(counted(c.worldSize, "rank")), continued on \(comm.size): the steps are the same but sums are added in another order, so the result differs from an uninterrupted \(c.worldSize)-rank run in the last bits (--deterministic avoids that)"
      }
      console.say(note)
    }
    if let every = checkpointEvery {
      trainer.afterStep = { [unowned trainer] in
        if trainer.step % every == 0 { try saveCheckpoint() }
      }
    }
    let table = EpochTable(task: trainer.data.train.task, validation: trainer.data.validation != nil)
    console.say(table.header)
    var history: [EpochMetrics] = []
    var phases = PhaseTimes()  // rank 0's, summed over the epochs
    // A signal stops every rank after the same step; the watchdog bounds every collective of the training loop.
    Signals.install()
    trainer.stopRequested = { Signals.received }
    let disarm = Launch.armWatchdog(trainer.communicator, timeout: options.stallTimeout > 0 ? options.stallTimeout : nil)
    defer { disarm() }
    /// Takes the checkpoint of the step every rank stopped after, and the message that says where to go on from.
    func interrupted(epoch: Int, step: Int) throws -> Interrupted {
      var text = "interrupted (\(Signals.name)) at epoch \(epoch), step \(step)"
      if let dir = checkpointDir {
        try saveCheckpoint()
        text += "; resume with --resume \(dir)"
      } else {
        text += "; nothing was saved (--checkpoint-dir keeps the state to resume from)"
      }
      return Interrupted(status: Signals.exitStatus, description: text)
    }
    func stalled(_ s: CollectiveStall) -> JobStalled {
      JobStalled(stall: s, epoch: trainer.epoch + 1, step: trainer.batchInEpoch + 1, timeout: options.stallTimeout,
                 checkpointDir: checkpointDir)
    }
    /// The charts, findings and report.html of the epochs logged so far, and config.json with the run's status.
    func writeReport(_ log: RunLog, status: RunStatus) throws -> [Finding] {
      let findings = Findings.run(log.rows, task: trainer.data.train.task, status: status)
      try log.finish(status.json, config: configJSON())
      guard !log.rows.isEmpty else { return findings }
      try log.folder.write("findings.json", JSON.array(findings.map(\.json)).serialized(pretty: true) + "\n")
      _ = try ReportFiles.writeRun(folder: log.folder, title: "\(config.model) on \(trainer.data.name)", config: configJSON(),
                                   rows: log.rows, logLoss: false, diverged: status.name == "diverged",
                                   findings: findings.map(\.json))
      return findings
    }
    // Divergence, early stopping and convergence, decided by rank 0 (which has the logged epochs of a resumed run)
    // and told to every rank, so that all stop after the same epoch.
    var monitor = RunMonitor(patience: options.earlyStop, divergeFactor: options.divergeFactor,
                             skipsNonFinite: config.onNonFinite == .skipBatch)
    if let log { monitor.replay(log.rows) }
    let bestFolder = checkpointFolder ?? logFolder
    let keepsBest = options.earlyStop != nil && (logDir != nil || checkpointDir != nil)
    if options.earlyStop != nil {
      let watched = trainer.data.validation != nil ? "validation" : "test"
      console.say("--early-stop \(options.earlyStop!): stops when the \(watched) loss has not improved for \(counted(options.earlyStop!, "epoch"))\(watched == "test" ? " (there is no validation set: --val-fraction holds one out)" : "")" + (!keepsBest ? "; the best epoch's weights are not kept (give --checkpoint-dir or --log-dir)" : "; best.dptc keeps the best epoch's weights"))
    }
    if let v = trainer.data.validation, v.count < 30 {
      console.say("warning: the validation set has \(counted(v.count, "row")): its loss and accuracy rest on very few samples; raise --val-fraction or use more data")
    }
    var status = RunStatus.finished
    for e in (trainer.epoch + 1)...max(config.epochs, trainer.epoch + 1) {
      if trainer.stopAgreed { throw try interrupted(epoch: trainer.epoch, step: trainer.batchesPerEpoch) }
      trainer.resetPhaseTimes()
      let m: EpochMetrics
      do {
        m = try trainer.runEpoch { step, steps in console.progress(epoch: e, step: step, steps: steps) }
      } catch let stop as StopRequested {
        console.clearProgress()
        throw try interrupted(epoch: stop.epoch, step: stop.step)
      } catch let s as CollectiveStall {
        throw stalled(s)
      } catch let n as NonFiniteLoss {
        console.clearProgress()
        if let log { _ = try writeReport(log, status: .diverged(epoch: n.epoch, reason: "\(n)")) }
        throw n
      }
      phases.add(trainer.phaseTimes)
      try writeTrace()
      console.clearProgress()
      if e % printEvery == 0 || e == config.epochs { console.say(table.row(m)) }
      if profile {
        console.say("      " + RunText.phases(trainer.phaseTimes, epochSeconds: m.seconds))
        if comm.size > 1 {
          // Every rank's compute this epoch (all but the exchange, where fast ranks wait for slow ones).
          let t = trainer.phaseTimes
          let mine = t.data + t.forward + t.loss + t.backward + t.optimizer
          let all = try comm.allGather(Array(String(mine).utf8)).map { Double(String(decoding: $0, as: UTF8.self)) ?? .nan }
          console.say("      " + RunText.straggler(compute: all, hosts: Launch.hostNames(comm)))
        }
      }
      try log?.append(m.record)
      try board?.epoch(m.record)
      history.append(m)
      var verdict = JSON.null
      if comm.isRoot {
        let (improved, stop) = monitor.observe(m)
        var stopping = stop
        if stopping == nil, let reason = trainer.converged { stopping = .converged(iteration: trainer.step, reason: reason) }
        verdict = .object([("improved", .bool(improved)), ("stop", stopping?.json ?? .null)])
      }
      verdict = try JSON.parse(bytes: try comm.broadcast(bytes: Array(verdict.serialized().utf8), root: 0))
      if checkpointDir != nil || keepsBest {
        let started = WallClock.now()
        var c = try trainer.checkpoint()  // on every rank: a sharded optimizer's state is gathered
        c.config = configJSON()
        if let checkpointFolder { try c.write(to: checkpointFolder) }
        if verdict["improved"]?.bool == true, options.earlyStop != nil, let bestFolder {
          try bestFolder.write("best.dptc", Data(c.encoded()))
        }
        trainer.timeline?.record("checkpoint", category: "epoch", from: started)
      }
      if let stop = verdict["stop"].flatMap(RunStatus.init(json:)) {
        status = stop
        break
      }
    }
    switch status {
    case .diverged(let epoch, let reason):
      if let log { _ = try writeReport(log, status: status) }
      // The factor is named only where it decided (a loss that grew), not for a loss that stopped being a number.
      let factor = reason.contains("times its first value") ? " (--diverge-factor \(NumberText.compact(options.divergeFactor)))" : ""
      throw CommandError("diverged at epoch \(epoch): \(reason)\(factor); lower --lr\(checkpointDir.map { "; the last checkpoint in \($0) is from before" } ?? "")")
    case .stoppedEarly(let epoch, let best):
      console.say("stopped early after epoch \(epoch): the \(trainer.data.validation != nil ? "validation" : "test") loss was lowest at epoch \(best) and has not improved for \(counted(epoch - best, "epoch"))\(bestFolder.map { "; \(Files.join($0.path, "best.dptc")) keeps epoch \(best)" } ?? "")")
    case .converged(let iteration, let reason):
      console.say("converged at iteration \(iteration): \(reason)")
    default: break
    }
    if trainer.skippedBatches > 0 {
      console.say("skipped \(trainer.skippedBatches) batch\(trainer.skippedBatches == 1 ? "" : "es") whose loss or gradient was not finite (--on-nan skip-batch)")
    }
    var findings: [Finding] = []
    if let log { findings = try writeReport(log, status: status) } else if comm.isRoot {
      findings = Findings.run(history.map(\.record), task: trainer.data.train.task, status: status)
    }
    for f in findings { console.say("\(f.kind): \(f.evidence)") }
    // The timeline: every rank's spans, gathered to rank 0, which writes the trace.
    if let timeline, let mine = trainer.timeline {
      let events = try comm.allGather(Array(JSON.array(mine.events(pid: comm.rank)).serialized().utf8))
      if comm.isRoot {
        let each = try events.map { try JSON.parse(bytes: $0).array ?? [] }
        let trace = Timeline.traceJSON(events: each, hosts: Launch.hostNames(comm))
        try OutputPaths.write(trace.serialized(), to: timeline, flag: "--timeline")
        console.say("wrote \(timeline): \(counted(each.reduce(0) { $0 + $1.count }, "span")) of \(counted(comm.size, "rank")) (open it in Perfetto or chrome://tracing)")
      }
    }
    // Every rank's peak memory, gathered on rank 0 (a collective: every rank takes part).
    let peaks = try comm.allGather(Array(String(ProcessMemory.peakResidentMiB ?? .nan).utf8))
      .map { Double(String(decoding: $0, as: UTF8.self)) ?? .nan }
    // A linear model trained with MSE: the closed-form solution of the same problem beside it.
    let comparison = try ClosedFormComparison.make(trainer, predict: rows)
    if let c = comparison, !json {
      console.say("")
      console.say(RunText.comparisonTitle(c, trainer))
      for line in RunText.linearModel([("closed form", c.closedForm), (config.optimizer.kind.displayName, c.sgd)], fit: c.fit) { console.say(line) }
      console.say("  largest |parameter difference|: \(RunText.number(c.maxParameterDifference).trimmingCharacters(in: .whitespaces))")
      for w in c.fit.warnings { console.say("warning: \(ErrorMessages.text(w))") }
    }
    if json {
      var summary = RunText.summary(trainer, history, peakMemory: peaks, phases: phases)
      if case .object(var o) = summary, case .object(let s) = status.json {
        o += s + [("findings", .array(findings.map(\.json)))]
        summary = .object(o)
      }
      if let c = comparison, case .object(var o) = summary {
        // Nested, so that the closed form's train_rmse, test_r2, ... do not collide with the run's own keys.
        o += [("closed_form", .object(c.closedForm.jsonFields + RunText.fitFields(c.fit) + [("lambda", JSON(c.lambda))])),
              ("sgd", .object(c.sgd.jsonFields)), ("max_abs_parameter_difference", JSON(c.maxParameterDifference))]
        summary = .object(o)
      }
      console.result(summary.serialized())
    }
  }
}
