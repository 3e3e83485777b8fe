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
    let B = x.batch
    let W = Tensor.base(p)
    let dW = Tensor.base(dp), db = dW + inputs * outputs
    dy.withUnsafeBufferPointer { dyb in
      let dyp = Tensor.base(dyb)
      x.withUnsafeBufferPointer { x in  // dW += x^T dy: (in, B) (B, out)
        T.gemm(transposeA: true, transposeB: false, m: inputs, n: outputs, k: B,
               alpha: 1, a: Tensor.base(x), lda: inputs, b: dyp, ldb: outputs, beta: 1, c: dW, ldc: outputs)
      }
      T.addColumnSums(dyp, rows: B, cols: outputs, into: db)  // db += 1^T dy
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
