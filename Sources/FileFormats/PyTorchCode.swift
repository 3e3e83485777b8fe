import Datasets
import Foundation
import Layers

/// The Python code of a `torch.nn.Sequential` with a model's layers, whose `state_dict` names and shapes are those of
/// `dpt export` (item i of the list is module i), so that `load_state_dict` takes the exported file strictly.
public enum PyTorchCode {
  /// The module for `items`, sized by the checkpoint's tensors (a dense layer's inputs, a convolution's input channels
  /// and a BatchNorm's or PReLU's channels are read off their weights). `weights` is the exported file `load()` reads.
  /// `summaries` are the layers' own descriptions (the checkpoint's network: "batchnorm2d(6)" says which BatchNorm).
  /// `transform`, the input transform the model was trained with, becomes the first module of what `load()` returns,
  /// so that `load()(raw_rows)` computes what `dpt predict` does on the same rows; `model()` stays the bare Sequential.
  public static func sequential(_ items: [LayerItem], summaries: [String], tensors: [(name: String, shape: [Int], layer: String)],
                                weights: String, source: String, transform: InputTransform? = nil) throws -> String {
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
    // Every text from outside (paths, names) reaches the file through `pythonString` alone, comments included.
    var code = """
      \(firstLine): the model as a torch.nn.Sequential whose state_dict names and shapes are
      # those of the exported weights, so load_state_dict takes them strictly.
      #   weights: \(pythonString(weights))
      #   from: \(pythonString(source))
      #   from model import load; net = load(); y = net(x)   # x: raw rows, (batch, features) or (batch, channels, height, width)
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


      \(inputModule(transform))

      def load(path=\(pythonString(weights))):
          \"\"\"The model with the exported weights, in evaluation mode (BatchNorm's running statistics, no dropout),
          after the input transform it was trained with: it takes raw rows, as dpt predict does.\"\"\"
          from safetensors.torch import load_file
          net = model()
          net.load_state_dict(load_file(path), strict=True)
          return nn.Sequential(InputTransform(), net).eval()

      """
    return code
  }

  /// The generated file's first line, by which a later export knows the file as its own.
  public static let firstLine = "# Written by `dpt export --pytorch`"

  /// The module that applies the training rows' transform to raw inputs (identity when there is none).
  static func inputModule(_ t: InputTransform?) -> String {
    func list(_ v: [Double]) -> String { "[" + v.map { "\($0)" }.joined(separator: ", ") + "]" }
    let setup: String, body: String, what: String
    switch t?.scaling ?? InputTransform.Scaling.none {
    case .none:
      (what, setup, body) = ("the features as given", "", "return torch.as_tensor(x, dtype=torch.float32)")
    case .standardize(let s):
      what = "(x - mean) / std per feature, the training rows' statistics"
      setup = """
        self.register_buffer("mean", torch.tensor(\(list(s.mean)), dtype=torch.float64), persistent=False)
                self.register_buffer("std", torch.tensor(\(list(s.std)), dtype=torch.float64), persistent=False)
        """
      body = "return ((torch.as_tensor(x, dtype=torch.float64) - self.mean) / self.std).to(torch.float32)"
    case .divide(let d):
      (what, setup, body) = ("pixel bytes 0-255 divided by \(d)", "", "return torch.as_tensor(x, dtype=torch.float32) / \(d)")
    }
    return """
      class InputTransform(nn.Module):
          \"\"\"dpt's input transform: \(what).\"\"\"
          def __init__(self):
              super().__init__()
              \(setup.isEmpty ? "pass" : setup)

          def forward(self, x):
              \(body)

      """
  }

  /// `s` as a Python string literal of printable ASCII only: quotes and backslashes escaped, every other character
  /// outside space to '~' (newlines, carriage returns, NUL, any non-ASCII character) as \\x, \\u or \\U escapes, so
  /// that no text can end the literal, or a comment that holds it, and start code of its own.
  public static func pythonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
      switch u {
      case "\\": out += "\\\\"
      case "\"": out += "\\\""
      case " "..."~": out.unicodeScalars.append(u)
      default:
        let v = u.value
        out += v < 0x100 ? String(format: "\\x%02x", v) : v < 0x10000 ? String(format: "\\u%04x", v) : String(format: "\\U%08x", v)
      }
    }
    return out + "\""
  }
}
