import ArgumentParser
import Collectives
import Datasets
import FileFormats
import Foundation
import Training
import _Support

/// Where `eval` and `predict` take trained weights from: a checkpoint (whose config also names the model and the
/// data it was trained on) or a safetensors file in `dpt export`'s layout (the model then comes from the flags).
struct WeightsOptions: ParsableArguments {
  @Option(help: ArgumentHelp("A --checkpoint-dir folder (or checkpoint file): its weights, model and data set.", valueName: "dir"))
  var checkpoint: String?

  @Option(help: ArgumentHelp("A .safetensors file in `dpt export`'s layout (PyTorch's names and shapes); the model comes from --model, --hidden, ... as for train.", valueName: "file"))
  var weights: String?

  @Option(help: ArgumentHelp(
    "With --checkpoint DIR: best | last. Default: best.dptc, the best epoch's weights, when --early-stop kept one; else checkpoint.dptc.",
    valueName: "checkpoint"))
  var which: Checkpoint.Choice?

  func validate() throws {
    if (checkpoint == nil) == (weights == nil) { throw ValidationError("give one of --checkpoint DIR and --weights FILE.safetensors") }
    if which != nil && checkpoint == nil { throw ValidationError("--which chooses among a --checkpoint folder's checkpoints: drop it with --weights") }
  }

  /// What `eval` and `predict` run: the model and loss, the data set and how to load it, the checkpoint (the file
  /// chosen by --which) and the input transform the weights were trained with.
  struct Run {
    var config: TrainingConfig
    var source: DatasetSource
    var load: () throws -> DataSplit
    var checkpoint: Checkpoint?
    /// The file the weights come from (--weights, or the checkpoint chosen), and which of a folder's it is.
    var weightsPath: String
    var choice: Checkpoint.Choice?
    /// The training rows' transform, recorded with the weights (nil: weights of an earlier dpt, or from elsewhere;
    /// then the data's own training rows fit it, as training did).
    var transform: InputTransform?

    /// Where the weights come from, for the first line a command prints: the file, and the epoch of a checkpoint.
    var weightsNote: String {
      guard let c = checkpoint else { return "weights: \(weightsPath)" }
      let which = choice == .best ? "the best epoch, kept by --early-stop; --which last for the last one" : "the last epoch written"
      return "weights: \(weightsPath), epoch \(c.epoch) (\(which))"
    }
  }

  /// With --weights: the model, loss and data from the flags. With --checkpoint (read here, once, on every rank):
  /// the run description the checkpoint recorded, decoded as a typed `TrainingConfig`, and its data set and split;
  /// --dataset names another data set of the same shape instead (then the data flags given apply).
  func run(given: some RunFlags) throws -> Run {
    guard let checkpoint else {
      let transform = try InputFiles.safetensorsTransform(weights!, flag: "--weights")
      return Run(config: try given.makeConfig(), source: try given.data.source, load: { try given.data.load(encoding: transform) }, checkpoint: nil,
                 weightsPath: weights!, choice: nil, transform: transform)
    }
    let (path, choice) = try Checkpoint.path(checkpoint, which: which)
    let c = try InputFiles.checkpoint(path, flag: "--checkpoint")
    let transform: InputTransform?
    do { transform = try InputTransform(json: c.config["input_transform"]) } catch {
      throw CommandError("\(path): its input transform does not decode (\(error)); it was not written by this dpt")
    }
    let run = try Self.description(of: c, path: path)
    let config = run.training
    if given.data.givenDataset != nil {
      return Run(config: config, source: try given.data.source, load: { try given.data.load(encoding: transform) }, checkpoint: c,
                 weightsPath: path, choice: choice, transform: transform)
    }
    guard let source = run.data?.source else { throw CommandError("\(path) names no data set (it was trained on data held in memory): give --dataset") }
    // A file the checkpoint names (csv:PATH, idx:DIR) is opened only when it is the file the run trained on: a
    // checkpoint from elsewhere must not make dpt read, and quote, any file it likes.
    if !source.files.isEmpty {
      let recorded = c.config["data_fingerprint"]?.string
      guard let recorded, (try? source.fingerprint()) == recorded else {
        throw CommandError("\(path) was trained on \(source), but \(recorded == nil ? "does not record which file that was" : "that file is not the one it was trained on (its size or checksum differ)"): give --dataset to evaluate on a data set you name")
      }
    }
    // The run's own split: its test rows, and the validation rows it held out of the training rows (reported apart).
    let testFraction = given.data.testFraction ?? run.data?.testFraction, seed = config.seed
    let validation = given.data.valFraction ?? run.data?.validationFraction ?? 0
    return Run(config: config, source: source,
               load: {
                 try TableReader().load(source, testFraction: testFraction, seed: seed, encoding: transform)
                   .holdingOutValidation(fraction: validation, seed: seed)
               },
               checkpoint: c, weightsPath: path, choice: choice, transform: transform)
  }

  /// The run a checkpoint recorded, as a typed description (an older dpt's config is rebuilt through the flags it
  /// names).
  static func description(of c: Checkpoint, path: String) throws -> RunDescription {
    let run: RunDescription
    if let recorded = c.config["run"], recorded != .null {
      do { run = try RunDescription(run: recorded) } catch {
        throw CommandError("\(path): its run description does not decode (\(error)); it was not written by this dpt")
      }
    } else {
      // A checkpoint of an older dpt records its settings as text only: they are rebuilt through the flags they name.
      do {
        let options = try TrainingOptions.parse(Self.arguments(fromConfig: c.config))
        run = RunDescription(data: DataOrigin(source: try options.data.source, testFraction: options.data.testFraction),
                             training: try options.makeConfig())
      } catch {
        throw CommandError("\(path): its config does not make a model here (\(TrainingOptions.message(for: error)))")
      }
    }
    return run
  }

  /// The flags that rebuild a run's model, loss and data split from its config.json.
  static func arguments(fromConfig c: JSON) -> [String] {
    var a: [String] = []
    if let d = c["dataset"]?.string { a += ["--dataset", d] }
    if let f = c["test_fraction"]?.double { a += ["--test-fraction", "\(f)"] }
    if let h = c["header"]?.string, h != "auto" { a += ["--header", h] }
    if let t = c["target"]?.string {
      a += t == "class" ? ["--target", "class"] : ["--target", "value"] + (t.hasPrefix("value:") ? ["--targets", String(t.dropFirst(6))] : [])
    }
    if case .bool(let s)? = c["standardize"] { a.append(s ? "--standardize" : "--no-standardize") }
    if let seed = c["seed"]?.int { a += ["--seed", String(seed)] }
    if let m = c["model"]?.string, ModelKind(rawValue: m) == nil {
      // The layers as built (a shorthand expanded): the list says everything.
      a += ["--model", m]
      if let r = c["loss_reduction"]?.string { a += ["--loss-reduction", r] }
    } else {
      // An older dpt's config: the shorthand and its flags.
      let channels = c["channels"]?.array?.compactMap { $0.int.map(String.init) } ?? []
      if let m = c["model"]?.string { a += ["--model", m == "cnn" && !channels.isEmpty ? "cnn:" + channels.joined(separator: ",") : m] }
      let hidden = c["hidden"]?.array?.compactMap { $0.int.map(String.init) } ?? []
      if !hidden.isEmpty { a += ["--hidden", hidden.joined(separator: ",")] }
      if let k = c["kernel_size"]?.int { a += ["--kernel-size", String(k)] }
      if let act = c["activation"]?.string {
        // "leaky-relu(0.01)": the name, and the slope as --leaky-slope.
        let name = String(act.prefix { $0 != "(" })
        a += ["--activation", name]
        if name == "leaky-relu", let open = act.firstIndex(of: "(") { a += ["--leaky-slope", String(act[act.index(after: open)...].prefix { $0 != ")" })] }
      }
      if case .bool(true)? = c["output_softmax"] { a += ["--output-layer", "softmax"] }
    }
    if let loss = c["loss"]?.string {
      // "hinge(margin=1.0, mean over classes)", "huber(delta=2.0)".
      let name = String(loss.prefix { $0 != "(" })
      a += ["--loss", name]
      func setting(_ key: String) -> String? {
        guard let r = loss.range(of: key + "=") else { return nil }
        return String(loss[r.upperBound...].prefix { $0 != "," && $0 != ")" })
      }
      if let m = setting("margin") { a += ["--margin", m] }
      if let d = setting("delta") { a += ["--huber-delta", d] }
      if loss.contains("mean over classes") { a += ["--hinge-reduction", "mean"] }
    }
    return a
  }

  /// The weights in safetensors form (a checkpoint's through its export, so that both sources get the same shape
  /// checks).
  func weightBytes(_ run: Run) throws -> [UInt8] {
    if let checkpoint = run.checkpoint { return try SafeTensors.encode(checkpoint, pytorchLayout: true) }
    return try InputFiles.safetensors(run.weightsPath, flag: "--weights")
  }

  /// The run's trainer with the weights loaded: data and model built on every rank (inside `agree`), the weights
  /// mapped onto the model by rank 0 (a checkpoint's through its safetensors form, so that both sources get the
  /// same shape checks) and broadcast.
  func trainer(_ run: Run, _ comm: any Communicator) throws -> Trainer<Float> {
    let bytes = try comm.agree(describing: ErrorMessages.line) { () throws -> [UInt8] in
      comm.isRoot ? try weightBytes(run) : []
    }
    let trainer = try comm.agree(describing: ErrorMessages.line) { () throws -> Trainer<Float> in
      let data = try run.load()
      let trainer = try Trainer<Float>(config: run.config, data: data, communicator: comm, synchronize: false, transform: run.transform)
      if comm.isRoot {
        let path = run.weightsPath
        (trainer.parameters, trainer.buffers) = try SafeTensors.state(for: trainer.network, from: try SafeTensorsFile(decoding: bytes, path: path), path: path)
      }
      return trainer
    }
    try trainer.synchronizeParameters()
    return trainer
  }
}

extension Checkpoint.Choice: ExpressibleByArgument {}
