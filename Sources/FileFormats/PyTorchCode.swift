import Datasets
import Foundation
import Layers

/// The Python code of a `torch.nn.Sequential` with a model's layers, whose `state_dict` names and shapes are those of
/// `dpt export` (item i of the list is module i), so that `load_state_dict` takes the exported file strictly.
public enum PyTorchCode {
  /// The file for `module`, the network's `nn.Sequential` (from its layers' `pytorch`: item i of the list is module
  /// i), whose classes beyond `torch.nn` are defined once each. `weights` is the exported file `load()` reads.
  /// `transform`, the input transform the model was trained with, becomes the first module of what `load()` returns,
  /// so that `load()(raw_rows)` computes what `dpt predict` does on the same rows; `model()` stays the bare Sequential.
  public static func sequential(_ module: PyTorchModule, weights: String, source: String, transform: InputTransform? = nil) -> String {
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
    for name in module.classes.keys.sorted() {
      code += "\n" + module.classes[name]! + "\n"
    }
    code += """

      def model():
          return \(module.code.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n    "))


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
