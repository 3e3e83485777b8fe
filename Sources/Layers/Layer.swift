import TensorCore

/// One named parameter tensor of a layer, in the layer's slice of the flat parameter buffer.
public struct ParameterSpec: Equatable, Sendable {
  public var name: String
  public var shape: [Int]
  /// Biases (and other shifts) that ridge regression and `--decay-bias false` leave out of the L2 penalty.
  public var isBias: Bool
  /// PyTorch's name for the tensor in the layer's module: the same as `name` but where PyTorch calls it otherwise
  /// (PReLU's slopes are its "weight").
  public var pytorchName: String
  /// Whether PyTorch keeps the tensor transposed: a dense weight, (inputs, outputs) here, is (outputs, inputs) in
  /// `nn.Linear`.
  public var transposed: Bool
  public var count: Int { shape.reduce(1, *) }
  /// The shape in PyTorch's layout.
  public var pytorchShape: [Int] { transposed ? [shape[1], shape[0]] : shape }

  public init(name: String, shape: [Int], isBias: Bool = false, pytorchName: String? = nil, transposed: Bool = false) {
    precondition(!transposed || shape.count == 2, "only a matrix is transposed")
    self.name = name
    self.shape = shape
    self.isBias = isBias
    self.pytorchName = pytorchName ?? name
    self.transposed = transposed
  }

  /// The tensor of a layer held in another one under `prefix` ("body.0"): both names prefixed.
  public func nested(in prefix: String) -> ParameterSpec {
    var s = self
    s.name = prefix + "." + name
    s.pytorchName = prefix + "." + pytorchName
    return s
  }
}

/// A layer's PyTorch equivalent, for `dpt export --pytorch`: the expression that makes its module, and the classes
/// that expression needs beyond `torch.nn` (by name: a class several layers use is defined once).
public struct PyTorchModule: Equatable, Sendable {
  public var code: String
  public var classes: [String: String]

  public init(_ code: String, classes: [String: String] = [:]) {
    self.code = code
    self.classes = classes
  }
}

/// A layer: a value with an explicit forward and backward pass over a batch.
///
/// Parameters are not stored in the layer: every layer gets its slice `p` of the network's one flat parameter
/// buffer, and adds into the matching slice `dp` of the one flat gradient buffer (zeroed once per step), so the
/// data-parallel reduction is a single call over one buffer. The backward pass receives the forward pass's input
/// and output, which is all any layer here needs.
public protocol Layer<T> {
  associatedtype T: LayerKernels
  /// One sample's input shape, without the batch dimension.
  var inputShape: [Int] { get }
  /// One sample's output shape.
  var outputShape: [Int] { get }
  /// The parameter tensors, in the order they are laid out in the layer's slice.
  var parameters: [ParameterSpec] { get }
  /// Writes the initial values of the parameters (from `rng`, for reproducible initialisation).
  func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource)
  /// y = f(x; p) for a batch x of shape (B, inputShape...).
  func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T>
  /// Adds dL/dp into `dp` and returns dL/dx (nil when `needsInputGradient` is false: the first layer).
  func backward(
    _ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
    gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool
  ) -> Tensor<T>?
  /// A short description, e.g. "dense 784 -> 256".
  var summary: String { get }

  /// The module PyTorch computes the same function with, its state_dict named as `parameters` and buffers say
  /// (nil: the layer has none, and `dpt export --pytorch` says so).
  var pytorch: PyTorchModule? { get }

  /// This layer's forward pass in evaluation mode as nodes of `graph`, reading the tensor named `input`: the name of
  /// its output, or nil when the layer has no ONNX form (`dpt export --onnx` then says so). `parameters` and `buffers`
  /// are its slices; `name` is its place in the network ("3", "5.body.1"), which its tensors' names start with.
  func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
            name: String) -> String?

  /// The pieces of this layer's gradient (ranges of its slice) in the order its backward pass finishes them, when
  /// asked for pieces of about `blockElements`: a data-parallel exchange can send each piece while the rest is still
  /// being computed. Default: the whole slice at the end of the backward pass.
  func gradientBlocks(blockElements: Int) -> [Range<Int>]
  /// `backward`, calling `ready` with each range of `gradientBlocks(blockElements:)` as soon as it is final.
  func backward(
    _ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
    gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool, blockElements: Int,
    ready: (Range<Int>) -> Void
  ) -> Tensor<T>?
}

extension Layer {
  public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

  public var pytorch: PyTorchModule? { nil }

  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? { nil }

  public func gradientBlocks(blockElements: Int) -> [Range<Int>] {
    parameterCount > 0 ? [0..<parameterCount] : []
  }

  public func backward(
    _ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
    gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool, blockElements: Int,
    ready: (Range<Int>) -> Void
  ) -> Tensor<T>? {
    let dx = backward(dy, input: x, output: y, parameters: p, gradients: dp, needsInputGradient: needsInputGradient)
    for block in gradientBlocks(blockElements: blockElements) { ready(block) }
    return dx
  }
}

/// A layer without parameters (activations, softmax, pooling, flatten): its backward pass is only the gradient with
/// respect to its input, and it has nothing to initialise.
public protocol ParameterFreeLayer<T>: Layer {
  /// dL/dx from dL/dy, the input x and the output y.
  func inputGradient(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>) -> Tensor<T>
}

extension ParameterFreeLayer {
  public var parameters: [ParameterSpec] { [] }

  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {}

  public func backward(
    _ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
    gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool
  ) -> Tensor<T>? {
    needsInputGradient ? inputGradient(dy, input: x, output: y) : nil
  }
}
