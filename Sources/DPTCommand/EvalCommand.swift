import ArgumentParser
import Collectives
import Datasets
import Foundation
import Training
import _Support

struct EvalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Loss and accuracy (or RMSE and R^2) of trained weights on a data set's train and test rows.",
    discussion: """
      The rows are shared out among the ranks under mpirun and the sums all-reduced, as in training.

        dpt eval --checkpoint runs/ckpt
        dpt eval --weights model.safetensors --dataset fashion-mnist --hidden 256
        mpirun -np 2 dpt eval --checkpoint runs/ckpt --json
      """.reflowed)

  @OptionGroup var source: WeightsOptions
  @OptionGroup var options: ModelRunOptions

  @Flag(help: "Print the metrics as one JSON object on stdout.")
  var json = false

  func run() throws {
    let run = try source.run(given: options)
    try Launch.withWorld { comm in
      let trainer = try source.trainer(run, comm)
      let console = Console(isRoot: comm.isRoot, jsonOutput: json)
      let d = trainer.data
      // The validation rows the run held out are reported apart from the rows it trained on.
      let train = try trainer.evaluate(d.train)!, validation = try d.validation.flatMap(trainer.evaluate), test = try trainer.evaluate(d.test)
      let m = EpochMetrics(epoch: 0, task: d.train.task, train: train, validation: validation, test: test, seconds: 0, samples: 0,
                           evaluationSeconds: 0, learningRate: 0)
      if json {
        guard case .object(let fields) = m.record.json else { return }
        let kept = fields.filter { !["epoch", "seconds", "samples_per_sec", "eval_seconds", "lr", "evaluations"].contains($0.0) }
        let weights: [(String, JSON)] = [("weights", JSON(run.weightsPath)), ("weights_epoch", run.checkpoint.map { JSON($0.epoch) } ?? .null)]
        console.result(JSON.object([("dataset", JSON(d.name)), ("model", JSON(trainer.config.model.description))] + weights
                                   + [("train_samples", JSON(d.train.count))]
                                   + (d.validation.map { [("validation_samples", JSON($0.count))] } ?? [])
                                   + [("test_samples", JSON(d.test.count))] + kept).serialized())
        return
      }
      console.say(run.weightsNote)
      console.say("\(d.name): \(trainer.config.model) (\(trainer.network.parameterCount) parameters), \(trainer.config.loss) | \(counted(comm.size, "rank"))")
      func line(_ name: String, _ e: Evaluation?) -> String {
        let label = name.padding(toLength: 10, withPad: " ", startingAt: 0)
        guard let e else { return label + " (no rows)" }
        let metric = d.train.task == .classification
          ? String(format: "accuracy %.4f", e.accuracy) : "RMSE \(String(format: "%.6g", e.rmse))  R^2 \(NumberText.fixed(e.r2))"
        // A text's loss and accuracy are over every position of its windows.
        let positions = d.train.labelsPerSample
        let rows = positions > 1 ? "\(counted(e.count / positions, "window")) of \(positions) positions" : counted(e.count, "sample")
        return "\(label) loss \(String(format: "%.6g", e.loss))  \(metric)  (\(rows))"
      }
      console.say(line("train", train))
      if let validation { console.say(line("validation", validation)) }
      console.say(line("test", test))
    }
  }
}
