// The course's 2-3-1 network, written in code with dpt as a library: ReLU hidden units, a tanh output, the loss
// 0.5 (y - t)^2 on one example, three steps of gradient descent from the hand-out's weights, every value printed.
//
//   swift run -c release HandOutExample
import DPT
import Foundation

let data = DataSplit(name: "hand-out", train: .table(features: [[1, 2]], targets: [[0.5]]))
let model = Sequential(.dense(3), .relu, .dense(1), .tanh)
let config = TrainingConfig(model: ModelSpec(model), loss: .halfMSE,
                            optimizer: OptimizerSpec(learningRate: 0.1), batchSize: 1, epochs: 3)
let trainer = try Trainer<Double>(config: config, data: data, communicator: LocalCommunicator())
// The hand-out's weights, named and shaped as PyTorch's state_dict (a dense weight is outputs x inputs).
try trainer.loadStateDict([("0.weight", [3, 2], [0.1, 0.2, -0.3, 0.4, 0.5, -0.6]), ("0.bias", [3], [0.1, 0.1, 0.1]),
                           ("2.weight", [1, 3], [0.7, -0.8, 0.9]), ("2.bias", [1], [0.05])])
// Each step layer by layer: s (input), z (output), delta = dL/dz, and the weights with their gradients.
var lines: [JSON] = []
/// A traced tensor at the hand-out's precision (six significant digits): nested lists of numbers.
func text(_ v: JSON) -> String {
  if let a = v.array { return "[" + a.map(text).joined(separator: ",") + "]" }
  return v.double.map { String(format: "%.6g", $0) } ?? v.serialized()
}
trainer.trace = StepTrace(steps: config.epochs, limit: nil, write: { lines.append(try JSON.parse($0)) })
print("\(model) on \(data.train.count) example, loss 0.5 (y - t)^2, lr \(config.optimizer.learningRate)")
for _ in 0..<config.epochs {
  let m = try trainer.runEpoch()
  for line in lines {
    if let loss = line["loss"]?.double {
      print(String(format: "  loss %.6f (after the step: %.6f)", loss, m.train.loss))
      continue
    }
    let values = ["output", "grad_output", "grad_weight"].compactMap { key -> String? in
      guard let v = line[key] else { return nil }
      return "\(key == "output" ? "z" : key == "grad_output" ? "delta" : "dW") \(text(v))"
    }
    print("step \(line["step"]!.serialized()) layer \(line["layer"]!.serialized()) \(line["name"]!.string!): " + values.joined(separator: "  "))
  }
  lines = []
}
print("trained: " + (try trainer.stateDict()).map { "\($0.name) \($0.values.map { String(format: "%.6f", $0) }.joined(separator: " "))" }
  .joined(separator: ", "))
