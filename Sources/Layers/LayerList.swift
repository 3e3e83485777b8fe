import TensorCore

/// One item of a model written as a list of layers, in PyTorch's vocabulary (`dense(256), relu, dense(10)`); a
/// network is the list's layers in order, and its state_dict names are their indices ("0.weight", "3.running_mean").
/// Input sizes are inferred: each layer takes the shape the previous one gives.
public enum LayerItem: Equatable, Sendable, Codable, CustomStringConvertible {
  /// y = x W + b with `units` outputs (`torch.nn.Linear`); alias `linear(N)`.
  case dense(units: Int)
  /// `torch.nn.Conv2d(in, channels, kernel, stride, padding)`.
  case conv2d(channels: Int, kernel: Int, stride: Int, padding: Int)
  case maxpool2d(kernel: Int, stride: Int)
  case avgpool2d(kernel: Int, stride: Int)
  case flatten
  /// Inverted dropout with probability p (off in evaluation).
  case dropout(p: Double)
  /// BatchNorm1d after a dense layer, BatchNorm2d after a convolution; `dimensions` 1 or 2 when written so
  /// (batchnorm1d, batchnorm2d), nil for `batchnorm` (decided by the shape).
  case batchnorm(momentum: Double, eps: Double, dimensions: Int?)
  case activation(Activation)
  /// Learnable slopes, one per unit or channel.
  case prelu
  case softmax

  public var name: String {
    switch self {
    case .dense: "dense"
    case .conv2d: "conv2d"
    case .maxpool2d: "maxpool2d"
    case .avgpool2d: "avgpool2d"
    case .flatten: "flatten"
    case .dropout: "dropout"
    case .batchnorm(_, _, let d): d.map { "batchnorm\($0)d" } ?? "batchnorm"
    case .activation(let a): LayerItem.activationName(a)
    case .prelu: "prelu"
    case .softmax: "softmax"
    }
  }

  static func activationName(_ a: Activation) -> String {
    switch a {
    case .leakyReLU: "leaky-relu"
    default: a.description
    }
  }

  /// The item as the list writes it: `conv2d(6, 5, padding=2)`, `batchnorm(momentum=0.05)`.
  public var description: String {
    func number(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)" }
    switch self {
    case .dense(let n): return "dense(\(n))"
    case .conv2d(let c, let k, let s, let p):
      return "conv2d(\(c), \(k)" + (s != 1 ? ", stride=\(s)" : "") + (p != 0 ? ", padding=\(p)" : "") + ")"
    case .maxpool2d(let k, let s): return "maxpool2d(\(k)" + (s != k ? ", stride=\(s)" : "") + ")"
    case .avgpool2d(let k, let s): return "avgpool2d(\(k)" + (s != k ? ", stride=\(s)" : "") + ")"
    case .dropout(let p): return "dropout(\(number(p)))"
    case .batchnorm(let m, let e, _):
      let args = (m != 0.1 ? ["momentum=\(number(m))"] : []) + (e != 1e-5 ? ["eps=\(e)"] : [])
      return name + (args.isEmpty ? "" : "(" + args.joined(separator: ", ") + ")")
    case .activation(.leakyReLU(let a)): return "leaky-relu(\(number(a)))"
    default: return name
    }
  }

  /// Whether the item has parameters to learn.
  public var hasParameters: Bool {
    switch self {
    case .dense, .conv2d, .batchnorm, .prelu: true
    default: false
    }
  }
}

/// The layers' errors, told in values: the item (from 1) and its text (0 and "" for the list as a whole).
public enum LayerError: Error, Equatable, CustomStringConvertible {
  /// A list written wrong: what the item needs; `line` for a file.
  case written(item: Int, text: String, reason: String, line: Int?)
  /// A layer that does not fit the shape it receives, or a list whose output does not fit the data.
  case shape(item: Int, text: String, reason: String)
  /// Batch statistics (BatchNorm) of a batch with one value per channel.
  case batchTooSmall(item: Int, text: String, samples: Int)

  public var description: String {
    switch self {
    case .written(let item, let text, let reason, let line): (line.map { "line \($0), " } ?? "") + "item \(item) '\(text)': \(reason)"
    case .shape(let item, let text, let reason): item > 0 ? "item \(item) '\(text)': \(reason)" : reason
    case .batchTooSmall(let item, let text, let samples):
      "item \(item) '\(text)': batch statistics need more than one value per channel; this batch has \(samples) sample"
    }
  }
}

/// Layer lists: parsing the text (`--model`, `--model-file`), and building the layers for a data shape.
public enum LayerList {
  /// The largest width, channel count or kernel a list may name (far beyond any machine's memory for one layer, yet
  /// small enough that no product of shapes overflows before the memory check).
  public static let largest = 1 << 24

  /// The names the list understands, for messages.
  public static let names = ["dense(N)", "conv2d(C, k, stride=1, padding=0)", "maxpool2d(k)", "avgpool2d(k)", "flatten",
                             "dropout(p)", "batchnorm", "relu", "tanh", "sigmoid", "leaky-relu(slope)", "prelu", "requ",
                             "softmax", "identity"]

  /// Parses a list: items separated by commas (and, with `file`, newlines), arguments in parentheses, `#` to the end
  /// of a line a comment. Lines may end in \n, \r\n or \r (a file from Windows), and a leading byte-order mark is
  /// not part of the first item.
  public static func parse(_ text: String, file: Bool = false) throws -> [LayerItem] {
    var items: [(text: String, line: Int)] = []
    var current = "", depth = 0, line = 1, itemLine = 1, comment = false
    func finish() {
      let t = current.trimmed
      if !t.isEmpty { items.append((t, itemLine)) }
      current = ""
    }
    // "\r\n" is one Character in Swift: it never equals "\n".
    for ch in text.hasPrefix("\u{FEFF}") ? text.dropFirst() : text[...] {
      if ch == "\n" || ch == "\r\n" || ch == "\r" {
        comment = false
        if depth == 0 { finish() } else { current.append(" ") }
        line += 1
        continue
      }
      if comment { continue }
      if ch == "#" { comment = true; continue }
      if current.trimmed.isEmpty { itemLine = line }
      switch ch {
      case "(": depth += 1; current.append(ch)
      case ")": depth -= 1; current.append(ch)
      case "," where depth == 0: finish()
      default: current.append(ch)
      }
    }
    finish()
    guard !items.isEmpty else {
      throw LayerError.written(item: 0, text: "", reason: "the list is empty: name the layers, e.g. \"dense(256), relu, dense(10)\"", line: nil)
    }
    return try items.enumerated().map { k, item in
      do { return try parseItem(item.text) } catch let reason as Reason {
        throw LayerError.written(item: k + 1, text: item.text, reason: reason.text, line: file ? item.line : nil)
      }
    }
  }

  struct Reason: Error { var text: String }

  /// One item: `name` or `name(arguments)`.
  static func parseItem(_ text: String) throws -> LayerItem {
    var name = text, args = ""
    if let open = text.firstIndex(of: "(") {
      guard text.hasSuffix(")"), text.filter({ $0 == "(" }).count == 1, text.filter({ $0 == ")" }).count == 1 else {
        throw Reason(text: "unbalanced parentheses: write name(arguments)")
      }
      name = String(text[..<open])
      args = String(text[text.index(after: open)..<text.index(before: text.endIndex)])
    } else if text.contains(")") {
      throw Reason(text: "unbalanced parentheses: write name(arguments)")
    }
    name = name.trimmed.lowercased().map { $0 == "_" ? "-" : $0 }.reduce(into: "") { $0.append($1) }
    var positional: [Double] = [], keywords: [String: Double] = [:]
    if !args.trimmed.isEmpty {
      for part in args.split(separator: ",", omittingEmptySubsequences: false) {
        let p = part.trimmed
        if let eq = p.firstIndex(of: "=") {
          let key = p[..<eq].trimmed, value = p[p.index(after: eq)...].trimmed
          guard let v = Double(value), v.isFinite else { throw Reason(text: "\(key)=\(value) is not a number") }
          guard keywords[key] == nil else { throw Reason(text: "\(key) is given twice") }
          keywords[key] = v
        } else {
          guard keywords.isEmpty else { throw Reason(text: "a positional argument after a keyword one") }
          guard let v = Double(p), v.isFinite else { throw Reason(text: "'\(p)' is not a number") }
          positional.append(v)
        }
      }
    }
    /// The arguments of an item: positional values by their names, then keywords; every one known and in range.
    func arguments(_ names: [String], required: Int, defaults: [String: Double] = [:], example: String) throws -> [String: Double] {
      guard positional.count <= names.count else {
        throw Reason(text: "\(name) takes at most \(names.count) argument\(names.count == 1 ? "" : "s") (\(names.joined(separator: ", "))), e.g. \(example)")
      }
      var values = defaults
      for (i, v) in positional.enumerated() { values[names[i]] = v }
      for (k, v) in keywords {
        guard names.contains(k) else {
          throw Reason(text: "\(name) has no argument '\(k)' (it takes \(names.joined(separator: ", "))), e.g. \(example)")
        }
        guard positional.count <= names.firstIndex(of: k)! else { throw Reason(text: "\(k) is given twice") }
        values[k] = v
      }
      let missing = names.prefix(required).filter { values[$0] == nil }
      guard missing.isEmpty else {
        let spoken = names.prefix(required).map { ["units": "a number of units", "kernel_size": "a kernel size"][$0] ?? $0 }
        let what = spoken.count == 1 ? spoken[0] : spoken.dropLast().joined(separator: ", ") + " and " + spoken.last!
        throw Reason(text: "\(name) needs \(what), e.g. \(example)")
      }
      return values
    }
    func count(_ v: Double?, _ what: String, minimum: Int = 1) throws -> Int {
      guard let v, v == v.rounded(), v >= Double(minimum), v <= Double(largest) else {
        throw Reason(text: "\(what) must be a whole number from \(minimum) to \(largest)\(v.map { " (got \(LayerList.plain($0)))" } ?? "")")
      }
      return Int(v)
    }
    func noArguments() throws {
      guard positional.isEmpty && keywords.isEmpty else { throw Reason(text: "\(name) takes no arguments") }
    }
    switch name {
    case "dense", "linear":
      let a = try arguments(["units"], required: 1, example: "dense(256)")
      return .dense(units: try count(a["units"], "the number of units"))
    case "conv2d", "conv":
      let a = try arguments(["channels", "kernel_size", "stride", "padding"], required: 2, defaults: ["stride": 1, "padding": 0],
                            example: "conv2d(6, 5)")
      return .conv2d(channels: try count(a["channels"], "the channels"), kernel: try count(a["kernel_size"], "the kernel size"),
                     stride: try count(a["stride"], "the stride"), padding: try count(a["padding"], "the padding", minimum: 0))
    case "maxpool2d", "maxpool", "avgpool2d", "avgpool":
      let a = try arguments(["kernel_size", "stride"], required: 1, example: "\(name)(2)")
      let k = try count(a["kernel_size"], "the kernel size"), s = try count(a["stride"] ?? Double(k), "the stride")
      return name.hasPrefix("max") ? .maxpool2d(kernel: k, stride: s) : .avgpool2d(kernel: k, stride: s)
    case "flatten":
      try noArguments()
      return .flatten
    case "dropout":
      let a = try arguments(["p"], required: 0, defaults: ["p": 0.5], example: "dropout(0.5)")
      guard let p = a["p"], p >= 0, p < 1 else { throw Reason(text: "p must be at least 0 and below 1 (got \(LayerList.plain(a["p"] ?? .nan)))") }
      return .dropout(p: p)
    case "batchnorm", "batchnorm1d", "batchnorm2d", "batch-norm":
      guard positional.isEmpty else { throw Reason(text: "\(name) takes keywords only: \(name)(momentum=0.1, eps=1e-5)") }
      let a = try arguments(["momentum", "eps"], required: 0, defaults: ["momentum": 0.1, "eps": 1e-5], example: "batchnorm(momentum=0.1)")
      guard let m = a["momentum"], m >= 0, m <= 1 else { throw Reason(text: "momentum must be from 0 to 1") }
      guard let e = a["eps"], e > 0 else { throw Reason(text: "eps must be > 0") }
      return .batchnorm(momentum: m, eps: e, dimensions: name == "batchnorm1d" ? 1 : name == "batchnorm2d" ? 2 : nil)
    case "relu", "tanh", "sigmoid", "requ", "identity":
      try noArguments()
      let a: Activation = ["relu": .relu, "tanh": .tanh, "sigmoid": .sigmoid, "requ": .requ, "identity": .identity][name]!
      return .activation(a)
    case "leaky-relu", "leakyrelu":
      let a = try arguments(["slope"], required: 0, defaults: ["slope": 0.01], example: "leaky-relu(0.01)")
      return .activation(.leakyReLU(slope: a["slope"]!))
    case "prelu":
      try noArguments()
      return .prelu
    case "softmax":
      try noArguments()
      return .softmax
    default:
      throw Reason(text: "unknown layer '\(name)'; use \(names.joined(separator: ", "))")
    }
  }

  /// The layers of `items` for samples of `inputShape`, checked shape by shape; the network's output must be a
  /// vector of `outputs` values (the data's classes or targets).
  public static func build<T: LayerKernels>(_ items: [LayerItem], inputShape: [Int], outputs: Int, as: T.Type = T.self) throws -> [any Layer<T>] {
    var layers: [any Layer<T>] = []
    var shape = inputShape
    for (k, item) in items.enumerated() {
      func bad(_ reason: String) -> LayerError { LayerError.shape(item: k + 1, text: item.description, reason: reason) }
      let input = shape.count == 1 ? "a vector of \(shape[0])" : shape.map(String.init).joined(separator: "x")
      func needsImages() throws -> (c: Int, h: Int, w: Int) {
        guard shape.count == 3 else { throw bad("\(item.name) needs images (channels x height x width); its input is \(input)") }
        return (shape[0], shape[1], shape[2])
      }
      let layer: any Layer<T>
      switch item {
      case .dense(let n):
        guard shape.count == 1 else {
          throw bad("dense needs a vector; its input is \(input): add flatten before it")
        }
        layer = Dense<T>(inputs: shape[0], outputs: n)
      case .conv2d(let c, let kernel, let stride, let padding):
        let (ci, h, w) = try needsImages()
        guard kernel <= h + 2 * padding && kernel <= w + 2 * padding else {
          throw bad("a \(kernel)x\(kernel) kernel is larger than its input \(input) (with padding \(padding))")
        }
        layer = Conv2D<T>(inChannels: ci, outChannels: c, kernel: kernel, stride: stride, padding: padding, height: h, width: w)
      case .maxpool2d(let kernel, let stride), .avgpool2d(let kernel, let stride):
        let (_, h, w) = try needsImages()
        guard kernel <= h && kernel <= w else { throw bad("a \(kernel)x\(kernel) window is larger than its input \(input)") }
        if case .maxpool2d = item { layer = MaxPool2D<T>(shape: shape, size: kernel, stride: stride) } else {
          layer = AvgPool2D<T>(shape: shape, size: kernel, stride: stride)
        }
      case .flatten:
        layer = Flatten<T>(shape: shape)
      case .dropout(let p):
        layer = Dropout<T>(shape: shape, p: p)
      case .batchnorm(let m, let e, let d):
        guard shape.count == 1 || shape.count == 3 else { throw bad("batchnorm needs a vector or images; its input is \(input)") }
        if let d, (d == 1) != (shape.count == 1) {
          throw bad("batchnorm\(d)d takes \(d == 1 ? "vectors (after a dense layer)" : "images (after a convolution)"); its input is \(input): write batchnorm")
        }
        layer = BatchNorm<T>(shape: shape, momentum: m, eps: e)
      case .activation(let a):
        layer = ActivationLayer<T>(a, shape: shape)
      case .prelu:
        layer = PReLU<T>(shape: shape)
      case .softmax:
        guard shape.count == 1 else { throw bad("softmax needs a vector; its input is \(input): add flatten before it") }
        layer = Softmax<T>(size: shape[0])
      }
      layers.append(layer)
      shape = layer.outputShape
      guard shape.allSatisfy({ $0 > 0 }) else { throw bad("its output would be empty (\(shape.map(String.init).joined(separator: "x"))) for its input \(input)") }
    }
    guard shape == [outputs] else {
      let got = shape.count == 1 ? "\(shape[0]) values" : shape.map(String.init).joined(separator: "x")
      let last = items.lastIndex { if case .dense = $0 { return true } else { return false } }
      throw LayerError.shape(item: 0, text: "", reason: "the list ends in \(got), but the data have \(outputs) output\(outputs == 1 ? "" : "s") (classes or targets): "
        + (last.map { "make item \($0 + 1) '\(items[$0])' dense(\(outputs))" } ?? "end the list with dense(\(outputs))"))
    }
    return layers
  }

  static func plain(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)" }

  /// The list as text, items separated by ", ".
  public static func text(_ items: [LayerItem]) -> String { items.map(\.description).joined(separator: ", ") }
}

extension StringProtocol {
  /// Without the spaces and tabs at either end (Layers does without Foundation).
  var trimmed: String {
    let isSpace = { (c: Character) in c == " " || c == "\t" || c == "\r" }
    guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
    return String(self[first...last])
  }
}

/// A model as a list of layers, built in code or from its text, as `torch.nn.Sequential`:
///
///     let net = Sequential(.dense(3), .relu, .dense(1), .tanh)
///     let cnn = try Sequential("conv2d(6, 5, padding=2), relu, maxpool2d(2), flatten, dense(10)")
///
/// Input sizes are inferred from the data when the network is built; state_dict names are the items' indices.
public struct Sequential: Equatable, Sendable, CustomStringConvertible {
  public var items: [LayerItem]

  public init(_ items: LayerItem...) { self.items = items }
  public init(_ items: [LayerItem]) { self.items = items }

  /// Parses a list in the vocabulary of `LayerList.parse` (`dense(N)`, `conv2d(C, k)`, `batchnorm`, `relu`, ...).
  public init(_ text: String) throws { items = try LayerList.parse(text) }

  /// The network for samples of `inputShape` and `outputs` output values (checked layer by layer).
  public func network<T: LayerKernels>(inputShape: [Int], outputs: Int, as: T.Type = T.self) throws -> Network<T> {
    Network(try LayerList.build(items, inputShape: inputShape, outputs: outputs))
  }

  public var description: String { LayerList.text(items) }
}

extension LayerItem {
  /// `dense(n)`: a fully connected layer of n units.
  public static func dense(_ n: Int) -> LayerItem { .dense(units: n) }
  /// `conv2d(channels, kernel, stride:, padding:)`.
  public static func conv2d(_ channels: Int, _ kernel: Int, stride: Int = 1, padding: Int = 0) -> LayerItem {
    .conv2d(channels: channels, kernel: kernel, stride: stride, padding: padding)
  }
  public static func maxpool2d(_ k: Int, stride: Int? = nil) -> LayerItem { .maxpool2d(kernel: k, stride: stride ?? k) }
  public static func avgpool2d(_ k: Int, stride: Int? = nil) -> LayerItem { .avgpool2d(kernel: k, stride: stride ?? k) }
  public static func dropout(_ p: Double) -> LayerItem { .dropout(p: p) }
  /// BatchNorm1d or 2d by the shape it receives, PyTorch's momentum and eps unless given.
  public static func batchnorm(momentum: Double = 0.1, eps: Double = 1e-5) -> LayerItem {
    .batchnorm(momentum: momentum, eps: eps, dimensions: nil)
  }
  public static let batchnorm = LayerItem.batchnorm(momentum: 0.1, eps: 1e-5, dimensions: nil)
  public static let relu = LayerItem.activation(.relu)
  public static let tanh = LayerItem.activation(.tanh)
  public static let sigmoid = LayerItem.activation(.sigmoid)
  public static let requ = LayerItem.activation(.requ)
  public static let identity = LayerItem.activation(.identity)
  public static func leakyReLU(_ slope: Double = 0.01) -> LayerItem { .activation(.leakyReLU(slope: slope)) }
}
