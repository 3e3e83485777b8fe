import ArgumentParser
import Collectives
import Datasets
import FileFormats
import Foundation
import Reports
import _Support
import Training

/// Where a `dpt train` run's outputs go, and what it starts from: the log folder, checkpoints, --init and --resume,
/// the trace and the timeline, and what rank 0 prints.
struct TrainOutputs: ParsableArguments {
  @Option(help: ArgumentHelp("Write config.json, metrics.jsonl, metrics.csv, accuracy.svg, loss.svg and report.html into this folder.", valueName: "dir"))
  var logDir: String?

  @Flag(help: "With --log-dir, also write TensorBoard event files (DIR/tensorboard).")
  var tensorboard = false

  @Flag(help: "With --tensorboard: after each epoch a histogram of every layer's parameters and gradients.")
  var histograms = false

  @Option(parsing: .unconditional, help: ArgumentHelp("With --log-dir: every N optimizer steps a line of steps.jsonl (step, epoch, loss, lr, grad_norm, samples_per_sec), and TensorBoard's step/ scalars; 0: none (default: about 20 an epoch).", valueName: "n"))
  var logEvery: Int?

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
    if printEvery < 1 { throw ValidationError("--print-every must be at least 1 (got \(printEvery))") }
    if tensorboard && logDir == nil { throw ValidationError("--tensorboard needs --log-dir") }
    if logEvery != nil && logDir == nil { throw ValidationError("--log-every needs --log-dir") }
    if histograms && !tensorboard { throw ValidationError("--histograms needs --tensorboard (and --log-dir)") }
    if let n = logEvery, n < 0 { throw ValidationError("--log-every must be 0 (no step lines) or more (got \(n))") }
    if let p = predict { _ = try parsePredictRows(p) }
    if checkpointEvery != nil && checkpointDir == nil { throw ValidationError("--checkpoint-every needs --checkpoint-dir") }
    if let n = checkpointEvery, n < 1 { throw ValidationError("--checkpoint-every must be at least 1 (got \(n))") }
    if `init` != nil && resume != nil { throw ValidationError("--init and --resume both set the weights: drop one of them") }
    if trace == nil && (traceSteps != 1 || traceLimit != nil) { throw ValidationError("--trace-steps and --trace-limit need --trace") }
    if traceSteps < 1 { throw ValidationError("--trace-steps must be at least 1 (got \(traceSteps))") }
    if let k = traceLimit, k < 1 { throw ValidationError("--trace-limit must be at least 1 (got \(k))") }
  }


  /// The files --log-dir gets.
  var logFiles: [String] { RunLog.files + [StepLog.fileName] + ReportFiles.runFiles + (tensorboard ? ["tensorboard/"] : []) }

  /// The checkpoint --resume names, read by rank 0 (it wrote it; other hosts may not have the file) and broadcast.
  func resumed(_ comm: any Communicator) throws -> Checkpoint? {
    guard let resume else { return nil }
    var bytes = try comm.agree(describing: ErrorMessages.line) { comm.isRoot ? try InputFiles.checkpointBytes(resume, flag: "--resume") : [] }
    bytes = try comm.broadcast(bytes: bytes, root: 0)
    return try comm.agree(describing: ErrorMessages.line) { try Checkpoint(decoding: bytes, path: Checkpoint.path(resume)) }
  }

  /// Claims the output folders (locked, checked against what they hold and against every input) on rank 0, which
  /// writes them all, before anything is loaded or trained; nothing in them changes until the first epoch ends.
  /// Single files are checked too: never inside the run's own folders (their manifests own what they hold), never one
  /// another, never an input.
  func claim(_ comm: any Communicator, runID: String, resuming: Bool, data: DataOptions) throws -> (logs: OutputFolder?, checkpoints: OutputFolder?) {
    let claim: OutputFolder.Claim = overwrite ? .replace : resuming ? .resume(runID: runID) : .fresh
    return try comm.agree(describing: ErrorMessages.line) { () throws -> (OutputFolder?, OutputFolder?) in
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
      let inputs = (try data.source).files.map { OutputPaths.Input(flag: "--dataset", path: $0) }
        + [`init`.map { OutputPaths.Input(flag: "--init", path: $0) }, resume.map { OutputPaths.Input(flag: "--resume", path: Checkpoint.path($0)) }]
          .compactMap { $0 }
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
  }

  /// --init's weights, read by rank 0, whose parameters every rank then receives (synchronizeParameters broadcasts).
  func initialWeights(_ comm: any Communicator) throws -> [UInt8] {
    try comm.agree(describing: ErrorMessages.line) { () throws -> [UInt8] in
      guard comm.isRoot, let path = `init` else { return [] }
      return try InputFiles.safetensors(path, flag: "--init")
    }
  }
}
