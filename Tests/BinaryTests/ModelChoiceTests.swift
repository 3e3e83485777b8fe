import Foundation
import Testing
import _TestSupport

extension BinaryTests {
  @Suite struct ModelChoiceTests {
    @Test func invalidCombinationsAreErrors() {
      let cases: [([String], String)] = [
        (["--output", "softmax", "--loss", "cross-entropy"], "applies softmax twice"),
        (["--loss", "nll"], "--loss nll takes probabilities"),
        (["--dataset", "corn", "--model", "cnn"], "--model cnn needs images"),
        (["--optimizer", "lbfgs", "--momentum", "0.9"], "--momentum does not apply to --optimizer lbfgs"),
        (["--optimizer", "adam", "--nesterov"], "--nesterov does not apply to --optimizer adam: it applies to --optimizer sgd only"),
        (["--optimizer", "sgd", "--beta1", "0.8"], "--beta1 does not apply to --optimizer sgd: it applies to --optimizer adam and adamw only"),
        (["--line-search", "backtracking"], "--line-search does not apply to --optimizer sgd: it applies to --optimizer lbfgs only"),
        (["--model", "cnn:0"], "channel counts from 1 to"),
        (["--activation", "swish"], "--activation 'swish'"),
        (["--loss", "kl"], "--loss 'kl'"),
        (["--lr-schedule", "linear"], "--lr-schedule 'linear'"),
        (["--model", "linear", "--hidden", "10"], "--hidden applies to --model mlp and cnn"),
      ]
      for (arguments, message) in cases {
        let r = DPTBinary.run(["train", "--dataset", "mnist", "--epochs", "1"] + arguments)
        #expect(r.status != 0, "\(arguments)")
        #expect(r.stderr.contains(message), "\(arguments): \(r.stderr)")
      }
    }

    @Test func courseConfigurationsTrain() throws {
      let runs: [[String]] = [
        ["--model", "cnn:4,8", "--hidden", "32"],
        ["--activation", "prelu", "--hidden", "32"],
        ["--model", "linear", "--output", "softmax", "--loss", "hinge"],
        ["--optimizer", "adamw", "--hidden", "32"],
        ["--optimizer", "lbfgs", "--hidden", "16", "--epochs", "3"],
        ["--hidden", "32", "--lr-schedule", "cosine", "--warmup-epochs", "1", "--epochs", "2"],
        ["--loss", "mse", "--model", "linear"],
      ]
      for extra in runs {
        let r = DPTBinary.mpirun(2, ["train", "--dataset", "mnist", "--epochs", "1", "--json"] + extra)
        #expect(r.status == 0, "\(extra): \(r.stderr)")
        guard r.status == 0 else { continue }
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect((o["test_acc"] as! Double) > 0.3, "\(extra): \(o["test_acc"]!)")
      }
    }
  }
}
