import TensorCore

/// A residual block: y = body(x) + x, or y = body(x) + shortcut(x) for a block that changes the shape (a ResNet's
/// 1x1 stride-2 convolution with its BatchNorm). Body and shortcut are networks of their own inside the block's
/// slice of the flat buffers (the body's parameters, then the shortcut's; the same for buffers), named as PyTorch's
/// `Residual` module names them: "body.J.weight", "shortcut.J.running_mean".
///
/// Backward: dx = body's dx + shortcut's dx (or + dy). The forward pass keeps both networks' activations with its
/// output. A block holding a layer that sees the whole batch (BatchNorm, dropout) passes all pieces through its
/// networks together, with their layers numbered apart from the outer ones (`StepContext.nested`).
public struct Residual<T: LayerKernels>: BatchLayer, BufferHolder {
  public let body: Network<T>
  public let shortcut: Network<T>?

  public init(body: Network<T>, shortcut: Network<T>? = nil) {
    precondition(body.outputShape == (shortcut?.outputShape ?? body.inputShape), "a residual block's two branches give one shape")
    precondition(shortcut == nil || shortcut!.inputShape == body.inputShape, "a residual block's branches take one input")
    self.body = body
    self.shortcut = shortcut
  }

  public var inputShape: [Int] { body.inputShape }
  public var outputShape: [Int] { body.outputShape }
  var branches: [(name: String, network: Network<T>)] { [("body", body)] + (shortcut.map { [("shortcut", $0)] } ?? []) }

  public var parameters: [ParameterSpec] { branches.flatMap { b in b.network.namedParameters.map { $0.spec.nested(in: b.name) } } }
  public var bufferSpecs: [ParameterSpec] { branches.flatMap { b in b.network.namedBuffers.map { $0.spec.nested(in: b.name) } } }
  public func initialBuffers() -> [Double] { branches.flatMap { $0.network.initialBufferValues } }
  public var seesWholeBatch: Bool { branches.contains { $0.network.hasBatchLayers } }
  public var usesBatchStatistics: Bool { branches.contains { $0.network.hasBatchStatistics } }

  /// Each branch from a seed of its own drawn from `rng` (its layers then each from their stream, as a network's).
  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {
    var start = 0
    for b in branches {
      let values = b.network.initialParameters(seed: rng.next())
      for (k, v) in values.enumerated() { p[start + k] = v }
      start += values.count
    }
  }

  /// The branch slices of the block's parameters (or buffers): the body's, then the shortcut's.
  func split<P>(_ whole: P, _ rebase: (P, Range<Int>) -> P, sizes: (Network<T>) -> Int) -> (body: P, shortcut: P?) {
    let n = sizes(body)
    return (rebase(whole, 0..<n), shortcut.map { rebase(whole, n..<n + sizes($0)) })
  }

  func split(_ p: UnsafeBufferPointer<T>) -> (body: UnsafeBufferPointer<T>, shortcut: UnsafeBufferPointer<T>?) {
    split(p, { UnsafeBufferPointer(rebasing: $0[$1]) }, sizes: \.parameterCount)
  }

  func split(_ p: UnsafeMutableBufferPointer<T>) -> (body: UnsafeMutableBufferPointer<T>, shortcut: UnsafeMutableBufferPointer<T>?) {
    split(p, { UnsafeMutableBufferPointer(rebasing: $0[$1]) }, sizes: \.parameterCount)
  }

  /// y = a + b, in one pass (a copy of a and an axpy took two).
  static func sum(_ a: Tensor<T>, _ b: Tensor<T>) -> Tensor<T> {
    Tensor(shape: a.shape, unsafeUninitialized: { y in
      Tensor.withBases(a, b) { a, b in ResidualLoops.add(a, b, into: Tensor.base(y), count: y.count) }
    })
  }

  /// The output with both branches' activations kept: the body's (without x), then the shortcut's.
  static func output(_ body: [Tensor<T>], _ shortcut: [Tensor<T>]?, input x: Tensor<T>) -> Tensor<T> {
    var y = sum(body[body.count - 1], shortcut?.last ?? x)
    y.saved = Array(body.dropFirst()) + (shortcut?.dropFirst() ?? [])
    return y
  }

  /// The branches' activations [x, a_1, ...] back from an output's saved tensors.
  func activations(_ x: Tensor<T>, _ y: Tensor<T>) -> (body: [Tensor<T>], shortcut: [Tensor<T>]?) {
    let n = body.layers.count
    return ([x] + y.saved[0..<n], shortcut.map { _ in [x] + y.saved[n...] })
  }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    let (pb, ps) = split(p)
    return Self.output(body.forward(x, parameters: pb), shortcut.map { $0.forward(x, parameters: ps!) }, input: x)
  }

  public func backward(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
                       gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool) -> Tensor<T>? {
    let y = y.saved.count == body.layers.count + (shortcut?.layers.count ?? 0) ? y : forward(x, parameters: p)
    let (pb, ps) = split(p), (gb, gs) = split(dp)
    let (ab, as_) = activations(x, y)
    let dxb = body.backward(dy, activations: ab, parameters: pb, gradients: gb, needsInputGradient: needsInputGradient)
    let dxs = shortcut.map { $0.backward(dy, activations: as_!, parameters: ps!, gradients: gs!, needsInputGradient: needsInputGradient) }
    guard needsInputGradient else { return nil }
    return Self.sum(dxb!, (dxs ?? dy)!)
  }

  public func forward(_ x: [Tensor<T>], parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeMutableBufferPointer<T>,
                      context: StepContext, index: Int) throws -> [Tensor<T>] {
    let (pb, ps) = split(p)
    let (bb, bs) = split(b, { UnsafeMutableBufferPointer(rebasing: $0[$1]) }, sizes: \.bufferCount)
    let ab = try body.forward(x, parameters: pb, buffers: bb, context: context) { StepContext.nested(index, branch: 0, layer: $0) }
    let as_ = try shortcut.map { try $0.forward(x, parameters: ps!, buffers: bs!, context: context) { StepContext.nested(index, branch: 1, layer: $0) } }
    return x.indices.map { k in Self.output(ab[k], as_?[k], input: x[k]) }
  }

  public func backward(_ dy: [Tensor<T>], inputs x: [Tensor<T>], outputs y: [Tensor<T>], parameters p: UnsafeBufferPointer<T>,
                       gradients dp: [UnsafeMutableBufferPointer<T>], context: StepContext, index: Int,
                       needsInputGradient: Bool) throws -> [Tensor<T>]? {
    let (pb, ps) = split(p)
    let g = dp.map(split)
    let a = x.indices.map { activations(x[$0], y[$0]) }
    let dxb = try body.backward(dy, activations: a.map(\.body), parameters: pb, gradients: g.map(\.body), context: context,
                                needsInputGradient: needsInputGradient, index: { StepContext.nested(index, branch: 0, layer: $0) })
    let dxs = try shortcut.map {
      try $0.backward(dy, activations: a.map { $0.shortcut! }, parameters: ps!, gradients: g.map { $0.shortcut! }, context: context,
                      needsInputGradient: needsInputGradient, index: { StepContext.nested(index, branch: 1, layer: $0) })
    }
    guard needsInputGradient, let dxb else { return nil }
    let shortcutGradients: [Tensor<T>]? = dxs ?? nil
    return dy.indices.map { Self.sum(dxb[$0], shortcutGradients?[$0] ?? dy[$0]) }
  }

  public func evaluate(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>) -> Tensor<T> {
    let (pb, ps) = split(p)
    let (bb, bs) = split(b, { UnsafeBufferPointer(rebasing: $0[$1]) }, sizes: \.bufferCount)
    return Self.sum(body.predict(x, parameters: pb, buffers: bb), shortcut.map { $0.predict(x, parameters: ps!, buffers: bs!) } ?? x)
  }

  public var summary: String {
    "residual(" + body.summary + (shortcut.map { "; shortcut " + $0.summary } ?? "") + ")"
  }

  public var pytorch: PyTorchModule? {
    var classes = ["Residual": """
      class Residual(nn.Module):
          \"\"\"y = body(x) + x, or body(x) + shortcut(x) (dpt's residual).\"\"\"
          def __init__(self, body, shortcut=None):
              super().__init__()
              self.body, self.shortcut = body, shortcut

          def forward(self, x):
              return self.body(x) + (x if self.shortcut is None else self.shortcut(x))
      """]
    var arguments: [String] = []
    for b in branches {
      guard let modules = PyTorchModule.sequential(b.network.layers) else { return nil }
      arguments.append(modules.code)
      classes.merge(modules.classes) { a, _ in a }
    }
    return PyTorchModule("Residual(\n" + arguments.map { PyTorchModule.indent($0) + "," }.joined(separator: "\n") + "\n)", classes: classes)
  }

  /// body(x) + x, or body(x) + shortcut(x): each branch's layers as its own nodes, then Add.
  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    let (pb, ps) = split(p)
    let (bb, bs) = split(b, { UnsafeBufferPointer(rebasing: $0[$1]) }, sizes: \.bufferCount)
    guard let y = body.onnx(&graph, input: x, parameters: pb, buffers: bb, prefix: name + ".body.").output else { return nil }
    var other = x
    if let shortcut {
      guard let s = shortcut.onnx(&graph, input: x, parameters: ps!, buffers: bs!, prefix: name + ".shortcut.").output else { return nil }
      other = s
    }
    return graph.node("Add", [y, other], name: name)
  }
}

enum ResidualLoops {
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  static func add<T: Scalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, into y: UnsafeMutablePointer<T>, count n: Int) {
    for i in 0..<n { y[i] = a[i] + b[i] }
  }
}

extension PyTorchModule {
  /// `nn.Sequential` of the layers' modules (nil when one has none).
  public static func sequential<T>(_ layers: [any Layer<T>]) -> PyTorchModule? {
    var classes: [String: String] = [:], codes: [String] = []
    for layer in layers {
      guard let m = layer.pytorch else { return nil }
      codes.append(m.code)
      classes.merge(m.classes) { a, _ in a }
    }
    return PyTorchModule("nn.Sequential(\n" + codes.map { indent($0) + "," }.joined(separator: "\n") + "\n)", classes: classes)
  }

  /// Every line of `code` four spaces in.
  static func indent(_ code: String) -> String {
    code.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
  }
}

/// `residual(ITEMS...)`: y = body(x) + x; `residual(ITEMS..., shortcut=[ITEMS...])`: y = body(x) + shortcut(x).
/// Blocks nest.
public struct ResidualItem: LayerDefinition {
  public static let names = ["residual"]
  public static let usage = "residual(items..., shortcut=[items...])"
  public var body: [LayerItem]
  public var shortcut: [LayerItem]?

  public init(body: [LayerItem], shortcut: [LayerItem]? = nil) {
    self.body = body
    self.shortcut = shortcut
  }

  public init(_ a: LayerArguments) throws {
    guard !a.positional.isEmpty else {
      throw LayerProblem("residual needs the items of its body, e.g. residual(layernorm, dense(128)) or residual(conv2d(16, 3, padding=1), relu)")
    }
    body = try a.positional.enumerated().map { j, text in
      do { return try LayerList.parseItem(text) } catch let p as LayerProblem {
        throw LayerProblem("its item \(j + 1) '\(text)': \(p.reason)")
      }
    }
    for (key, value) in a.keywords {
      guard key == "shortcut" else { throw LayerProblem("residual has no argument '\(key)' (it takes its items and shortcut=[items])") }
      guard value.hasPrefix("["), value.hasSuffix("]") else {
        throw LayerProblem("shortcut=\(value): write the shortcut's items in brackets, e.g. shortcut=[conv2d(16, 1, stride=2), batchnorm]")
      }
      do { shortcut = try LayerList.parse(String(value.dropFirst().dropLast())) } catch let e as LayerError {
        guard case .written(let item, let text, let reason, _) = e, item > 0 else {
          throw LayerProblem("shortcut=[] is empty: name its items, or leave it out for y = body(x) + x")
        }
        throw LayerProblem("its shortcut's item \(item) '\(text)': \(reason)")
      }
    }
  }

  public var text: String {
    "residual(" + LayerList.text(body) + (shortcut.map { ", shortcut=[" + LayerList.text($0) + "]" } ?? "") + ")"
  }

  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    func build(_ items: [LayerItem], _ what: String) throws -> (Network<T>, [Int]) {
      do {
        let (layers, output) = try LayerList.layers(items, input: input, as: T.self)
        return (Network(layers), output.shape)
      } catch let e as LayerError {
        guard case .shape(let item, let text, let reason) = e else { throw e }
        throw LayerProblem("\(what) item \(item) '\(text)': \(reason)")
      }
    }
    let (b, bodyShape) = try build(body, "its")
    let s = try shortcut.map { try build($0, "its shortcut's") }
    let shape = { (s: [Int]) in s.count == 1 ? "a vector of \(s[0])" : s.map(String.init).joined(separator: "x") }
    if let s, s.1 != bodyShape {
      throw LayerProblem("its body gives \(shape(bodyShape)) but its shortcut gives \(shape(s.1)): make them give one shape")
    }
    if s == nil, bodyShape != input.shape {
      throw LayerProblem("its body gives \(shape(bodyShape)) but its input is \(shape(input.shape)): add shortcut=[...] that gives the body's shape (a ResNet's conv2d(C, 1, stride=2), batchnorm)")
    }
    return Residual<T>(body: b, shortcut: s?.0)
  }
}
