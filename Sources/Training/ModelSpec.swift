import Datasets
import Layers
import Optimizers
import TensorCore

/// The shorthand kinds of model `--model` names (each expands to a list of layers).
public enum ModelKind: String, CaseIterable, Sendable, Codable {
  /// x W + b: regression with MSE, or a linear classifier with any loss.
  case linear
  /// x W + b followed by softmax cross-entropy (multinomial logistic regression).
  case softmax
  /// Dense layers with an activation between them: --hidden 256 or --hidden 256,128.
  case mlp
  /// Convolution blocks then dense layers: `cnn:C1,C2` (see `ModelSpec`).
  case cnn
}

/// The non-linearity between hidden layers of a shorthand: element-wise, or PReLU with learnable slopes.
public enum HiddenActivation: Equatable, Sendable, CustomStringConvertible {
  case elementwise(Activation)
  case prelu

  public var description: String {
    switch self {
    case .elementwise(let a): a.description
    case .prelu: "prelu"
    }
  }

  var item: LayerItem {
    switch self {
    case .elementwise(let a): .activation(a)
    case .prelu: .prelu
    }
  }
}

extension HiddenActivation: Codable {
  /// Encoded as `--activation` spells it ("relu", "leaky-relu(0.01)", "prelu"); the keyed form of earlier versions
  /// (`{"elementwise": {"_0": {"relu": {}}}}`) is read too.
  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(description)
  }

  public init(from decoder: any Decoder) throws {
    guard let text = try? decoder.singleValueContainer().decode(String.self) else {
      enum Earlier: Decodable { case elementwise(Activation), prelu }
      switch try Earlier(from: decoder) {
      case .elementwise(let a): self = .elementwise(a)
      case .prelu: self = .prelu
      }
      return
    }
    let item = try? LayerList.parseItem(text)
    if let a = item?.as(ActivationItem.self) { self = .elementwise(a.activation) }
    else if item?.is(PReLUItem.self) == true { self = .prelu }
    else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown activation '\(text)'")) }
  }
}

/// A model to build: a list of layers (`dense(256), relu, dense(10)`), or a shorthand that expands to one.
///
/// - linear / softmax: one dense layer (softmax: trained with cross-entropy on the logits).
/// - mlp: dense layers of the `hidden` widths with the activation after each, then the output layer.
/// - cnn: per entry C of `channels` a block conv kxk (C channels, stride 1, padding k/2 so the size is kept),
///   activation, 2x2 max pooling; then the `hidden` dense layers and the output layer. `cnn:6,16` with hidden
///   120,84 is LeNet-5's shape on 28x28 digits.
/// - outputSoftmax: a softmax layer after the output (probabilities; train with nll or hinge).
///
/// Images reach a dense layer through `flatten`, which the shorthands write themselves (so `mlp` on images is
/// `flatten, dense(256), relu, dense(10)`, as `torch.nn.Sequential(nn.Flatten(), ...)` names its layers).
public struct ModelSpec: Equatable, Sendable, Codable, CustomStringConvertible {
  public var kind: ModelKind
  public var hidden: [Int]
  public var activation: HiddenActivation
  public var channels: [Int]
  public var kernel: Int
  public var outputSoftmax: Bool
  /// The layers as written (`--model "dense(3), relu, dense(1)"`); nil for a shorthand.
  public var layers: [LayerItem]?
  /// The shorthand `gpt:L,D,H` (a character GPT; see `GPTShape`); nil for the others.
  public var gpt: GPTShape?

  public init(kind: ModelKind, hidden: [Int] = [], activation: HiddenActivation = .elementwise(.relu),
              channels: [Int] = [], kernel: Int = 5, outputSoftmax: Bool = false) {
    self.kind = kind
    self.hidden = hidden
    self.activation = activation
    self.channels = channels
    self.kernel = kernel
    self.outputSoftmax = outputSoftmax
  }

  public init(kind: ModelKind, hidden: [Int] = [], activation: Activation) {
    self.init(kind: kind, hidden: hidden, activation: .elementwise(activation))
  }

  /// A model built in code (`Sequential(.dense(3), .relu, .dense(1))`).
  public init(_ sequential: Sequential) { self.init(layers: sequential.items) }

  /// The shorthand `gpt:L,D,H`.
  public init(gpt: GPTShape) {
    self.init(kind: .mlp)
    self.gpt = gpt
  }

  /// A model written as a list of layers.
  public init(layers: [LayerItem]) {
    self.init(kind: .mlp)
    self.layers = layers
  }

  /// Whether the model is one dense layer x W + b (the closed form solves it).
  public var isLinear: Bool {
    guard let layers else { return gpt == nil && kind == .linear && !outputSoftmax }
    return layers.filter { $0 != .flatten }.count == 1 && layers.last?.as(DenseItem.self)?.bias == true
  }

  /// Whether the last layer is a softmax (probabilities: train with nll or hinge, not cross-entropy).
  public var endsInSoftmax: Bool { layers.map { $0.last == .softmax } ?? outputSoftmax }

  /// Whether the model convolves (its default SGD step is smaller).
  public var hasConvolution: Bool {
    layers.map { $0.contains { $0.is(Conv2DItem.self) } } ?? (kind == .cnn)
  }

  /// The layers for samples of `inputShape` and `outputs` output values: the list as written, or the shorthand's.
  public func items(inputShape: [Int], outputs: Int) throws -> [LayerItem] {
    if let layers { return layers }
    if let gpt { return gpt.items(vocabulary: outputs) }
    var items: [LayerItem] = []
    var images = inputShape.count > 1
    if kind == .cnn {
      guard inputShape.count == 3 else { throw ConfigurationProblem.cnnNeedsImages(features: inputShape.reduce(1, *)) }
      var (h, w) = (inputShape[1], inputShape[2])
      for c in channels {
        guard h >= 2 && w >= 2 else {
          throw ConfigurationProblem.imagesTooSmall(channels: channels, height: inputShape[1], width: inputShape[2])
        }
        items += [.conv2d(channels: c, kernel: kernel, stride: 1, padding: kernel / 2), activation.item, .maxpool2d(kernel: 2, stride: 2)]
        (h, w) = (h / 2, w / 2)
      }
      images = true
    }
    if images { items.append(.flatten) }
    if kind == .mlp || kind == .cnn {
      for h in hidden { items += [.dense(units: h), activation.item] }
    }
    items.append(.dense(units: outputs))
    if outputSoftmax { items.append(.softmax) }
    return items
  }

  /// The network for samples of `inputShape` and `outputs` output values.
  public func build<T: LayerKernels>(inputShape: [Int], outputs: Int, as: T.Type = T.self) throws -> Network<T> {
    Network(try LayerList.build(try items(inputShape: inputShape, outputs: outputs), inputShape: inputShape, outputs: outputs))
  }

  /// As written: the list, or the shorthand ("mlp 256 relu", "cnn 6,16 (5x5) + 120,84 relu").
  public var description: String {
    if let layers { return LayerList.text(layers) }
    if let gpt { return gpt.description }
    var s: String
    switch kind {
    case .linear, .softmax: s = kind.rawValue
    case .mlp: s = "mlp \(hidden.map(String.init).joined(separator: ",")) \(activation)"
    case .cnn:
      s = "cnn \(channels.map(String.init).joined(separator: ",")) (\(kernel)x\(kernel))"
      if !hidden.isEmpty { s += " + \(hidden.map(String.init).joined(separator: ",")) \(activation)" }
    }
    return outputSoftmax ? s + " + softmax" : s
  }
}

/// A character GPT, `gpt:L,D,H` (nanoGPT's shape): L blocks of width D with H heads each,
/// `embedding(D), position-embedding, [residual(layernorm, attention(H, causal=true)), residual(layernorm, dense(4D),
/// gelu, dense(D))] x L, layernorm, dense(V)`, V the vocabulary's size.
public struct GPTShape: Equatable, Sendable, Codable, CustomStringConvertible {
  public var layers: Int
  public var width: Int
  public var heads: Int

  public init(layers: Int, width: Int, heads: Int) {
    (self.layers, self.width, self.heads) = (layers, width, heads)
  }

  /// Parses "L,D,H" (after "gpt:"); nil when it is not three positive whole numbers with H dividing D.
  public init?(_ text: Substring) {
    let v = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard v.count == 3, let l = v[0], let d = v[1], let h = v[2], l > 0, d > 0, h > 0, d % h == 0 else { return nil }
    self.init(layers: l, width: d, heads: h)
  }

  public func items(vocabulary: Int) -> [LayerItem] {
    let block: [LayerItem] = [.residual(.layernorm, .attention(heads, causal: true)),
                              .residual(.layernorm, .dense(4 * width), .gelu, .dense(width))]
    return [.embedding(width), .positionEmbedding] + Array(repeating: block, count: layers).flatMap { $0 } + [.layernorm, .dense(vocabulary)]
  }

  public var description: String { "gpt:\(layers),\(width),\(heads)" }
}
