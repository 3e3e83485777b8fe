import Foundation
import Testing
import _TestSupport

extension BinaryTests {
  /// PyTorch as the oracle (scripts/torch_oracle.py): torch.nn.Sequential's initial weights go into
  /// `dpt train --init`, both take the same full-batch steps on the same table, and every parameter dpt exports must
  /// equal PyTorch's to 1e-5 relative (of the tensor's largest magnitude). Every optimizer with cross-entropy,
  /// every loss with SGD (the course's hinge as C x MultiMarginLoss, --hinge-reduction mean as MultiMarginLoss
  /// itself), Adam and L-BFGS on a regression loss, L-BFGS with a first step ten times too long (its zoom), and the
  /// layers of lists (BatchNorm 1d and 2d with their running statistics, average pooling, dropout, output activations,
  /// half-MSE summed), and the open models' layers (issue 29): bias-free dense with LayerNorm and GELU, ResNet blocks
  /// with a projection shortcut and BatchNorm on 2 ranks, a character GPT block (AdamW, clipping) on 1 and 2 ranks.
  /// scripts/test installs torch==2.13.0 (CPU) when it is missing.
  @Suite struct PyTorchOracleTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("scripts/torch_oracle.py").path

    @Test func everyOptimizerAndLossMatchesPyTorch() throws {
      let r = Subprocess.run(["python3", Self.script, "--dpt", DPTBinary.path, "--steps", "10"], timeout: 600)
      #expect(!r.timedOut)
      #expect(!r.stderr.contains("No module named 'torch'"), "PyTorch is missing: scripts/test installs it (pip install torch==2.13.0)")
      let results = try r.stdout.split(separator: "\n").map {
        try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
      }
      for result in results {
        #expect(result["error"] == nil, "\(result)")
        let difference = result["max_relative_difference"] as? Double ?? .infinity
        #expect(difference <= 1e-5, "\(result["case"] ?? "?"): \(difference)")
        // The steps must have moved the weights, or equality would prove nothing.
        #expect((result["largest_change_from_init"] as? Double ?? 0) > 0.05, "\(result)")
      }
      let optimizers = Set(results.compactMap { ($0["optimizer"] as? String)?.split(separator: "-").first.map(String.init) })
      #expect(optimizers == ["sgd", "adagrad", "rmsprop", "adam", "adamw", "lbfgs"], "\(optimizers)")
      let losses = Set(results.compactMap { $0["loss"] as? String })
      #expect(losses == ["cross-entropy", "nll", "hinge", "hinge-mean", "mse", "l1", "huber", "cosine", "half-mse-sum"], "\(losses)")
      // Every layer of a list against PyTorch: BatchNorm1d (SGD, Adam, L-BFGS), BatchNorm2d with average pooling on
      // images, dropout with dpt's masks, sigmoid and tanh at the output.
      let models = Set(results.compactMap { $0["model"] as? String })
      #expect(models == ["mlp", "batchnorm1d", "batchnorm-momentum", "dropout", "cnn-batchnorm2d-avgpool", "sigmoid-output",
                         "relu-tanh-output", "bias-free-layernorm-gelu", "resnet-blocks", "gpt-block", "attention-not-causal"], "\(models)")
      // Issue 29: ResNet blocks and the GPT block on 2 ranks too, and clipping that binds.
      let twoRanks = Set(results.filter { ($0["ranks"] as? Int) == 2 }.compactMap { $0["model"] as? String })
      #expect(twoRanks == ["resnet-blocks", "gpt-block"], "\(twoRanks)")
      for clipped in results where clipped["steps_clipped"] != nil {
        #expect((clipped["steps_clipped"] as? Int ?? 0) > 0, "\(clipped)")
      }
      #expect(r.status == 0, "\(r.stderr)")
    }
  }
}
