import ArgumentParser
import Collectives
import Datasets
import Experiments
import FileFormats
import Foundation
import Reports
import _Support
import TensorCore
import Training

struct SweepCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sweep",
    abstract: "Train one model per setting, groups of ranks at once; repeat seeds, stop early, prune, resume; report curves and findings.",
    discussion: """
      Every --axis 'NAME=V1;V2;...' varies one `dpt train` option (optimizer, lr-schedule, activation, hidden,
      dropout, model, weight-decay, ...); the settings are the product of the axes, or with --samples N that many
      drawn at random (an axis may then be NAME=uniform(A,B) or NAME=loguniform(A,B)). The lists of --weight-decay,
      --lr, --momentum and --batch-size (5e-2,5e-4) are axes too. An option that does not apply to a setting
      (--momentum with --optimizer lbfgs) is left out of it, and its config.json says so. --seed 0,1,2 repeats every
      setting with each seed: the summary keeps the mean, with the standard deviation as <key>_sd.

      The world is split into groups of --ranks-per-trial ranks; each group trains one setting data-parallel, the
      groups at once; a group that finishes takes the next. A validation split (--val-fraction, held out of the
      training rows) chooses the best setting, by its mean over the seeds; the test set is reported, never used to
      choose. A run stops on its own when its loss diverges (NaN, infinite, or --diverge-factor times its first),
      when --early-stop N epochs bring no better validation loss, or when L-BFGS converges; --prune halving stops the
      worse half of the settings at epochs 1, 2, 4, ... (asynchronously, ASHA, when settings outnumber groups).

      DIR gets summary.json (with findings: the best setting and whether it ties, overfitting, underfitting,
      divergence, ...), summary.csv, accuracy.svg, loss.svg, validation_curve.svg (the metric against each axis), for
      linear models regularisation_path.svg, a PNG beside every chart (with rsvg-convert), report.html, sweep.json,
      and per setting a folder with config.json, metrics.jsonl, metrics.csv, checkpoint.dptc and its charts (with
      several seeds, a folder per seed inside it). Stopped by a signal, a sweep writes what finished and goes on with
      `dpt sweep --resume DIR`.

        mpirun -np 2 dpt sweep --dataset mnist --weight-decay 5e-2,5e-4,5e-6 \\
          --seed 0,1,2 --epochs 20 --log-dir runs/wd
        mpirun -np 2 dpt sweep --dataset mnist --axis 'optimizer=sgd;adagrad;lbfgs' \\
          --log-dir runs/optimizers
        mpirun -np 4 dpt sweep --dataset fashion-mnist --ranks-per-trial 2 --samples 8 \\
          --axis 'weight-decay=loguniform(1e-6,1e-2)' --prune halving --log-dir runs/random
      """.reflowed)

  @OptionGroup var options: TrainingOptions

  @Option(name: .customLong("axis"), help: ArgumentHelp(
    "An option to vary and its values, e.g. 'optimizer=sgd;adagrad;lbfgs', 'model=mlp;cnn', 'weight-decay=loguniform(1e-6,1e-1)' (repeatable).",
    valueName: "name=values"))
  var axes: [String] = []

  @Option(parsing: .unconditional, help: ArgumentHelp("Draw this many settings at random from the axes (seeded by the first --seed) instead of the grid.", valueName: "n"))
  var samples: Int?

  @Option(help: ArgumentHelp("How the settings are chosen: grid (every combination of the axes' lists; the default), random (--samples settings drawn from the axes; the default with --samples), tpe (the tree-structured Parzen estimator, as Optuna's: 10 random settings, then each where the best quarter of the results so far is denser than the rest; needs --samples), or pbt (population-based training: --population members, exploited every --exploit-every epochs). The search is asked for the next setting whenever a group of ranks is free, with the results so far.", valueName: "name"))
  var search: String?

  @Option(parsing: .unconditional, help: ArgumentHelp("--search pbt: the members trained at once, drawn from the axes.", valueName: "n"))
  var population: Int?
  @Option(parsing: .unconditional, help: ArgumentHelp("--search pbt: epochs between exploits (the bottom quarter copies a top-quarter member's checkpoint, its numeric axes times 0.8 or 1.2).", valueName: "e"))
  var exploitEvery: Int?
  @Option(help: ArgumentHelp("halving: successive halving, the worse half of the settings by validation metric stopped at epochs 1, 2, 4, ...; hyperband: brackets of it (eta 3) that start pruning later and later.", valueName: "rule"))
  var prune: String?

  @Option(parsing: .unconditional, help: ArgumentHelp("Ranks that train each setting together (must divide the number of ranks).", valueName: "n"))
  var ranksPerTrial: Int = 1

  @Option(help: ArgumentHelp("The folder for the results (required, unless --resume names it).", valueName: "dir"))
  var logDir: String?

  @Option(help: ArgumentHelp("Continue the sweep in this folder: finished settings are kept, unfinished ones go on from their checkpoints. Its arguments come from DIR/sweep.json.", valueName: "dir"))
  var resume: String?

  @Flag(help: "Also write TensorBoard event files (DIR/tensorboard/<setting>).")
  var tensorboard = false

  @Flag(help: "Replace another sweep's results in --log-dir (without it, a --log-dir that holds one is an error).")
  var overwrite = false

  @Option(help: "The loss axis of the charts: log | linear.")
  var lossScale: String = "linear"
  @Option(parsing: .unconditional, help: ArgumentHelp("A trial whose job failed (a rank died, a stall) goes on from its last checkpoint when the sweep resumes (dpt launch resumes it by itself) at most N more times; then it is 'failed' and the sweep goes on without it. A diverged trial is final and never retried.", valueName: "n"))
  var retries: Int = 2
  @Option(help: "The validation curves of a classification sweep: accuracy | error (1 - accuracy, the error rate).")
  var metric: String = "accuracy"

  @Flag(help: "Print summary.json on stdout (the table goes to stderr).")
  var json = false

  /// The arguments after `sweep`, as given.
  static var givenArguments: [String] { Array(CommandLine.arguments.drop { $0 != "sweep" }.dropFirst()) }

  func validate() throws {
    if ranksPerTrial < 1 { throw ValidationError("--ranks-per-trial must be at least 1 (got \(ranksPerTrial))") }
    if !["log", "linear"].contains(lossScale) { throw ValidationError("--loss-scale '\(lossScale)': use log or linear") }
    if retries < 0 { throw ValidationError("--retries must be at least 0 (got \(retries))") }
    if !["accuracy", "error"].contains(metric) { throw ValidationError("--metric '\(metric)': use accuracy or error") }
    if let f = options.data.valFraction, f == 0 {
      throw ValidationError("--val-fraction must be > 0 for a sweep: the validation set chooses the best setting")
    }
    if let p = prune, p != "halving" && p != "hyperband" {
      throw ValidationError("--prune '\(p)': use halving (successive halving; ASHA when settings outnumber groups) or hyperband (brackets of it, eta 3)")
    }
    if let name = search, !Searchers.names.contains(name) {
      throw ValidationError("--search '\(name)': use one of \(Searchers.names.joined(separator: ", "))")
    }
    if let n = samples, n < 1 || n > 100_000 { throw ValidationError("--samples must be from 1 to 100000 (got \(n))") }
    if search == PBTSearch.name {
      guard let n = population, n >= 2, let e = exploitEvery, e >= 1 else {
        throw ValidationError("--search pbt: give --population N (at least 2) and --exploit-every E (epochs between exploits, at least 1)")
      }
      if samples != nil || prune != nil { throw ValidationError("--search pbt draws its own population: drop --samples and --prune") }
      if let epochs = options.epochs, e >= epochs {
        throw ValidationError("--exploit-every \(e) must be below --epochs \(epochs): a member exploits between its segments")
      }
      if axes.contains(where: { (try? parseAxis($0))?.option == "epochs" }) { throw ValidationError("--search pbt sets each segment's epochs: --epochs is the whole run, not an axis") }
    } else if population != nil || exploitEvery != nil {
      throw ValidationError("--population and --exploit-every belong to --search pbt")
    }
    if samples != nil && axes.isEmpty { throw ValidationError("--samples draws settings from --axis distributions or lists: give at least one --axis") }
    if resume == nil && logDir == nil { throw ValidationError("--log-dir is required: the folder for the sweep's results") }
    for a in axes { _ = try parseAxis(a) }
  }

  func run() throws {
    try Launch.withWorld { world in
      guard let resume else { return try start(world, arguments: SweepCommand.givenArguments, resuming: nil) }
      // The sweep goes on as it was started: its arguments come from sweep.json (read by rank 0, sent to all).
      let given = SweepArguments(SweepCommand.givenArguments)
      let extra = given.groups.map(\.name).filter { !["resume", "json", "stall-timeout"].contains($0) }
      if !extra.isEmpty {
        throw ValidationError("--resume \(resume) continues the sweep with the arguments it was started with (in \(Files.join(resume, SweepWriter.stateFile))); drop \(extra.map { "--" + $0 }.joined(separator: ", "))")
      }
      let bytes = try world.agree(describing: ErrorMessages.line) { () throws -> [UInt8] in
        guard world.isRoot else { return [] }
        return try Files.read(Files.join(resume, SweepWriter.stateFile), limit: 1 << 28,
                              missing: "is \(resume) a dpt sweep folder? (sweep.json is written when its first setting ends)")
      }
      let state = try world.agree(describing: ErrorMessages.line) { try SweepState(parsing: try world.broadcast(bytes: bytes, root: 0), path: Files.join(resume, SweepWriter.stateFile)) }
      var arguments = SweepArguments(state.arguments)
      arguments.remove("log-dir")
      arguments.remove("overwrite")
      try arguments.set("log-dir", resume)
      for name in ["json", "stall-timeout"] where given.has(name) {
        arguments.remove(name)
        arguments.groups += given.groups.filter { $0.name == name }
      }
      let command = try world.agree(describing: ErrorMessages.line) { () throws -> SweepCommand in
        do { return try SweepCommand.parse(arguments.arguments) } catch {
          // A sweep.json edited by hand: the parser's own message, naming the file, not its error value.
          throw ValidationError("--resume \(resume): \(SweepWriter.stateFile) records arguments this dpt does not take (\(Self.oneLine(error))): start the sweep again, or restore the file")
        }
      }
      try command.start(world, arguments: arguments.arguments, resuming: state)
    }
  }

  /// The axes: the lists of --weight-decay, --lr, --momentum and --batch-size first, then each --axis.
  func sweepAxes() throws -> [SweepAxis] {
    var out: [SweepAxis] = []
    for (name, text) in [("weight-decay", options.weightDecay), ("lr", options.lr), ("momentum", options.momentum), ("batch-size", options.batchSize)] {
      guard let text, text.contains(",") else { continue }
      out.append(SweepAxis(option: name, values: .list(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })))
    }
    for a in axes {
      let axis = try parseAxis(a)
      if out.contains(where: { $0.option == axis.option }) {
        throw ValidationError("--axis \(axis.option) is given twice (or also as a list of --\(axis.option)): give its values once")
      }
      out.append(axis)
    }
    return out
  }

  /// Population-based training's lineage of setting `setting` as `dpt train` runs that each resume the last from one
  /// checkpoint folder, each with its segment's values and last epoch: the same steps as the sweep's trials took, and
  /// bitwise the same weights with the same BLAS threads and ranks on one host (with --deterministic, on any).
  /// `validation`: the sweep's validation fraction, which a train run does not hold out by default.
  static func replay(_ pbt: PBTSearch, setting: Int, base: SweepArguments, seed: UInt64, ranks: Int, validation: Double) throws -> String {
    let folder = "runs/pbt-replay"
    return try pbt.lineage(of: setting).enumerated().map { i, segment in
      var a = base
      for pair in segment.values { try a.set(pair[0], pair[1]) }
      try a.set("epochs", String(segment.end))
      try a.set("seed", String(seed))
      try a.set("val-fraction", NumberText.compact(validation))
      for name in ["axis", "samples", "search", "population", "exploit-every", "checkpoint-dir", "resume"] { a.remove(name) }
      let args = a.trainArguments + ["--checkpoint-dir", folder] + (i > 0 ? ["--resume", folder] : [])
      // The BLAS threads each rank had: another split of a product sums in another order.
      return "OPENBLAS_NUM_THREADS=\(BLASThreads.count) mpirun -np \(ranks) -x OPENBLAS_NUM_THREADS dpt train " + args.map(ShellWords.quote).joined(separator: " ")
    }.joined(separator: " &&\n")
  }

  /// One trial's arguments, options and configuration: the sweep's, with the setting's values and the trial's seed.
  struct Trial {
    var arguments: SweepArguments
    var options: TrainingOptions
    var config: TrainingConfig
    var leftOut: [String]
  }

  static func trial(_ t: SweepTrial, _ setting: SweepSetting, axes: [SweepAxis], base: SweepArguments) throws -> Trial {
    var a = base
    for pair in setting.values { try a.set(pair[0], pair[1]) }
    try a.set("seed", String(t.seed))
    a.remove("axis")
    a.remove("samples")
    a.remove("search")
    a.remove("population")
    a.remove("exploit-every")
    let (applicable, leftOut) = a.applicable()
    do {
      let parsed = try SweepCommand.parse(applicable.arguments)
      return Trial(arguments: applicable, options: parsed.options, config: try parsed.options.makeConfig(), leftOut: leftOut)
    } catch {
      throw ValidationError("setting \(setting.name(axes: axes)): \(Self.oneLine(error))")
    }
  }

  /// The parser's message for `error` in one line, with its list of choices, without "Error: " and the usage that
  /// follows it.
  static func oneLine(_ error: any Error) -> String {
    let lines = SweepCommand.message(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    let text = lines.prefix { !$0.hasPrefix("Usage:") && !$0.isEmpty }.joined(separator: " ")
    return text.hasPrefix("Error: ") ? String(text.dropFirst(7)) : text
  }

  func start(_ world: any Communicator, arguments given: [String], resuming state: SweepState?) throws {
    let console = Console(isRoot: world.isRoot, jsonOutput: json)
    let started = WallClock.now()
    let base = SweepArguments(given)
    // The settings so far (a resume's, from sweep.json) and the search that proposes the next ones.
    let axes = try sweepAxes()
    let trialSeeds = try options.data.seeds
    let fresh: any Searcher = search == PBTSearch.name
      ? try PBTSearch(axes: axes, population: population!, exploitEvery: exploitEvery!, epochs: try options.makeConfig().epochs,
                      seeds: trialSeeds.count, seed: options.data.firstSeed)
      : try Searchers.make(search ?? (samples != nil ? RandomSearch.name : GridSearch.name), axes: axes, samples: samples,
                           seed: options.data.firstSeed)
    let plan = state?.plan ?? SweepPlan(axes: axes, seeds: trialSeeds)
    let searcher = try state?.searcher(fresh) ?? fresh
    // What is checked before any group starts: the plan's trials and every setting the search proposes without
    // results (all of a grid's or a random search's).
    var probe = plan
    for values in Searchers.firstSettings(searcher) { probe.add(values) }
    let trials = try probe.trials.map { try SweepCommand.trial($0, probe.settings[$0.setting], axes: axes, base: base) }
    let logDir = self.logDir ?? resume!
    // The folder is claimed (locked, checked) before any setting trains: another sweep's folders are never mixed
    // into this one's, and no input is among the files it would write or replace.
    let willWrite = ReportFiles.sweepFiles + plan.settings.map { plan.slug($0) + "/" } + (tensorboard ? ["tensorboard/"] : [])
    let folder = try world.agree(describing: ErrorMessages.line) { () throws -> OutputFolder? in
      guard world.isRoot else { return nil }
      let claim: OutputFolder.Claim
      if state != nil {
        guard let id = try OutputFolder.runID(of: logDir) else {
          throw ValidationError("--resume \(logDir): has no \(OutputFolder.manifestName): not a folder a dpt sweep wrote")
        }
        claim = .resume(runID: id)
      } else {
        claim = overwrite ? .replace : .fresh
      }
      let f = try OutputPaths.folder(logDir, flag: state != nil ? "--resume" : "--log-dir", command: "dpt sweep", claim: claim,
                                     willWrite: willWrite)
      var inputs: [OutputPaths.Input] = []
      for t in trials { inputs += (try t.options.data.source).files.map { OutputPaths.Input(flag: "--dataset", path: $0) } }
      try OutputPaths.checkInputs(inputs, outputs: [("--log-dir", OutputPaths.outputFiles(f, writes: ReportFiles.sweepFiles))])
      return f
    }
    defer { folder?.release() }
    // Each trial's data (one load per distinct data set and seed) and model, checked before any group starts.
    let specs = TrialSpecs(base: base, axes: plan.axes, ranksPerTrial: ranksPerTrial, extra: [
      ("early_stop", options.earlyStop.map { JSON($0) } ?? .null), ("diverge_factor", JSON(options.divergeFactor))])
    let checked = try world.agree(describing: ErrorMessages.line) { () throws -> [TrialSpec] in
      let all = try probe.trials.map { try specs.spec($0, probe.settings[$0.setting]) }
      for t in all { try Sweep.check(t, ranksPerTrial: ranksPerTrial) }
      return all
    }
    let sweep = try world.agree(describing: ErrorMessages.line) {
      try Sweep(plan: plan, searcher: searcher, ranksPerTrial: ranksPerTrial, world: world) { try specs.spec($0, $1) }
    }
    sweep.patience = options.earlyStop
    sweep.finalCheckpoints = searcher is PBTSearch  // its segments continue one another
    sweep.divergeFactor = options.divergeFactor
    sweep.pruning = prune == "halving" ? Pruning() : prune == "hyperband" ? Pruning.hyperband(epochs: checked[0].config.epochs) : nil
    let first = checked[0].data, task = first.train.task
    // Where each trial stood (rank 0, which has the files): final ones are kept, the others go on from their checkpoints.
    var kept: [TrialOutcome] = []
    if let state, world.isRoot, let folder {
      sweep.progress = try state.progress(plan: plan, in: folder.path, retries: retries)
      kept = plan.trials.compactMap { t in
        guard let p = sweep.progress[t.index], let s = p.status, s.isFinal else { return nil }
        var o = TrialOutcome(trial: t, status: s, epochs: p.epochs, seconds: p.seconds, group: -1, closedForm: p.closedForm)
        o.tries = p.tries
        return o
      }
    }
    let writer = folder.map { f in
      SweepWriter(folder: f, plan: plan, searcher: searcher, arguments: given, statuses: state?.statuses ?? [:], tries: state?.tries ?? [:], tensorboard: tensorboard,
                  task: task) { [unowned sweep] t in (try? specs.spec(t, sweep.plan.settings[t.setting]).record) ?? .null }
    }
    // A signal stops the running settings after the same step (their ranks agree), and the sweep ends with what
    // finished; the stall timeout bounds every wait, the collectives' and the coordinator's.
    Signals.install()
    sweep.stopRequested = { Signals.received }
    sweep.stallTimeout = options.stallTimeout > 0 ? options.stallTimeout : nil
    let disarm = Launch.armWatchdog(world, timeout: sweep.stallTimeout)
    defer { disarm() }
    if let note = try options.data.inferenceNote { console.say(note) }
    let rows = "\(first.train.count) train / \(first.validation?.count ?? 0) validation / \(first.test.count) test"
    // The model as every setting has it, or "models" when an axis changes it (never the first setting's alone).
    let modelAxes: Set<String> = ["model", "model-file", "hidden", "activation", "kernel-size", "output", "output-layer", "dropout"]
    let model = plan.axes.contains { modelAxes.contains($0.option) } ? "models" : checked[0].config.model.description
    let seeds = plan.seeds.count > 1 ? " x \(counted(plan.seeds.count, "seed"))" : ""
    let searched = searcher.budget == nil ? "; the \(type(of: searcher).name) search proposes more as results come" : ""
    console.say("sweep: \(counted(probe.settings.count, "setting"))\(seeds) x \(counted(checked[0].config.epochs, "epoch")) of \(model) on \(first.name) (\(rows)); \(counted(sweep.groups, "group")) of \(counted(ranksPerTrial, "rank"))\(searched)")
    if let v = first.validation, v.count < 30 {
      console.say("warning: the validation set has \(counted(v.count, "row")) (--val-fraction \(NumberText.compact(options.data.valFraction ?? 0.1)) of the training rows): the best setting is chosen on very few samples; raise --val-fraction or use more data")
    }
    if first.validation == nil, options.earlyStop != nil { console.say("--early-stop watches the test loss: there is no validation set") }
    if !kept.isEmpty || !sweep.progress.isEmpty {
      let going = sweep.progress.values.filter { $0.status == nil && $0.checkpoint != nil }.count
      console.say("resumed \(logDir): \(kept.count) of \(counted(probe.trials.count, "run")) finished and kept, \(going) go on from their checkpoints")
    }
    /// What summary.json says about the sweep as a whole.
    func about(seconds: Double, sweepSeconds: Double) -> [(String, JSON)] {
      let b = checked[0].config
      return [
        ("title", JSON("dpt sweep\(plan.axes.isEmpty ? "" : " of " + plan.axes.map(\.option).joined(separator: " x ")): \(model) on \(first.name)")),
        ("about", JSON("\(counted(sweep.plan.settings.count, "setting"))\(seeds), \(counted(b.epochs, "epoch")) each, \(counted(sweep.groups, "group")) of \(counted(ranksPerTrial, "rank")); \(rows) rows; \(b.optimizer.name) unless an axis says otherwise")),
        ("dataset", JSON(first.name)), ("model", JSON(model)), ("epochs", JSON(b.epochs)),
        ("seeds", .array(plan.seeds.map { .number(Double($0)) })), ("samples", samples.map { JSON($0) } ?? .null),
        ("search", JSON(type(of: searcher).name)), ("metric", JSON(metric)),
        ("prune", prune.map { JSON($0) } ?? .null), ("early_stop", options.earlyStop.map { JSON($0) } ?? .null),
        ("world_size", JSON(world.size)), ("ranks_per_trial", JSON(ranksPerTrial)), ("groups", JSON(sweep.groups)),
        ("seconds", JSON(seconds)), ("sweep_seconds", JSON(sweepSeconds)),
      ]
    }
    let progress = SweepProgress(writer: writer, console: console, plan: plan, total: searcher.budget == nil ? nil : probe.trials.count,
                                 task: task, kept: kept) { [unowned sweep] done in
      // summary.json after every finished run: a sweep killed later keeps what it finished.
      try writer?.writeSummary(SweepSummary(outcomes: done, plan: sweep.plan, task: task,
                                            superseded: sweep.searcher?.supersededSettings(count: sweep.plan.settings.count) ?? [:]),
                               about: about(seconds: WallClock.now() - started, sweepSeconds: 0) + [("status", JSON("running"))])
    }
    if world.isRoot { try writer?.writeState() }
    let sweepStart = WallClock.now()
    let outcomes: [TrialOutcome]
    do {
      outcomes = try sweep.run(observer: world.isRoot ? progress : nil)
    } catch let s as CollectiveStall {
      throw JobStalled(stall: s, epoch: nil, step: nil, timeout: options.stallTimeout, checkpointDir: nil)
    }
    let sweepSeconds = WallClock.now() - sweepStart
    let interrupted = Signals.received || outcomes.contains { $0.status == .interrupted }
    guard world.isRoot, let writer else {
      if interrupted { throw Interrupted(status: Signals.exitStatus, description: "") }
      return
    }
    let seconds = WallClock.now() - started
    let summary = SweepSummary(outcomes: outcomes, plan: sweep.plan, task: task,
                               superseded: sweep.searcher?.supersededSettings(count: sweep.plan.settings.count) ?? [:])
    let status: [(String, JSON)] = [("status", JSON(interrupted ? "interrupted" : "finished"))]
    let (_, findings) = try writer.finish(summary, about: about(seconds: seconds, sweepSeconds: sweepSeconds) + status, logLoss: lossScale == "log")
    if interrupted {
      let finished = outcomes.filter { $0.status.isFinal }.count
      throw Interrupted(status: Signals.exitStatus, description: "interrupted (\(Signals.name)): \(finished) of \(counted(sweep.plan.trials.count, "run")) finished; summary.json and report.html in \(logDir) hold them; go on with: dpt sweep --resume \(logDir)")
    }
    console.say("")
    for line in summary.table { console.say(line) }
    for f in findings where f.kind != "closed-form" {
      console.say("\(f.kind)\(f.setting.map { " (\($0))" } ?? ""): \(f.evidence)")
    }
    // Every file under the folder: the summary's and each setting's own (metrics, charts, checkpoints, TensorBoard events).
    let written = (FileManager.default.enumerator(atPath: logDir)?.allObjects as? [String] ?? []).filter { name in
      var isFolder: ObjCBool = false
      return FileManager.default.fileExists(atPath: Files.join(logDir, name), isDirectory: &isFolder) && !isFolder.boolValue
        && !Files.lastComponent(name).hasPrefix(".dpt-run")
    }.count
    console.say(String(format: "%.1f s; wrote %d files to %@ (open report.html)%@", seconds, written, logDir,
                       PNG.converter == nil ? "; no PNGs: install librsvg2-bin (rsvg-convert) for them" : ""))
    if let pbt = sweep.searcher as? PBTSearch, let best = summary.best {
      // The best member's weights, trained again as one chain of dpt train runs, each resuming the last.
      let seed = summary.rows[best].runs.first?.outcome.trial.seed ?? options.data.firstSeed
      let script = try Self.replay(pbt, setting: summary.rows[best].setting.index, base: base, seed: seed, ranks: ranksPerTrial,
                                   validation: options.data.valFraction ?? 0.1)
      try writer.folder.write("replay.sh", "#!/bin/sh\n# The best member (\(summary.rows[best].name)) of the population, trained again: its lineage, segment by segment.\nset -e\n" + script + "\n")
      console.say("replay the best member (\(logDir)/replay.sh):\n" + script)
    }
    for p in writer.problems { console.say("warning: \(p)") }
    if json { console.result(summary.json(extra: about(seconds: seconds, sweepSeconds: sweepSeconds) + status, findings: findings).serialized()) }
  }
}

/// sweep.json, read back for `dpt sweep --resume`: the arguments the sweep was started with, its plan, and the
/// status of every trial that ended.
struct SweepState {
  var arguments: [String]
  var plan: SweepPlan
  /// The search's state (nil in a sweep.json written before searches kept one).
  var searcherJSON: JSON?
  var statuses: [Int: JSON]
  /// How many times each trial was started.
  var tries: [Int: Int] = [:]

  init(parsing bytes: [UInt8], path: String) throws {
    let j: JSON
    do { j = try JSON.parse(bytes: bytes) } catch { throw ValidationError("--resume: \(path) is not valid JSON (\(error))") }
    guard j["format"]?.string == "dpt sweep", let args = j["arguments"]?.array?.compactMap(\.string), let planJSON = j["plan"] else {
      throw ValidationError("--resume: \(path) is not a dpt sweep's sweep.json")
    }
    arguments = args
    do { plan = try JSONDecoder().decode(SweepPlan.self, from: Data(planJSON.serialized().utf8)) } catch {
      throw ValidationError("--resume: \(path): its plan cannot be read (\(error))")
    }
    searcherJSON = j["searcher"].flatMap { $0 == .null ? nil : $0 }
    for t in plan.trials where !t.folder.allSatisfy(OutputFolder.isPlainName) {
      throw ValidationError("--resume: \(path): trial \(t.index) names the folder '\(t.folder.joined(separator: "/"))', which is not inside the sweep's")
    }
    statuses = [:]
    for t in j["trials"]?.array ?? [] {
      guard let i = t["index"]?.int else { continue }
      if let n = t["tries"]?.int { tries[i] = n }
      if t["status"] != nil { statuses[i] = t }
    }
  }

  /// The search where it stood: from sweep.json, or for one written before searches kept their state, `fresh` moved
  /// past the settings the plan holds (a grid's or a random search's proposals depend on nothing else).
  func searcher(_ fresh: any Searcher) throws -> any Searcher {
    if let searcherJSON {
      do { return try Searchers.decode(searcherJSON) } catch { throw ValidationError("--resume: \(SweepWriter.stateFile): its search cannot be read (\(error))") }
    }
    var s = fresh
    for _ in plan.settings.indices { _ = s.next(history: []) }
    return s
  }

  /// Where each trial stood: a final status with its logged epochs; else its last checkpoint and the epochs up to it,
  /// or, for one started more than `retries` + 1 times without ending (its job died each time), failed.
  func progress(plan: SweepPlan, in directory: String, retries: Int) throws -> [Int: TrialProgress] {
    var out: [Int: TrialProgress] = [:]
    for t in plan.trials {
      let folder = t.folder.reduce(directory) { Files.join($0, $1) }
      let metrics = Files.join(folder, "metrics.jsonl")
      let rows = FileManager.default.fileExists(atPath: metrics) ? try ReportFiles.readMetrics(metrics) : []
      if let s = statuses[t.index], let status = RunStatus(json: s), status.isFinal {
        out[t.index] = TrialProgress(status: status, epochs: rows, checkpoint: nil, seconds: s["seconds"]?.double ?? 0,
                                     closedForm: s["closed_form"].flatMap { $0 == .null ? nil : $0 }, tries: tries[t.index] ?? 1)
        continue
      }
      if let n = tries[t.index], n > retries {
        out[t.index] = TrialProgress(status: .failed(tries: n), epochs: rows, checkpoint: nil, seconds: 0, tries: n)
        continue
      }
      let path = Files.join(folder, Checkpoint.fileName)
      guard FileManager.default.fileExists(atPath: path) else {
        if let n = tries[t.index] { out[t.index] = TrialProgress(status: nil, epochs: [], checkpoint: nil, seconds: 0, tries: n) }
        continue
      }
      let bytes = try Checkpoint.readBytes(path)
      let c = try Checkpoint(decoding: bytes, path: path)
      let earlier = rows.filter { $0.epoch <= c.epoch }
      out[t.index] = TrialProgress(status: nil, epochs: earlier, checkpoint: bytes,
                                   seconds: earlier.reduce(0) { $0 + ($1.seconds ?? 0) }, tries: tries[t.index] ?? 0)
    }
    return out
  }
}

/// Each trial's configuration, data and recorded settings, built once (the data once per distinct data set, split and
/// seed): before the sweep for every setting known then, and on the ranks of a group for a setting the search
/// proposes later.
final class TrialSpecs {
  let base: SweepArguments
  let axes: [SweepAxis]
  let ranksPerTrial: Int
  /// Fields every trial's config.json records beside its settings.
  let extra: [(String, JSON)]
  private var loaded: [String: DataSplit] = [:]
  private var built: [String: TrialSpec] = [:]

  init(base: SweepArguments, axes: [SweepAxis], ranksPerTrial: Int, extra: [(String, JSON)]) {
    (self.base, self.axes, self.ranksPerTrial, self.extra) = (base, axes, ranksPerTrial, extra)
  }

  func spec(_ t: SweepTrial, _ setting: SweepSetting) throws -> TrialSpec {
    let id = setting.values.map { $0.joined(separator: "=") }.joined(separator: ";") + "|seed \(t.seed)"
    if let known = built[id] { return known }
    let trial = try SweepCommand.trial(t, setting, axes: axes, base: base)
    let o = trial.options.data
    let key = [o.dataset, o.target?.rawValue ?? "", String(describing: o.targets), o.header.rawValue, String(describing: o.testFraction),
               String(describing: o.valFraction), o.seed, String(describing: o.standardize)].joined(separator: "|")
    let data = try loaded[key] ?? o.load(validation: o.valFraction ?? 0.1)
    loaded[key] = data
    let check = try Trainer<Float>(config: trial.config, data: data, communicator: LocalCommunicator())
    var spec = TrialSpec(config: trial.config, data: data)
    if case .object(var c) = trial.config.json(data: data.origin, worldSize: ranksPerTrial, layers: check.layerItems, trainRows: data.train.count) {
      c += [("train_arguments", .array(trial.arguments.trainArguments.map { JSON($0) })),
            ("left_out", .array(trial.leftOut.map { JSON("--" + $0) }))] + extra
      spec.record = .object(c)
    }
    built[id] = spec
    return spec
  }
}
