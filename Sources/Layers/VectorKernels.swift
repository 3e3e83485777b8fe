import TensorCore
import _KernelsAVX2
import _KernelsAVX512

// Float's element-wise functions through the hand-written vector kernels of the CPU's build (`KernelISA`):
// `_Kernels/VectorMath.swift`, compiled for AVX2 and for AVX-512.

extension Float {
  /// GELU (both forms) through the vector kernels of the CPU's build (`_Kernels/VectorMath.swift`: no call a value);
  /// the other activations as every scalar type computes them.
  public static func activate(_ f: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int) {
    activate(f, x, y, count: n, isa: KernelISA.current)
  }

  public static func activate(_ f: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int,
                              isa: KernelISA) {
    switch (f, isa) {
    case (.gelu, .avx2): _KernelsAVX2.VectorMath.gelu(x, y, count: n)
    case (.gelu, .avx512): _KernelsAVX512.VectorMath.gelu(x, y, count: n)
    case (.geluTanh, .avx2): _KernelsAVX2.VectorMath.geluTanh(x, y, count: n)
    case (.geluTanh, .avx512): _KernelsAVX512.VectorMath.geluTanh(x, y, count: n)
    default: activateLoops(f, x, y, count: n)
    }
  }

  public static func activateBackward(_ f: Activation, x: UnsafePointer<Float>, y: UnsafePointer<Float>,
                                      dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, count n: Int) {
    activateBackward(f, x: x, y: y, dy: dy, dx: dx, count: n, isa: KernelISA.current)
  }

  public static func activateBackward(_ f: Activation, x: UnsafePointer<Float>, y: UnsafePointer<Float>,
                                      dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, count n: Int, isa: KernelISA) {
    switch (f, isa) {
    case (.gelu, .avx2): _KernelsAVX2.VectorMath.geluBackward(x, y, dy, dx, count: n)
    case (.gelu, .avx512): _KernelsAVX512.VectorMath.geluBackward(x, y, dy, dx, count: n)
    case (.geluTanh, .avx2): _KernelsAVX2.VectorMath.geluTanhBackward(x, dy, dx, count: n)
    case (.geluTanh, .avx512): _KernelsAVX512.VectorMath.geluTanhBackward(x, dy, dx, count: n)
    default: activateBackwardLoops(f, x: x, y: y, dy: dy, dx: dx, count: n)
    }
  }

  /// Each x_j = e^(x_j - m), j < n, through the CPU's build; returns their sum.
  public static func expShifted(_ x: UnsafeMutablePointer<Float>, count n: Int, minus m: Float, isa: KernelISA = .current) -> Float {
    switch isa {
    case .avx2: _KernelsAVX2.VectorMath.expShifted(x, count: n, minus: m)
    case .avx512: _KernelsAVX512.VectorMath.expShifted(x, count: n, minus: m)
    }
  }
}
