import ArgumentParser
import Collectives
import Datasets
import Foundation
import Training

/// Where `eval` and `predict` take trained weights from: a checkpoint (whose config also names the model and the
/// data it was trained on) or a safetensors file in `dpt export`'s layout (the model then comes from the flags).
struct WeightsOptions: ParsableArguments {
  @Option(help: ArgumentHelp("A --checkpoint-dir folder (or checkpoint file): its weights, model and data set.", valueName: "dir"))
  var checkpoint: String?

  @Option(help: ArgumentHelp("A .safetensors file in `dpt export`'s layout (PyTorch's names and shapes); the model comes from --model, --hidden, ... as for train.", valueName: "file"))
  var weights: String?

  func validate() throws {
    if (checkpoint == nil) == (weights == nil) { throw ValidationError("give one of --checkpoint DIR and --weights FILE.safetensors") }
  }

  /// The training options to build the model and load the data with. With --checkpoint: the model, the loss, the
  /// data set and its split as the checkpoint's config recorded them, then the flags given on the command line
  /// (which may name another --dataset, e.g. to evaluate on other rows of the same shape).
  func trainingOptions(given: TrainingOptions, commandLine: [String]) throws -> TrainingOptions {
    guard let checkpoint else { return given }
    let path = Checkpoint.path(checkpoint)
    let c = try Checkpoint(decoding: try Checkpoint.readBytes(checkpoint), path: path)
    var own = commandLine
    // Leave out this command's own options (they are not training options).
    for (flag, takesValue) in [("--checkpoint", true), ("--weights", true), ("--output", true), ("--rows", true), ("--json", false)] {
      while let i = own.firstIndex(where: { $0 == flag || $0.hasPrefix(flag + "=") }) {
        own.removeSubrange(i..<min(own.count, i + (takesValue && own[i] == flag ? 2 : 1)))
      }
    }
    do {
      return try TrainingOptions.parse(Self.arguments(fromConfig: c.config) + own)
    } catch {
      throw CommandError("\(path): its config does not make a model here (\(TrainingOptions.message(for: error)))")
    }
  }

  /// The flags that rebuild a run's model, loss and data split from its config.json.
  static func arguments(fromConfig c: JSON) -> [String] {
    var a: [String] = []
    if let d = c["dataset"]?.string { a += ["--dataset", d] }
    if let f = c["test_fraction"]?.double { a += ["--test-fraction", "\(f)"] }
    if let t = c["target"]?.string {
      a += t == "class" ? ["--target", "class"] : ["--target", "value"] + (t.hasPrefix("value:") ? ["--targets", String(t.dropFirst(6))] : [])
    }
    if case .bool(let s)? = c["standardize"] { a.append(s ? "--standardize" : "--no-standardize") }
    if let seed = c["seed"]?.double { a += ["--seed", String(Int(seed))] }
    let channels = c["channels"]?.array?.compactMap { $0.double.map { String(Int($0)) } } ?? []
    if let m = c["model"]?.string { a += ["--model", m == "cnn" && !channels.isEmpty ? "cnn:" + channels.joined(separator: ",") : m] }
    let hidden = c["hidden"]?.array?.compactMap { $0.double.map { String(Int($0)) } } ?? []
    if !hidden.isEmpty { a += ["--hidden", hidden.joined(separator: ",")] }
    if let k = c["kernel_size"]?.double { a += ["--kernel-size", String(Int(k))] }
    if let act = c["activation"]?.string {
      // "leaky-relu(0.01)": the name, and the slope as --leaky-slope.
      let name = String(act.prefix { $0 != "(" })
      a += ["--activation", name]
      if name == "leaky-relu", let open = act.firstIndex(of: "(") { a += ["--leaky-slope", String(act[act.index(after: open)...].prefix { $0 != ")" })] }
    }
    if case .bool(true)? = c["output_softmax"] { a += ["--output-layer", "softmax"] }
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

  /// The run's trainer with the weights loaded: data and model built on every rank (inside `agree`), the weights read
  /// by rank 0 and broadcast.
  func trainer(_ options: TrainingOptions, _ comm: any Communicator) throws -> Trainer<Float> {
    let config = try options.makeConfig()
    let bytes = try comm.agree { () throws -> [UInt8] in
      guard comm.isRoot else { return [] }
      if let checkpoint {
        let path = Checkpoint.path(checkpoint)
        return try SafeTensors.encode(try Checkpoint(decoding: try Checkpoint.readBytes(checkpoint), path: path), pytorchLayout: true)
      }
      return try FileBytes.read(weights!)
    }
    let trainer = try comm.agree { () throws -> Trainer<Float> in
      let data = try options.data.load(validation: 0)
      let trainer = try Trainer<Float>(config: config, data: data, communicator: comm, synchronize: false)
      if comm.isRoot {
        let path = checkpoint.map(Checkpoint.path) ?? weights!
        trainer.parameters = try SafeTensors.parameters(for: trainer.network, from: try SafeTensorsFile(decoding: bytes, path: path), path: path)
      }
      return trainer
    }
    try trainer.synchronizeParameters()
    return trainer
  }
}

struct EvalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Loss and accuracy (or RMSE and R^2) of trained weights on a data set's train and test rows.",
    discussion: """
      The rows are shared out among the ranks under mpirun and the sums all-reduced, as in training.

        dpt eval --checkpoint runs/ckpt
        dpt eval --weights model.safetensors --dataset fashion-mnist --hidden 256
        mpirun -np 2 dpt eval --checkpoint runs/ckpt --json
      """)

  @OptionGroup var source: WeightsOptions
  @OptionGroup var options: TrainingOptions

  @Flag(help: "Print the metrics as one JSON object on stdout.")
  var json = false

  func run() throws {
    let options = try source.trainingOptions(given: self.options, commandLine: Array(CommandLine.arguments.drop { $0 != "eval" }.dropFirst()))
    try Launch.withWorld { comm in
      let trainer = try source.trainer(options, comm)
      let console = Console(isRoot: comm.isRoot, jsonOutput: json)
      let d = trainer.data
      let train = try trainer.evaluate(d.train)!, test = try trainer.evaluate(d.test)
      let m = EpochMetrics(epoch: 0, task: d.train.task, train: train, test: test, seconds: 0, samples: 0,
                           evaluationSeconds: 0, learningRate: 0)
      if json {
        guard case .object(let fields) = m.json else { return }
        let kept = fields.filter { !["epoch", "seconds", "samples_per_sec", "eval_seconds", "lr", "evaluations"].contains($0.0) }
        console.result(JSON.object([("dataset", JSON(d.name)), ("model", JSON(trainer.config.model.description)),
                                    ("train_samples", JSON(d.train.count)), ("test_samples", JSON(d.test.count))] + kept).serialized())
        return
      }
      console.say("\(d.name): \(trainer.config.model) (\(trainer.network.parameterCount) parameters), \(trainer.config.loss) | \(counted(comm.size, "rank"))")
      func line(_ name: String, _ e: Evaluation?) -> String {
        guard let e else { return name.padding(toLength: 6, withPad: " ", startingAt: 0) + " (no rows)" }
        let metric = d.train.task == .classification
          ? String(format: "accuracy %.4f", e.accuracy) : String(format: "RMSE %.6g  R^2 %.4f", e.rmse, e.r2)
        return "\(name.padding(toLength: 6, withPad: " ", startingAt: 0)) loss \(String(format: "%.6g", e.loss))  \(metric)  (\(counted(e.count, "sample")))"
      }
      console.say(line("train", train))
      console.say(line("test", test))
    }
  }
}

struct PredictCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict",
    abstract: "Write the model's prediction for every row of a data set to a CSV file.",
    discussion: """
      One row per sample of the chosen rows, in their order: row, then for class labels label, predicted and one
      probability per class (softmax of the outputs); for real targets each target and its prediction.

        dpt predict --checkpoint runs/ckpt --output predictions.csv
        dpt predict --weights model.safetensors --dataset csv:new.csv --rows all \\
          --output predictions.csv
      """)

  // Before the training options: their --output (a softmax layer after the model) is --output-layer here.
  @Option(help: ArgumentHelp("The CSV file to write.", valueName: "file"))
  var output: String

  @OptionGroup var source: WeightsOptions
  @OptionGroup var options: TrainingOptions

  @Option(help: "Which rows: test | train | all (train then test).")
  var rows: String = "test"

  func validate() throws {
    guard ["test", "train", "all"].contains(rows) else { throw ValidationError("--rows '\(rows)': use test, train or all") }
  }

  func run() throws {
    let options = try source.trainingOptions(given: self.options, commandLine: Array(CommandLine.arguments.drop { $0 != "predict" }.dropFirst()))
    try Launch.withWorld { comm in
      try comm.agree { if comm.isRoot { try OutputPaths.file(output, flag: "--output") } }
      let trainer = try source.trainer(options, comm)
      guard comm.isRoot else { return }
      let d = trainer.data
      let sets = rows == "all" ? [d.train, d.test] : rows == "train" ? [d.train] : [d.test]
      let classification = d.train.task == .classification
      var text: String
      if classification {
        text = "row,label,predicted," + (0..<d.train.classCount).map { "p\($0)" }.joined(separator: ",") + "\n"
      } else {
        let w = d.train.targetWidth
        text = "row," + (0..<w).map { w == 1 ? "target" : "target\($0 + 1)" }.joined(separator: ",") + ","
          + (0..<w).map { w == 1 ? "prediction" : "prediction\($0 + 1)" }.joined(separator: ",") + "\n"
      }
      var row = 0
      for set in sets {
        for (i, y) in trainer.outputs(set, rows: 0..<set.count).enumerated() {
          row += 1
          if classification {
            // The outputs are logits unless the model ends in softmax; either way report probabilities.
            let p: [Double]
            if trainer.config.model.outputSoftmax { p = y } else {
              let top = y.max() ?? 0, e = y.map { Foundation.exp($0 - top) }, sum = e.reduce(0, +)
              p = e.map { $0 / sum }
            }
            let predicted = p.indices.max { p[$0] < p[$1] } ?? 0
            text += "\(row),\(set.labels[i]),\(predicted)," + p.map { String(format: "%.6g", $0) }.joined(separator: ",") + "\n"
          } else {
            let w = set.targetWidth
            let target = (0..<w).map { set.targets[i * w + $0] }
            text += "\(row)," + target.map { "\($0)" }.joined(separator: ",") + "," + y.map { "\($0)" }.joined(separator: ",") + "\n"
          }
        }
      }
      try RunLog.writeAtomically(text, to: output)
      FileHandle.standardOutput.write(Data("wrote \(output): \(counted(row, "prediction")) of \(d.name) (\(rows) rows)\n".utf8))
    }
  }
}
