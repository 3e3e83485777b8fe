import Synchronization
import TensorCore

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

  /// The built-in kinds of layer: one line each. A kind is its definition (the item: names, arguments, building)
  /// and the layer it builds (passes, parameters with their PyTorch names, PyTorch module); see
  /// docs/ARCHITECTURE.md, "Adding a layer".
  public static let table: [any LayerDefinition.Type] = [
    DenseItem.self, Conv2DItem.self, PoolItem.self, FlattenItem.self, DropoutItem.self, BatchNormItem.self,
    LayerNormItem.self, ActivationItem.self, PReLUItem.self, SoftmaxItem.self, EmbeddingItem.self,
    PositionEmbeddingItem.self, AttentionItem.self, ResidualItem.self,
  ]

  /// Kinds a program added (`register`), after the table's.
  static let registered = Mutex<[any LayerDefinition.Type]>([])

  /// Adds a kind of layer of one's own to what lists understand (`--model`, checkpoints' configs, `Sequential`'s
  /// text), so that a run with it resumes and evaluates. A name the table has already is refused.
  public static func register(_ kind: any LayerDefinition.Type) {
    let taken = Set(kinds.flatMap { $0.names })
    precondition(kind.names.allSatisfy { !taken.contains($0) || kinds.contains { $0 == kind } },
                 "layer names \(kind.names) are taken")
    registered.withLock { if !$0.contains(where: { $0 == kind }) { $0.append(kind) } }
  }

  /// Every kind lists understand: the table's, then the registered ones.
  public static var kinds: [any LayerDefinition.Type] { table + registered.withLock { $0 } }

  /// The items the list understands, for messages.
  public static var names: [String] { kinds.map { $0.usage } }

  /// Parses a list: items separated by commas (and, with `file`, newlines), arguments in parentheses, lists of items
  /// in brackets, `#` to the end of a line a comment. Lines may end in \n, \r\n or \r (a file from Windows), and
  /// a leading byte-order mark is not part of the first item. An item's arguments may span lines.
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
      case "(", "[": depth += 1; current.append(ch)
      case ")", "]": depth -= 1; current.append(ch)
      case "," where depth == 0: finish()
      default: current.append(ch)
      }
    }
    finish()
    guard !items.isEmpty else {
      throw LayerError.written(item: 0, text: "", reason: "the list is empty: name the layers, e.g. \"dense(256), relu, dense(10)\"", line: nil)
    }
    return try items.enumerated().map { k, item in
      do { return try parseItem(item.text) } catch let p as LayerProblem {
        throw LayerError.written(item: k + 1, text: item.text, reason: p.reason, line: file ? item.line : nil)
      }
    }
  }

  /// The parts of `text` separated by commas outside parentheses and brackets, or nil when they do not balance.
  static func split(_ text: Substring) -> [String]? {
    var parts: [String] = [], current = "", depth = 0
    var closers: [Character] = []
    for ch in text {
      switch ch {
      case "(", "[":
        closers.append(ch == "(" ? ")" : "]")
        depth += 1
      case ")", "]":
        guard closers.popLast() == ch else { return nil }
        depth -= 1
      case "," where depth == 0:
        parts.append(current.trimmed)
        current = ""
        continue
      default: break
      }
      current.append(ch)
    }
    guard closers.isEmpty else { return nil }
    parts.append(current.trimmed)
    return parts
  }

  /// One item: `name` or `name(arguments)`, an argument a number, a word, an item, or a list `[items]`.
  public static func parseItem(_ text: String) throws -> LayerItem {
    let call = try LayerArguments(call: text)
    guard let kind = kinds.first(where: { $0.names.contains(call.name) }) else {
      throw LayerProblem("unknown layer '\(call.name)'; use \(names.joined(separator: ", "))")
    }
    return LayerItem(try kind.init(call))
  }

  /// The layers of `items` for samples of `input`, checked shape by shape, and the shape they give. An item that
  /// does not fit is a `LayerError.shape` naming it.
  public static func layers<T: LayerKernels>(_ items: [LayerItem], input: LayerInput, as: T.Type = T.self) throws
    -> (layers: [any Layer<T>], output: LayerInput)
  {
    var layers: [any Layer<T>] = []
    var input = input
    for (k, item) in items.enumerated() {
      func bad(_ reason: String) -> LayerError { LayerError.shape(item: k + 1, text: item.description, reason: reason) }
      let layer: any Layer<T>
      do { layer = try item.layer(for: input, as: T.self) } catch let p as LayerProblem { throw bad(p.reason) }
      guard layer.outputShape.allSatisfy({ $0 > 0 }) else {
        throw bad("its output would be empty (\(layer.outputShape.map(String.init).joined(separator: "x"))) for its input \(input.described)")
      }
      layers.append(layer)
      input = LayerInput(shape: layer.outputShape)
    }
    return (layers, input)
  }

  /// The layers of `items` for samples of `inputShape`, checked shape by shape; the network's output must be a
  /// vector of `outputs` values (the data's classes or targets), or with `positions`, a sequence of that many vectors
  /// (a text's next character at every position). `vocabulary`: the size of the vocabulary whose ids the samples are.
  public static func build<T: LayerKernels>(_ items: [LayerItem], inputShape: [Int], outputs: Int, positions: Int? = nil,
                                            vocabulary: Int? = nil, as: T.Type = T.self) throws -> [any Layer<T>] {
    let (layers, output) = try Self.layers(items, input: LayerInput(shape: inputShape, vocabulary: vocabulary), as: T.self)
    let expected = (positions.map { [$0] } ?? []) + [outputs]
    guard output.shape == expected else {
      let got = output.shape.count == 1 ? "\(output.shape[0]) values" : output.shape.map(String.init).joined(separator: "x")
      let want = positions.map { "\(outputs) output\(outputs == 1 ? "" : "s") at each of \($0) positions (the vocabulary)" }
        ?? "\(outputs) output\(outputs == 1 ? "" : "s") (classes or targets)"
      let last = items.lastIndex { $0.is(DenseItem.self) }
      throw LayerError.shape(item: 0, text: "", reason: "the list ends in \(got), but the data have \(want): "
        + (last.map { "make item \($0 + 1) '\(items[$0])' dense(\(outputs))" } ?? "end the list with dense(\(outputs))"))
    }
    return layers
  }

  static func plain(_ x: Double) -> String { LayerText.number(x) }

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

extension LayerArguments {
  /// Parses `name` or `name(arguments)` (positional arguments, then keyword=value ones; an argument may itself be a
  /// call or a bracketed list): a layer item, and the losses and schedules a run description writes the same way.
  public init(call text: String) throws {
    var name = Substring(text), args: Substring = ""
    let unbalanced = LayerProblem("unbalanced parentheses: write name(arguments), and close every ( and [")
    if let open = text.firstIndex(of: "(") {
      guard text.hasSuffix(")") else { throw unbalanced }
      name = text[..<open]
      args = text[text.index(after: open)..<text.index(before: text.endIndex)]
    } else if text.contains(")") || text.contains("[") || text.contains("]") {
      throw unbalanced
    }
    guard var parts = LayerList.split(args) else { throw unbalanced }
    if parts == [""] { parts = [] }
    let key = name.trimmed.lowercased().map { $0 == "_" ? "-" : $0 }.reduce(into: "") { $0.append($1) }
    var positional: [String] = [], keywords: [(key: String, value: String)] = []
    for p in parts {
      guard !p.isEmpty else { throw LayerProblem("an empty argument: remove the extra comma") }
      // A keyword is `word=value` where `=` comes before any parenthesis (an item argument may hold keywords).
      if let eq = p.firstIndex(of: "="), !p[..<eq].contains("("), !p[..<eq].contains("[") {
        let k = p[..<eq].trimmed, v = p[p.index(after: eq)...].trimmed
        guard !k.isEmpty, !v.isEmpty else { throw LayerProblem("'\(p)': write keyword=value") }
        guard !keywords.contains(where: { $0.key == k }) else { throw LayerProblem("\(k) is given twice") }
        keywords.append((k, v))
      } else {
        guard keywords.isEmpty else { throw LayerProblem("a positional argument after a keyword one") }
        positional.append(p)
      }
    }
    self.init(name: key, positional: positional, keywords: keywords)
  }
}
