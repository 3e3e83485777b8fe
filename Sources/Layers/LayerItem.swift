import TensorCore

/// A kind of layer as a list names it: one entry of `LayerList.table` (or one a program registers), which knows the
/// item's names, reads and writes its arguments, and builds its layer for the shape it receives. The layer built
/// knows the rest: its parameters' PyTorch names and layouts (`ParameterSpec`) and its PyTorch module
/// (`Layer.pytorch`), which the export, `--init`, checkpoints and the trace ask for.
///
/// A layer of one's own is a `Layer` and a `LayerDefinition` that builds it; `LayerList.register` adds the
/// definition to what lists understand (see docs/ARCHITECTURE.md, "Adding a layer").
public protocol LayerDefinition: Sendable {
  /// The item's name, then its aliases: `["dense", "linear"]`. Lower case; "-" where a name has "_" or "-".
  static var names: [String] { get }
  /// How the item is written, for messages: `"dense(N, bias=true)"`.
  static var usage: String { get }
  /// The item from its arguments; throws `LayerProblem` for arguments it cannot take.
  init(_ arguments: LayerArguments) throws
  /// The item as a list writes it, arguments at their defaults left out: `dense(3, bias=false)`.
  var text: String { get }
  /// The layer for samples shaped `input.shape`; throws `LayerProblem` when it does not fit them.
  func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T>
}

extension LayerDefinition {
  /// The canonical name.
  public var name: String { Self.names[0] }
}

/// What an item cannot take: the reason, said to the user with the item's place in the list.
public struct LayerProblem: Error, Equatable {
  public var reason: String
  public init(_ reason: String) { self.reason = reason }
}

/// What a layer is built for: one sample's shape, and what the data say about it.
public struct LayerInput: Sendable {
  public var shape: [Int]
  /// The vocabulary's size when the values are token ids (a text data set), else nil.
  public var vocabulary: Int?

  public init(shape: [Int], vocabulary: Int? = nil) {
    self.shape = shape
    self.vocabulary = vocabulary
  }

  /// "a vector of 784", "a sequence of 64 x 128", "1x28x28".
  public var described: String {
    switch shape.count {
    case 1: vocabulary == nil ? "a vector of \(shape[0])" : "a sequence of \(shape[0]) token ids"
    case 2: "a sequence of \(shape[0]) x \(shape[1])"
    default: shape.map(String.init).joined(separator: "x")
    }
  }

  /// The shape's channels, height and width, for a layer that takes images.
  public func images(_ what: String) throws -> (c: Int, h: Int, w: Int) {
    guard shape.count == 3 else { throw LayerProblem("\(what) needs images (channels x height x width); its input is \(described)") }
    return (shape[0], shape[1], shape[2])
  }

  /// The last dimension, for a layer acting on every position (a vector, or each position of a sequence).
  public func features(_ what: String, fix: String = "add flatten before it") throws -> Int {
    guard (shape.count == 1 && vocabulary == nil) || shape.count == 2 else {
      if vocabulary != nil { throw LayerProblem("\(what) needs vectors; its input is \(described): add embedding(D) before it") }
      throw LayerProblem("\(what) needs a vector or a sequence of vectors; its input is \(described): \(fix)")
    }
    return shape[shape.count - 1]
  }
}

/// An item's arguments as written: positional ones, then keywords, each as text. A definition binds them to its
/// names (`bind`) and reads each as what it is (`count`, `number`, `flag`, `word`).
public struct LayerArguments: Sendable {
  /// The item's name as written (lower case, "_" as "-"): one of its definition's names.
  public let name: String
  public let positional: [String]
  public let keywords: [(key: String, value: String)]

  public init(name: String, positional: [String] = [], keywords: [(key: String, value: String)] = []) {
    self.name = name
    self.positional = positional
    self.keywords = keywords
  }

  /// The arguments bound to `names` (positional ones in order, then keywords), each known and given once; the first
  /// `required` must be there.
  public func bind(_ names: [String], required: Int = 0, example: String) throws -> Bound {
    guard positional.count <= names.count else {
      throw LayerProblem(names.isEmpty ? "\(name) takes no arguments"
        : "\(name) takes at most \(names.count) argument\(names.count == 1 ? "" : "s") (\(names.joined(separator: ", "))), e.g. \(example)")
    }
    var values: [String: String] = [:]
    for (i, v) in positional.enumerated() { values[names[i]] = v }
    for (k, v) in keywords {
      guard let at = names.firstIndex(of: k) else {
        throw LayerProblem(names.isEmpty ? "\(name) takes no arguments" : "\(name) has no argument '\(k)' (it takes \(names.joined(separator: ", "))), e.g. \(example)")
      }
      guard values[k] == nil, positional.count <= at else { throw LayerProblem("\(k) is given twice") }
      values[k] = v
    }
    let missing = names.prefix(required).filter { values[$0] == nil }
    guard missing.isEmpty else {
      let spoken = names.prefix(required).map { ["units": "a number of units", "kernel_size": "a kernel size", "heads": "a number of heads",
                                                 "dim": "a width"][$0] ?? $0 }
      let what = spoken.count == 1 ? spoken[0] : spoken.dropLast().joined(separator: ", ") + " and " + spoken.last!
      throw LayerProblem("\(name) needs \(what), e.g. \(example)")
    }
    return Bound(values: values)
  }

  /// Arguments bound to their names.
  public struct Bound: Sendable {
    public let values: [String: String]

    /// A number, or `otherwise` when not given.
    public func number(_ key: String, _ otherwise: Double? = nil) throws -> Double? {
      guard let text = values[key] else { return otherwise }
      guard let v = Double(text), v.isFinite else { throw LayerProblem("\(key)=\(text) is not a number") }
      return v
    }

    /// A whole number from `minimum` to `LayerList.largest`.
    public func count(_ key: String, _ what: String, minimum: Int = 1, otherwise: Int? = nil) throws -> Int {
      let v = try number(key, otherwise.map(Double.init))
      guard let v, v == v.rounded(), v >= Double(minimum), v <= Double(LayerList.largest) else {
        throw LayerProblem("\(what) must be a whole number from \(minimum) to \(LayerList.largest)\(v.map { " (got \(LayerText.number($0)))" } ?? "")")
      }
      return Int(v)
    }

    /// true or false (also 1 or 0).
    public func flag(_ key: String, _ otherwise: Bool) throws -> Bool {
      guard let text = values[key] else { return otherwise }
      switch text.lowercased() {
      case "true", "1": return true
      case "false", "0": return false
      default: throw LayerProblem("\(key)=\(text): write \(key)=true or \(key)=false")
      }
    }

    /// One of `choices` (quotes allowed: `approximate='tanh'`).
    public func word(_ key: String, _ choices: [String], _ otherwise: String) throws -> String {
      guard var text = values[key] else { return otherwise }
      if text.count >= 2, let q = text.first, q == "'" || q == "\"", text.last == q { text = String(text.dropFirst().dropLast()) }
      guard choices.contains(text.lowercased()) else {
        throw LayerProblem("\(key)=\(values[key]!): use \(choices.joined(separator: " or "))")
      }
      return text.lowercased()
    }
  }
}

/// Writing items back as text.
public enum LayerText {
  /// "name" or "name(a, b)".
  public static func call(_ name: String, _ arguments: [String]) -> String {
    arguments.isEmpty ? name : name + "(" + arguments.joined(separator: ", ") + ")"
  }

  /// 3 as "3", 0.25 as "0.25".
  public static func number(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)" }
}

/// One item of a model written as a list of layers, in PyTorch's vocabulary (`dense(256), relu, dense(10)`): a
/// table entry's values. Two items are equal when they are written the same.
public struct LayerItem: Equatable, Sendable, CustomStringConvertible {
  public let definition: any LayerDefinition

  public init(_ definition: any LayerDefinition) { self.definition = definition }

  /// The item's kind: "dense", "conv2d", ... (its definition's first name).
  public var name: String { definition.name }
  /// The item as the list writes it: `conv2d(6, 5, padding=2)`, `batchnorm(momentum=0.05)`.
  public var description: String { definition.text }
  /// Whether the item is of kind `D` (`item.is(DenseItem.self)`).
  public func `is`<D: LayerDefinition>(_ kind: D.Type) -> Bool { definition is D }
  /// The item's definition as a `D`, when it is one (`item.as(DenseItem.self)?.units`).
  public func `as`<D: LayerDefinition>(_ kind: D.Type) -> D? { definition as? D }

  public static func == (a: LayerItem, b: LayerItem) -> Bool { a.description == b.description }

  /// The layer for samples shaped `input.shape`.
  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type = T.self) throws -> any Layer<T> {
    try definition.layer(for: input, as: T.self)
  }
}

extension LayerItem: Codable {
  /// An item is stored as its text (`"dense(3, bias=false)"`). Earlier versions stored the cases of an enum
  /// (`{"dense": {"units": 3}}`): they decode too, so older checkpoints resume.
  public func encode(to encoder: Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(description)
  }

  public init(from decoder: Decoder) throws {
    if let text = try? decoder.singleValueContainer().decode(String.self) {
      do { self = try LayerList.parseItem(text) } catch let p as LayerProblem {
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "layer '\(text)': \(p.reason)"))
      }
      return
    }
    self = try EarlierItem(from: decoder).item
  }
}

/// The enum by which versions before the table stored items; decoded only.
private enum EarlierItem: Decodable {
  case dense(units: Int)
  case conv2d(channels: Int, kernel: Int, stride: Int, padding: Int)
  case maxpool2d(kernel: Int, stride: Int)
  case avgpool2d(kernel: Int, stride: Int)
  case flatten
  case dropout(p: Double)
  case batchnorm(momentum: Double, eps: Double, dimensions: Int?)
  case activation(Activation)
  case prelu
  case softmax

  var item: LayerItem {
    switch self {
    case .dense(let n): .dense(n)
    case .conv2d(let c, let k, let s, let p): .conv2d(c, k, stride: s, padding: p)
    case .maxpool2d(let k, let s): .maxpool2d(k, stride: s)
    case .avgpool2d(let k, let s): .avgpool2d(k, stride: s)
    case .flatten: .flatten
    case .dropout(let p): .dropout(p)
    case .batchnorm(let m, let e, let d): LayerItem(BatchNormItem(momentum: m, eps: e, dimensions: d))
    case .activation(let a): .activation(a)
    case .prelu: .prelu
    case .softmax: .softmax
    }
  }
}

extension LayerItem {
  /// `dense(n)`: a fully connected layer of n units (`bias: false` leaves out its bias).
  public static func dense(_ n: Int, bias: Bool = true) -> LayerItem { LayerItem(DenseItem(units: n, bias: bias)) }
  public static func dense(units n: Int) -> LayerItem { .dense(n) }
  /// `conv2d(channels, kernel, stride:, padding:)`.
  public static func conv2d(_ channels: Int, _ kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) -> LayerItem {
    LayerItem(Conv2DItem(channels: channels, kernel: kernel, stride: stride, padding: padding, bias: bias))
  }
  public static func conv2d(channels: Int, kernel: Int, stride: Int, padding: Int) -> LayerItem {
    .conv2d(channels, kernel, stride: stride, padding: padding)
  }
  public static func maxpool2d(_ k: Int, stride: Int? = nil) -> LayerItem { LayerItem(PoolItem(max: true, kernel: k, stride: stride ?? k)) }
  public static func maxpool2d(kernel: Int, stride: Int) -> LayerItem { .maxpool2d(kernel, stride: stride) }
  public static func avgpool2d(_ k: Int, stride: Int? = nil) -> LayerItem { LayerItem(PoolItem(max: false, kernel: k, stride: stride ?? k)) }
  public static func avgpool2d(kernel: Int, stride: Int) -> LayerItem { .avgpool2d(kernel, stride: stride) }
  public static let flatten = LayerItem(FlattenItem())
  public static func dropout(_ p: Double) -> LayerItem { LayerItem(DropoutItem(p: p)) }
  public static func dropout(p: Double) -> LayerItem { .dropout(p) }
  /// BatchNorm1d or 2d by the shape it receives, PyTorch's momentum and eps unless given.
  public static func batchnorm(momentum: Double = 0.1, eps: Double = 1e-5) -> LayerItem {
    LayerItem(BatchNormItem(momentum: momentum, eps: eps, dimensions: nil))
  }
  public static let batchnorm = LayerItem.batchnorm(momentum: 0.1, eps: 1e-5)
  /// `layernorm(eps=1e-5)` over the last dimension.
  public static func layernorm(eps: Double = 1e-5) -> LayerItem { LayerItem(LayerNormItem(eps: eps)) }
  public static let layernorm = LayerItem.layernorm()
  public static func activation(_ a: Activation) -> LayerItem { LayerItem(ActivationItem(a)) }
  public static let relu = LayerItem.activation(.relu)
  public static let tanh = LayerItem.activation(.tanh)
  public static let sigmoid = LayerItem.activation(.sigmoid)
  public static let requ = LayerItem.activation(.requ)
  public static let identity = LayerItem.activation(.identity)
  public static let gelu = LayerItem.activation(.gelu)
  public static func leakyReLU(_ slope: Double = 0.01) -> LayerItem { .activation(.leakyReLU(slope: slope)) }
  public static let prelu = LayerItem(PReLUItem())
  public static let softmax = LayerItem(SoftmaxItem())
  /// `embedding(D)`: token ids to vectors of D (the vocabulary from the data).
  public static func embedding(_ width: Int) -> LayerItem { LayerItem(EmbeddingItem(width: width)) }
  public static let positionEmbedding = LayerItem(PositionEmbeddingItem())
  /// `attention(H, causal:)`: multi-head self-attention over a sequence.
  public static func attention(_ heads: Int, causal: Bool = true) -> LayerItem { LayerItem(AttentionItem(heads: heads, causal: causal)) }
  /// `residual(items..., shortcut: [items...])`: y = body(x) + x, or + shortcut(x).
  public static func residual(_ body: LayerItem..., shortcut: [LayerItem]? = nil) -> LayerItem {
    LayerItem(ResidualItem(body: body, shortcut: shortcut))
  }
  /// An item of a kind defined outside the table (a layer of one's own).
  public static func custom(_ definition: some LayerDefinition) -> LayerItem { LayerItem(definition) }
}
