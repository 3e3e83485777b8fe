import ArgumentParser
import Collectives
import Datasets
import Foundation
import Reports
import Training
import _Support

struct SweepCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sweep",
    abstract: "Train one model per setting of a grid, groups of ranks at once, and report train vs test curves.",
    discussion: """
      The grid is the product of the listed values: --weight-decay first, then --lr, --momentum, --batch-size (each
      takes a comma-separated list; every other option is the same for all settings). The world is split into groups
      of --ranks-per-trial ranks; each group trains one setting data-parallel, the groups at once; a group that
      finishes takes the next setting. A validation split (--val-fraction, held out of the training rows) chooses
      the best setting; the test set is reported, never used to choose. A setting whose loss becomes NaN or
      infinite is marked diverged and the sweep goes on.

      DIR gets summary.json, summary.csv, accuracy.svg and loss.svg (every setting), report.html, and per setting a
      folder with config.json, metrics.jsonl, metrics.csv and its own charts (and TensorBoard runs with --tensorboard).

        mpirun -np 2 dpt sweep --dataset mnist \\
          --weight-decay 5e-2,5e-4,5e-6 --epochs 20 --log-dir runs/wd
        mpirun -np 4 dpt sweep --dataset fashion-mnist --ranks-per-trial 2 \\
          --weight-decay 1e-3,1e-4 --lr 0.1,0.01 --log-dir runs/grid
      """)

  @OptionGroup var options: TrainingOptions

  @Option(help: ArgumentHelp("Ranks that train each setting together (must divide the number of ranks).", valueName: "n"))
  var ranksPerTrial: Int = 1

  @Option(help: ArgumentHelp("The folder for the results (required).", valueName: "dir"))
  var logDir: String

  @Flag(help: "Also write TensorBoard event files (DIR/tensorboard/<setting>).")
  var tensorboard = false

  @Flag(help: "Replace another sweep's results in --log-dir (without it, a --log-dir that holds one is an error).")
  var overwrite = false

  @Option(help: "The loss axis of the charts: log | linear.")
  var lossScale: String = "log"

  @Flag(help: "Print summary.json on stdout (the table goes to stderr).")
  var json = false

  func validate() throws {
    if ranksPerTrial < 1 { throw ValidationError("--ranks-per-trial must be at least 1 (got \(ranksPerTrial))") }
    if !["log", "linear"].contains(lossScale) { throw ValidationError("--loss-scale '\(lossScale)': use log or linear") }
    if let f = options.data.valFraction, f == 0 {
      throw ValidationError("--val-fraction must be > 0 for a sweep: the validation set chooses the best setting")
    }
  }

  func run() throws {
    let base = try options.makeConfig()
    let settings = SweepSetting.grid(
      weightDecays: try options.weightDecayValues ?? [base.optimizer.weightDecay],
      learningRates: try options.lrValues ?? [base.optimizer.learningRate],
      momenta: try options.momentumValues ?? [base.optimizer.momentum],
      batchSizes: try options.batchSizeValues ?? [base.batchSize])
    if settings.contains(where: { $0.momentum == 0 }) && base.optimizer.nesterov {
      throw ValidationError("--nesterov needs --momentum > 0 in every setting")
    }
    try Launch.withWorld { comm in try sweep(base, settings, comm) }
  }

  func sweep(_ base: TrainingConfig, _ settings: [SweepSetting], _ world: any Communicator) throws {
    let console = Console(isRoot: world.isRoot, jsonOutput: json)
    let started = WallClock.now()
    // The folder is claimed (locked, checked) before any setting trains: another sweep's folders are never mixed
    // into this one's, and no input is among the files it would write or replace.
    let willWrite = ReportFiles.sweepFiles + settings.map { $0.slug + "/" } + (tensorboard ? ["tensorboard/"] : [])
    let folder = try world.agree { () throws -> OutputFolder? in
      guard world.isRoot else { return nil }
      let f = try OutputPaths.folder(logDir, flag: "--log-dir", command: "dpt sweep", claim: overwrite ? .replace : .fresh,
                                     willWrite: willWrite)
      let inputs = (try options.data.source).files.map { OutputPaths.Input(flag: "--dataset", path: $0) }
      try OutputPaths.checkInputs(inputs, outputs: [("--log-dir", OutputPaths.outputFiles(f, writes: ReportFiles.sweepFiles))])
      return f
    }
    defer { folder?.release() }
    let (sweep, writer) = try world.agree { () throws -> (Sweep, SweepWriter?) in
      let data = try options.data.load(validation: options.data.valFraction ?? 0.1)
      let sweep = try Sweep(base: base, settings: settings, ranksPerTrial: ranksPerTrial, data: data, world: world)
      // Every setting's configuration is checked against the data before any group starts.
      for s in settings { _ = try Trainer<Float>(config: s.apply(to: base), data: data, communicator: LocalCommunicator()) }
      let writer = folder.map { SweepWriter(folder: $0, base: base, ranksPerTrial: ranksPerTrial, tensorboard: tensorboard) }
      return (sweep, writer)
    }
    // A signal stops the running settings after the same step (their ranks agree), and the sweep ends with what
    // finished; the stall timeout bounds every wait, the collectives' and the coordinator's.
    Signals.install()
    sweep.stopRequested = { Signals.received }
    sweep.stallTimeout = options.stallTimeout > 0 ? options.stallTimeout : nil
    Watchdog.timeout = sweep.stallTimeout
    defer { Watchdog.timeout = nil }
    let d = sweep.data
    if let note = try options.data.inferenceNote { console.say(note) }
    console.say("sweep: \(counted(settings.count, "setting")) x \(counted(base.epochs, "epoch")) of \(base.model) on \(d.name) (\(d.train.count) train / \(d.validation?.count ?? 0) validation / \(d.test.count) test); \(counted(sweep.groups, "group")) of \(counted(ranksPerTrial, "rank"))")
    /// What summary.json says about the sweep as a whole.
    func about(seconds: Double, sweepSeconds: Double) -> [(String, JSON)] {
      [
      ("title", JSON("dpt sweep: \(base.model) on \(d.name)")),
      ("about", JSON("\(counted(settings.count, "setting")), \(counted(base.epochs, "epoch")) each, \(counted(sweep.groups, "group")) of \(counted(ranksPerTrial, "rank")); \(d.train.count) train / \(d.validation?.count ?? 0) validation / \(d.test.count) test rows; \(base.optimizer.name), batch \(base.batchSize), seed \(base.seed)")),
      ("dataset", JSON(d.name)), ("model", JSON(base.model.description)), ("epochs", JSON(base.epochs)),
      ("world_size", JSON(world.size)), ("ranks_per_trial", JSON(ranksPerTrial)), ("groups", JSON(sweep.groups)),
      ("seconds", JSON(seconds)), ("sweep_seconds", JSON(sweepSeconds)),
      ]
    }
    let progress = SweepProgress(writer: writer, console: console, total: settings.count, task: d.train.task) { done in
      // summary.json after every finished setting: a sweep killed later keeps what it finished.
      try writer?.writeSummary(SweepSummary(outcomes: done, task: d.train.task),
                               about: about(seconds: WallClock.now() - started, sweepSeconds: 0) + [("status", JSON("running"))])
    }
    let sweepStart = WallClock.now()
    let outcomes: [TrialOutcome]
    do {
      outcomes = try sweep.run(observer: world.isRoot ? progress : nil)
    } catch let s as CollectiveStall {
      throw JobStalled(stall: s, epoch: nil, step: nil, timeout: options.stallTimeout, checkpointDir: nil)
    }
    let sweepSeconds = WallClock.now() - sweepStart
    let interrupted = Signals.received
    guard world.isRoot, let writer else {
      if interrupted { throw Interrupted(status: Signals.exitStatus, description: "") }
      return
    }
    let seconds = WallClock.now() - started
    let summary = SweepSummary(outcomes: outcomes, task: d.train.task)
    let status: [(String, JSON)] = [("status", JSON(interrupted ? "interrupted" : "finished"))]
    _ = try writer.finish(summary, about: about(seconds: seconds, sweepSeconds: sweepSeconds) + status, logLoss: lossScale == "log")
    if interrupted {
      let finished = outcomes.filter { $0.status != .interrupted }.count
      throw Interrupted(status: Signals.exitStatus, description: "interrupted (\(Signals.name)): \(finished) of \(counted(settings.count, "setting")) finished; summary.json and report.html in \(logDir) hold them, and the settings that did not finish are marked interrupted or missing")
    }
    console.say("")
    for line in summary.table { console.say(line) }
    let diverged = summary.rows.filter { $0.outcome.status == .diverged }
    if !diverged.isEmpty { console.say("diverged: \(diverged.map(\.outcome.setting.name).joined(separator: ", ")) (the other settings completed)") }
    if let b = summary.best {
      let r = summary.rows[b]
      let key = summary.selectionKey
      var line = "best (by validation \(key)): \(r.outcome.setting.name), val \(key) \(NumberText.fixed(r.value("best_val_\(key)"))) at epoch \(r.bestValidationEpoch ?? 0); its test \(key) \(NumberText.fixed(r.value("final_test_\(key)")))"
      if key != summary.scoreKey { line += ", test \(summary.scoreKey) \(NumberText.fixed(r.value("final_test_\(summary.scoreKey)")))" }
      console.say(line)
    } else {
      console.say("no setting finished: every one diverged")
    }
    // Every file under the folder: the summary's and each setting's own (metrics, charts, TensorBoard events).
    let written = (FileManager.default.enumerator(atPath: logDir)?.allObjects as? [String] ?? []).filter { name in
      var isFolder: ObjCBool = false
      return FileManager.default.fileExists(atPath: Files.join(logDir, name), isDirectory: &isFolder) && !isFolder.boolValue
    }.count
    console.say(String(format: "%.1f s; wrote %d files to %@ (open report.html)", seconds, written, logDir))
    for p in writer.problems { console.say("warning: \(p)") }
    if json { console.result(summary.json(extra: about(seconds: seconds, sweepSeconds: sweepSeconds) + status).serialized()) }
  }
}
