import Foundation
import TensorCore
import _KernelsAVX2
import _KernelsAVX512

/// Which build of the hand-written vector kernels runs: AVX-512 where the CPU reports AVX-512 F/BW/DQ/VL, AVX2 and FMA
/// elsewhere (see Sources/_Kernels). `DPT_KERNELS=avx2` takes the AVX2 build on any CPU (to compare them).
public enum KernelISA: String, Sendable, CaseIterable {
  case avx2, avx512

  /// The build this process runs.
  public static let current: KernelISA = {
    if let forced = ProcessInfo.processInfo.environment["DPT_KERNELS"].flatMap(KernelISA.init(rawValue:)),
       forced == .avx2 || CPUFeatures.current.avx512 { return forced }
    return CPUFeatures.current.avx512 ? .avx512 : .avx2
  }()

  /// The builds this CPU runs.
  public static var available: [KernelISA] { CPUFeatures.current.avx512 ? [.avx2, .avx512] : [.avx2] }

  /// "AVX-512, blocks of 8 and 6 channels".
  public var summary: String {
    switch self {
    case .avx2: _KernelsAVX2.DirectConvolution.summary
    case .avx512: _KernelsAVX512.DirectConvolution.summary
    }
  }
}

extension Float {
  /// The stride-1 convolution for Float, computed directly (no unfolding, packing or transposes) by the vector
  /// kernels of `isa` (see `_Kernels/DirectConvolution.swift`).
  public static func convolve(_ x: UnsafePointer<Float>, weights W: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              into y: UnsafeMutablePointer<Float>, outChannels F: Int, _ g: ConvolutionGeometry) {
    convolve(x, weights: W, bias: bias, into: y, outChannels: F, g, isa: KernelISA.current)
  }

  public static func convolve(_ x: UnsafePointer<Float>, weights W: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              into y: UnsafeMutablePointer<Float>, outChannels F: Int, _ g: ConvolutionGeometry, isa: KernelISA) {
    precondition(g.stride == 1, "convolve is the stride-1 convolution")
    switch isa {
    case .avx2:
      _KernelsAVX2.DirectConvolution.forward(x, weights: W, bias: bias, into: y, outChannels: F,
                                             .init(batch: g.batch, channels: g.channels, height: g.height, width: g.width, kernel: g.kernel, padding: g.padding))
    case .avx512:
      _KernelsAVX512.DirectConvolution.forward(x, weights: W, bias: bias, into: y, outChannels: F,
                                               .init(batch: g.batch, channels: g.channels, height: g.height, width: g.width, kernel: g.kernel, padding: g.padding))
    }
  }

  /// The stride-1 convolution's parameter gradients for Float, added on, by the vector kernels of `isa`.
  public static func addConvolutionGradients(x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                             weights dW: UnsafeMutablePointer<Float>, bias db: UnsafeMutablePointer<Float>,
                                             outChannels F: Int, _ g: ConvolutionGeometry) {
    addConvolutionGradients(x: x, dy: dy, weights: dW, bias: db, outChannels: F, g, isa: KernelISA.current)
  }

  public static func addConvolutionGradients(x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                             weights dW: UnsafeMutablePointer<Float>, bias db: UnsafeMutablePointer<Float>,
                                             outChannels F: Int, _ g: ConvolutionGeometry, isa: KernelISA) {
    precondition(g.stride == 1, "addConvolutionGradients is the stride-1 convolution's")
    switch isa {
    case .avx2:
      _KernelsAVX2.DirectConvolution.addGradients(x: x, dy: dy, weights: dW, bias: db, outChannels: F,
                                                  .init(batch: g.batch, channels: g.channels, height: g.height, width: g.width, kernel: g.kernel, padding: g.padding))
    case .avx512:
      _KernelsAVX512.DirectConvolution.addGradients(x: x, dy: dy, weights: dW, bias: db, outChannels: F,
                                                    .init(batch: g.batch, channels: g.channels, height: g.height, width: g.width, kernel: g.kernel, padding: g.padding))
    }
  }
}
