import RealModule
import TensorCore

/// A fully connected layer: y = x W + b.
///
/// Shapes: x is (B, inputs), W is (inputs, outputs), b is (outputs), y is (B, outputs). Parameters are laid out
/// as W (row-major) then b. Backward: dW += x^T dy, db += sum over the batch of dy, dx = dy W^T.
/// Initialisation as `torch.nn.Linear`: W and b uniform in +-1/sqrt(inputs).
public struct Dense<T: LayerKernels>: Layer {
  public let inputs: Int
  public let outputs: Int

  public init(inputs: Int, outputs: Int) {
    precondition(inputs > 0 && outputs > 0, "Dense needs inputs > 0 and outputs > 0")
    self.inputs = inputs
    self.outputs = outputs
  }

  public var inputShape: [Int] { [inputs] }
  public var outputShape: [Int] { [outputs] }
  public var parameters: [ParameterSpec] {
    [ParameterSpec(name: "weight", shape: [inputs, outputs]), ParameterSpec(name: "bias", shape: [outputs], isBias: true)]
  }

  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {
    let bound = 1 / Double(inputs).squareRoot()
    for i in p.indices { p[i] = T(rng.uniform(-bound, bound)) }
  }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    let B = x.batch
    precondition(x.sampleSize == inputs, "Dense(\(inputs) -> \(outputs)) got samples of \(x.sampleSize)")
    return Tensor(shape: [B, outputs]) { y in
      let W = Tensor.base(p), b = W + inputs * outputs
      let yp = Tensor.base(y)
      T.broadcastRows(b, rows: B, cols: outputs, into: yp)  // y = 1 b^T
      x.withUnsafeBufferPointer { x in  // y += x W: (B, in) (in, out)
        T.gemm(transposeA: false, transposeB: false, m: B, n: outputs, k: inputs,
               alpha: 1, a: Tensor.base(x), lda: inputs, b: W, ldb: outputs, beta: 1, c: yp, ldc: outputs)
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

  /// The bias gradient first (it is one pass over dy), then the weight gradient in blocks of whole rows from the
  /// last row up, each of about `blockElements` (rows of W are the layer's inputs).
  public func gradientBlocks(blockElements: Int) -> [Range<Int>] {
    let w = inputs * outputs
    let rows = max(1, min(inputs, blockElements / outputs))
    var out = [w..<w + outputs]
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
    let B = x.batch
    let W = Tensor.base(p)
    let dW = Tensor.base(dp), db = dW + inputs * outputs
    let blocks = gradientBlocks(blockElements: blockElements)
    dy.withUnsafeBufferPointer { dyb in
      let dyp = Tensor.base(dyb)
      T.addColumnSums(dyp, rows: B, cols: outputs, into: db)  // db += 1^T dy
      ready(blocks[0])
      x.withUnsafeBufferPointer { x in
        for block in blocks.dropFirst() {  // dW[r0..<r1, :] += x[:, r0..<r1]^T dy: (rows, B) (B, out)
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

  public var summary: String { "dense \(inputs) -> \(outputs)" }
}
