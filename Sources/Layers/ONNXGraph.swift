import TensorCore

/// A model as an ONNX graph being built (`dpt export --onnx`): its nodes in the order they compute, and the tensors
/// they read (initialisers: the weights, and the constants of reshapes and masks). Each layer adds the nodes of its
/// forward pass in evaluation mode (`Layer.onnx`): BatchNorm with its running statistics, dropout as the identity.
/// FileFormats writes the graph as an ONNX ModelProto.
///
/// Operators of ONNX's opset 17 only (LayerNormalization is its newest), so that any runtime of 2022 or later runs
/// the file.
public struct ONNXGraph: Sendable {
  public enum Attribute: Equatable, Sendable {
    case int(String, Int)
    case ints(String, [Int])
    case float(String, Float)
  }

  public struct Node: Equatable, Sendable {
    public var op: String
    public var inputs: [String]
    public var outputs: [String]
    public var name: String
    public var attributes: [Attribute]
  }

  /// A constant tensor: float weights, or int64 shapes, axes and sizes.
  public struct Initializer: Equatable, Sendable {
    public enum Values: Equatable, Sendable {
      case floats([Float])
      case int64s([Int64])
    }
    public var name: String
    public var shape: [Int]
    public var values: Values
  }

  public private(set) var nodes: [Node] = []
  public private(set) var initializers: [Initializer] = []
  private var used: Set<String> = []

  public init() {}

  /// A name no tensor of the graph has yet: `base`, or `base_2`, `base_3`, ...
  mutating func fresh(_ base: String) -> String {
    var name = base, k = 1
    while used.contains(name) { k += 1; name = "\(base)_\(k)" }
    used.insert(name)
    return name
  }

  /// Reserves a name the caller gives (the graph's input).
  public mutating func reserve(_ name: String) { used.insert(name) }

  /// Adds the node `op(inputs)` and returns the name of its output (`name` and a counter).
  @discardableResult
  public mutating func node(_ op: String, _ inputs: [String], _ attributes: [Attribute] = [], name: String) -> String {
    let output = fresh(name)
    nodes.append(Node(op: op, inputs: inputs, outputs: [output], name: output, attributes: attributes))
    return output
  }

  /// Adds a node with several outputs (Split).
  public mutating func node(_ op: String, _ inputs: [String], outputs count: Int, _ attributes: [Attribute] = [],
                            name: String) -> [String] {
    let outputs = (0..<count).map { fresh("\(name).\($0)") }
    nodes.append(Node(op: op, inputs: inputs, outputs: outputs, name: fresh(name), attributes: attributes))
    return outputs
  }

  /// A float constant of `shape` (the weights, read in their row-major order).
  public mutating func constant(_ name: String, shape: [Int], _ values: [Float]) -> String {
    precondition(values.count == shape.reduce(1, *), "\(values.count) values for the shape \(shape)")
    let n = fresh(name)
    initializers.append(Initializer(name: n, shape: shape, values: .floats(values)))
    return n
  }

  /// A float constant from a layer's parameter slice.
  public mutating func constant<T: Scalar>(_ name: String, shape: [Int], _ p: UnsafeBufferPointer<T>, at range: Range<Int>) -> String {
    constant(name, shape: shape, range.map { Float(Double(p[$0])) })
  }

  /// A 1-D int64 constant (a Reshape's shape, a Split's sizes).
  public mutating func integers(_ name: String, _ values: [Int]) -> String {
    let n = fresh(name)
    initializers.append(Initializer(name: n, shape: [values.count], values: .int64s(values.map(Int64.init))))
    return n
  }

  /// y = x W + b over the last dimension (W stored inputs x outputs, as dpt keeps dense weights): MatMul, then Add.
  public mutating func dense<T: Scalar>(_ x: String, _ p: UnsafeBufferPointer<T>, inputs: Int, outputs: Int, weightsAt w: Int,
                                        biasAt b: Int?, name: String) -> String {
    let W = constant(name + ".weight", shape: [inputs, outputs], p, at: w..<w + inputs * outputs)
    let xw = node("MatMul", [x, W], name: name + ".matmul")
    guard let b else { return xw }
    return node("Add", [xw, constant(name + ".bias", shape: [outputs], p, at: b..<b + outputs)], name: name)
  }

  /// x * c for a float scalar c.
  public mutating func scaled(_ x: String, by c: Float, name: String) -> String {
    node("Mul", [x, constant(name + ".factor", shape: [], [c])], name: name)
  }
}

extension Network {
  /// The network's layers as nodes of `graph`, from the tensor `input`: the name of the output, or nil with the first
  /// layer that has no ONNX form. `prefix` names the tensors as the weights' names do ("3.weight", "5.body.1.bias").
  public func onnx(_ graph: inout ONNXGraph, input: String, parameters p: UnsafeBufferPointer<T>,
                   buffers b: UnsafeBufferPointer<T>, prefix: String = "") -> (output: String?, failed: (any Layer<T>)?) {
    var x = input
    for (i, layer) in layers.enumerated() {
      let own = UnsafeBufferPointer(rebasing: b[bufferOffsets[i]..<bufferOffsets[i + 1]])
      guard let y = layer.onnx(&graph, input: x, parameters: slice(p, i), buffers: own, name: prefix + "\(i)") else {
        return (nil, layer)
      }
      x = y
    }
    return (x, nil)
  }
}
