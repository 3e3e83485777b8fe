import Foundation
import Layers

/// The Python code of a `torch.nn.Sequential` with a model's layers, whose `state_dict` names and shapes are those of
/// `dpt export` (item i of the list is module i), so that `load_state_dict` takes the exported file strictly.
public enum PyTorchCode {
  /// The module for `items`, sized by the checkpoint's tensors (a dense layer's inputs, a convolution's input channels
  /// and a BatchNorm's or PReLU's channels are read off their weights). `weights` is the exported file `load()` reads.
  /// `summaries` are the layers' own descriptions (the checkpoint's network: "batchnorm2d(6)" says which BatchNorm).
  public static func sequential(_ items: [LayerItem], summaries: [String], tensors: [(name: String, shape: [Int], layer: String)],
                                weights: String, source: String) throws -> String {
    func shape(_ i: Int, _ name: String) throws -> [Int] {
      guard let t = tensors.first(where: { $0.name == "\(i).\(name)" }) else {
        throw WeightsProblem.malformed("the checkpoint has no tensor '\(i).\(name)' for item \(i + 1) '\(items[i])' of its model")
      }
      return t.shape
    }
    var modules: [String] = []
    var requ = false
    for (i, item) in items.enumerated() {
      switch item {
      case .dense(let n):
        let w = try shape(i, "weight")  // dpt's (inputs, outputs)
        modules.append("nn.Linear(\(w[0]), \(n))")
      case .conv2d(let c, let k, let s, let p):
        let w = try shape(i, "weight")  // (out, in, k, k), as PyTorch's
        modules.append("nn.Conv2d(\(w[1]), \(c), kernel_size=\(k), stride=\(s), padding=\(p))")
      case .maxpool2d(let k, let s): modules.append("nn.MaxPool2d(\(k), stride=\(s))")
      case .avgpool2d(let k, let s): modules.append("nn.AvgPool2d(\(k), stride=\(s))")
      case .flatten: modules.append("nn.Flatten()")
      case .dropout(let p): modules.append("nn.Dropout(p=\(p))")
      case .batchnorm(let m, let e, _):
        let w = try shape(i, "weight")
        let twoD = summaries.indices.contains(i) && summaries[i].hasPrefix("batchnorm2d")
        modules.append("nn.BatchNorm\(twoD ? 2 : 1)d(\(w[0]), eps=\(e), momentum=\(m))")
      case .activation(let a):
        switch a {
        case .identity: modules.append("nn.Identity()")
        case .sigmoid: modules.append("nn.Sigmoid()")
        case .tanh: modules.append("nn.Tanh()")
        case .relu: modules.append("nn.ReLU()")
        case .leakyReLU(let slope): modules.append("nn.LeakyReLU(negative_slope=\(slope))")
        case .requ:
          requ = true
          modules.append("ReQU()")
        }
      case .prelu:
        let w = try shape(i, "slope")
        modules.append("nn.PReLU(num_parameters=\(w[0]))")
      case .softmax: modules.append("nn.Softmax(dim=1)")
      }
    }
    var code = """
      # Written by `dpt export --pytorch` from \(source): the model as a torch.nn.Sequential whose state_dict names
      # and shapes are those of the exported weights (\(weights)), so load_state_dict takes them strictly.
      #   from model import load; net = load(); y = net(x)   # x: (batch, features) or (batch, channels, height, width)
      import torch
      from torch import nn

      """
    if requ {
      code += """

        class ReQU(nn.Module):
            \"\"\"max(0, x)^2, dpt's requ.\"\"\"
            def forward(self, x):
                return torch.relu(x) ** 2

        """
    }
    code += """

      def model():
          return nn.Sequential(
      \(modules.map { "        " + $0 + "," }.joined(separator: "\n"))
          )


      def load(path=\(pythonString(weights))):
          \"\"\"The model with the exported weights, in evaluation mode (BatchNorm's running statistics, no dropout).\"\"\"
          from safetensors.torch import load_file
          net = model()
          net.load_state_dict(load_file(path), strict=True)
          return net.eval()

      """
    return code
  }

  static func pythonString(_ s: String) -> String {
    "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
  }
}
