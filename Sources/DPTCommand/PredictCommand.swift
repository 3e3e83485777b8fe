import ArgumentParser
import Collectives
import Datasets
import FileFormats
import Foundation
import Layers
import Training
import _Support

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
    let run = try source.run(given: options)
    try Launch.withWorld { comm in
      try comm.agree(describing: ErrorMessages.line) {
        guard comm.isRoot else { return }
        try OutputPaths.file(output, flag: "--output")
        let inputs = run.source.files.map { OutputPaths.Input(flag: "--dataset", path: $0) }
          + [source.checkpoint.map { OutputPaths.Input(flag: "--checkpoint", path: Checkpoint.path($0)) },
             source.weights.map { OutputPaths.Input(flag: "--weights", path: $0) }].compactMap { $0 }
        try OutputPaths.checkInputs(inputs, outputs: [("--output", [output])])
      }
      let trainer = try source.trainer(run, comm)
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
            var p = y
            if !trainer.config.model.endsInSoftmax { Double.softmaxRows(y, &p, rows: 1, cols: y.count) }
            let predicted = p.indices.max { p[$0] < p[$1] } ?? 0
            text += "\(row),\(set.labels[i]),\(predicted)," + p.map { String(format: "%.6g", $0) }.joined(separator: ",") + "\n"
          } else {
            let w = set.targetWidth
            let target = (0..<w).map { set.targets[i * w + $0] }
            text += "\(row)," + target.map { "\($0)" }.joined(separator: ",") + "," + y.map { "\($0)" }.joined(separator: ",") + "\n"
          }
        }
      }
      try Files.writeAtomically(text, to: output)
      FileHandle.standardOutput.write(Data("wrote \(output): \(counted(row, "prediction")) of \(d.name) (\(rows) rows)\n".utf8))
    }
  }
}
