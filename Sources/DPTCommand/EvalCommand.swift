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
      """)

  @OptionGroup var source: WeightsOptions
  @OptionGroup var options: TrainingOptions

  @Flag(help: "Print the metrics as one JSON object on stdout.")
  var json = false

  func run() throws {
    let run = try source.run(given: options)
    try Launch.withWorld { comm in
      let trainer = try source.trainer(run, comm)
      let console = Console(isRoot: comm.isRoot, jsonOutput: json)
      let d = trainer.data
      let train = try trainer.evaluate(d.train)!, test = try trainer.evaluate(d.test)
      let m = EpochMetrics(epoch: 0, task: d.train.task, train: train, test: test, seconds: 0, samples: 0,
                           evaluationSeconds: 0, learningRate: 0)
      if json {
        guard case .object(let fields) = m.record.json else { return }
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
