import RealModule
import TensorCore

/// A fully connected layer: y = x W + b (b left out when `bias` is false).
///
/// Shapes: x is (B, ..., inputs), W is (inputs, outputs), b is (outputs), y is (B, ..., outputs): on a sequence
/// (B, T, inputs) every position is one row of the product, as PyTorch's `nn.Linear` acts on the last dimension.
/// Parameters are laid out as W (row-major) then b. Backward: dW += x^T dy, db += sum over the rows of dy,
/// dx = dy W^T. Initialisation as `torch.nn.Linear`: W and b uniform in +-1/sqrt(inputs).
public struct Dense<T: LayerKernels>: Layer {
  public let inputs: Int
  public let outputs: Int
  public let bias: Bool
  /// The dimensions before the last one of a sample: [] for a vector, [T] for a sequence.
  public let leading: [Int]

  public init(inputs: Int, outputs: Int, bias: Bool = true, leading: [Int] = []) {
    precondition(inputs > 0 && outputs > 0, "Dense needs inputs > 0 and outputs > 0")
    self.inputs = inputs
    self.outputs = outputs
    self.bias = bias
    self.leading = leading
  }

  public var inputShape: [Int] { leading + [inputs] }
  public var outputShape: [Int] { leading + [outputs] }
  public var parameters: [ParameterSpec] {
    // PyTorch keeps the weight as (outputs, inputs).
    [ParameterSpec(name: "weight", shape: [inputs, outputs], transposed: true)]
      + (bias ? [ParameterSpec(name: "bias", shape: [outputs], isBias: true)] : [])
  }

  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {
    let bound = 1 / Double(inputs).squareRoot()
    for i in p.indices { p[i] = T(rng.uniform(-bound, bound)) }
  }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    precondition(x.sampleSize == inputShape.reduce(1, *), "Dense(\(inputs) -> \(outputs)) got samples of \(x.sampleSize)")
    let rows = x.count / inputs  // B, or B T on a sequence
    return Tensor(shape: [x.batch] + outputShape) { y in
      let W = Tensor.base(p), b = W + inputs * outputs
      let yp = Tensor.base(y)
      if bias { T.broadcastRows(b, rows: rows, cols: outputs, into: yp) }  // y = 1 b^T
      x.withUnsafeBufferPointer { x in  // y += x W: (rows, in) (in, out)
        T.gemm(transposeA: false, transposeB: false, m: rows, n: outputs, k: inputs,
               alpha: 1, a: Tensor.base(x), lda: inputs, b: W, ldb: outputs, beta: bias ? 1 : 0, c: yp, ldc: outputs)
      }
    }
  }

  public func backward(
    _ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
    gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool
  ) -> Tensor<T>? {
    backward(dy, input: x, output: y, parameters: p, gradients: dp, needsInputGradient: needsInputGradient,
             blockElements: .max) { _ in }
  }

  /// The bias gradient first (it is one pass over dy; none without a bias), then the weight gradient in blocks of
  /// whole rows from the last row up, each of about `blockElements` (rows of W are the layer's inputs).
  public func gradientBlocks(blockElements: Int) -> [Range<Int>] {
    let w = inputs * outputs
    let rows = max(1, min(inputs, blockElements / outputs))
    var out = bias ? [w..<w + outputs] : []
    var end = inputs
    while end > 0 {
      let start = max(0, end - rows)
      out.append(start * outputs..<end * outputs)
      end = start
    }
    return out
  }

  public func backward(
    _ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
    gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool, blockElements: Int,
    ready: (Range<Int>) -> Void
  ) -> Tensor<T>? {
    let B = x.count / inputs  // rows: samples, or samples x positions
    let W = Tensor.base(p)
    let dW = Tensor.base(dp), db = dW + inputs * outputs
    let blocks = gradientBlocks(blockElements: blockElements)
    dy.withUnsafeBufferPointer { dyb in
      let dyp = Tensor.base(dyb)
      if bias {
        T.addColumnSums(dyp, rows: B, cols: outputs, into: db)  // db += 1^T dy
        ready(blocks[0])
      }
      x.withUnsafeBufferPointer { x in
        for block in blocks.dropFirst(bias ? 1 : 0) {  // dW[r0..<r1, :] += x[:, r0..<r1]^T dy: (rows, B) (B, out)
          let r0 = block.lowerBound / outputs, rows = block.count / outputs
          T.gemm(transposeA: true, transposeB: false, m: rows, n: outputs, k: B, alpha: 1, a: Tensor.base(x) + r0,
                 lda: inputs, b: dyp, ldb: outputs, beta: 1, c: dW + block.lowerBound, ldc: outputs)
          ready(block)
        }
      }
    }
    guard needsInputGradient else { return nil }
    return Tensor(shape: x.shape) { dx in  // dx = dy W^T: (B, out) (out, in)
      dy.withUnsafeBufferPointer { dy in
        T.gemm(transposeA: false, transposeB: true, m: B, n: inputs, k: outputs,
               alpha: 1, a: Tensor.base(dy), lda: outputs, b: W, ldb: outputs, beta: 0, c: Tensor.base(dx), ldc: inputs)
      }
    }
  }

  public var summary: String { "dense \(inputs) -> \(outputs)" + (bias ? "" : " no bias") }

  public var pytorch: PyTorchModule? { PyTorchModule("nn.Linear(\(inputs), \(outputs)\(bias ? "" : ", bias=False"))") }

  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    graph.dense(x, p, inputs: inputs, outputs: outputs, weightsAt: 0, biasAt: bias ? inputs * outputs : nil, name: name)
  }
}

/// `dense(N)` (alias `linear(N)`), `dense(N, bias=false)`: `nn.Linear` on a vector or on every position of a
/// sequence.
public struct DenseItem: LayerDefinition {
  public static let names = ["dense", "linear"]
  public static let usage = "dense(N, bias=true)"
  public var units: Int
  public var bias: Bool

  public init(units: Int, bias: Bool = true) {
    self.units = units
    self.bias = bias
  }

  public init(_ a: LayerArguments) throws {
    let b = try a.bind(["units", "bias"], required: 1, example: "dense(256)")
    try self.init(units: b.count("units", "the number of units"), bias: b.flag("bias", true))
  }

  public var text: String { LayerText.call("dense", ["\(units)"] + (bias ? [] : ["bias=false"])) }

  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    let n = try input.features("dense")
    return Dense<T>(inputs: n, outputs: units, bias: bias, leading: Array(input.shape.dropLast()))
  }
}
