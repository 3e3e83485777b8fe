import TensorCore

/// A 2-D convolution (cross-correlation, as PyTorch's) over images (batch, channels, height, width).
///
/// Stride 1 (LeNet's and most CNNs'), every pass is computed directly (`ConvolutionKernels.convolve` and
/// `addConvolutionGradients`, vectorised for Float): y = conv(x, W) + b; dW and db are correlations of dy with x; and
/// dx = conv(dy padded by k - 1 - pad, W flipped with its channel axes swapped). Other strides use
/// im2col + sgemm, a chunk of samples at a time: the k x k windows of c samples are unfolded into columns
/// cols (C k k, c P) with P = outH outW positions; then
///   forward:  Y' (F, c P) = W (F, C k k) cols + b,  y (c, F, outH, outW) = Y' with its two leading axes swapped;
///   backward: dW += dY' cols^T,  db += row sums of dY',  dcols = W^T dY',  dx = col2im(dcols).
/// A chunk's columns are kept near 256 KiB, so that they stay in the core's cache between the unfolding, OpenBLAS's
/// packing and the product: unfolding a whole batch of 128 at once wrote 10 to 15 MB per layer, and the CNN spent
/// more time moving those bytes than multiplying (the sgemm kernel was 25% of an epoch). The backward pass unfolds
/// each chunk again rather than keeping the forward pass's columns.
/// Parameters: weight (F, C, k, k), then bias (F). Initialisation as `torch.nn.Conv2d`: uniform in
/// +-1/sqrt(C k k) for both.
public struct Conv2D<T: LayerKernels>: Layer {
  public let inChannels: Int
  public let outChannels: Int
  public let kernel: Int
  public let stride: Int
  public let padding: Int
  public let height: Int
  public let width: Int
  /// Whether y has a bias b (`conv2d(..., bias=false)` leaves it out, as a convolution before a BatchNorm does).
  public let bias: Bool

  public init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, height: Int, width: Int,
              bias: Bool = true) {
    precondition(inChannels > 0 && outChannels > 0 && kernel > 0 && stride > 0 && padding >= 0, "Conv2D shape")
    self.inChannels = inChannels
    self.outChannels = outChannels
    self.kernel = kernel
    self.stride = stride
    self.padding = padding
    self.height = height
    self.width = width
    self.bias = bias
    precondition(geometry(batch: 1).outputHeight > 0 && geometry(batch: 1).outputWidth > 0,
                 "a \(kernel)x\(kernel) kernel does not fit \(height)x\(width) images with padding \(padding)")
  }

  func geometry(batch: Int) -> ConvolutionGeometry {
    ConvolutionGeometry(batch: batch, channels: inChannels, height: height, width: width, kernel: kernel,
                        stride: stride, padding: padding)
  }

  public var inputShape: [Int] { [inChannels, height, width] }
  public var outputShape: [Int] {
    let g = geometry(batch: 1)
    return [outChannels, g.outputHeight, g.outputWidth]
  }

  public var parameters: [ParameterSpec] {
    [ParameterSpec(name: "weight", shape: [outChannels, inChannels, kernel, kernel])]
      + (bias ? [ParameterSpec(name: "bias", shape: [outChannels], isBias: true)] : [])
  }

  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {
    let bound = 1 / Double(inChannels * kernel * kernel).squareRoot()
    for i in p.indices { p[i] = T(rng.uniform(-bound, bound)) }
  }

  /// Samples per chunk: as many as keep one chunk's unfolded columns within 256 KiB (at least one).
  func chunkSize(batch: Int) -> Int {
    let perSample = geometry(batch: 1).patch * geometry(batch: 1).positions * MemoryLayout<T>.stride
    return max(1, min(batch, (256 << 10) / max(perSample, 1)))
  }

  /// Runs `body` on each chunk of the batch: its first sample, its geometry, and scratch for its columns
  /// (C k k, c P) and for one (F, c P) matrix.
  func forEachChunk(batch: Int, _ body: (_ first: Int, _ g: ConvolutionGeometry, _ cols: UnsafeMutablePointer<T>,
                                          _ scratch: UnsafeMutablePointer<T>) -> Void) {
    let c = chunkSize(batch: batch)
    let full = geometry(batch: c)
    let cols = UnsafeMutablePointer<T>.allocate(capacity: full.patch * full.positions)
    let scratch = UnsafeMutablePointer<T>.allocate(capacity: max(outChannels, full.patch) * full.positions)
    defer {
      cols.deallocate()
      scratch.deallocate()
    }
    var first = 0
    while first < batch {
      body(first, geometry(batch: min(c, batch - first)), cols, scratch)
      first += c
    }
  }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    let F = outChannels, K = geometry(batch: 1).patch, P = geometry(batch: 1).positions
    let W = Tensor.base(p), b: UnsafePointer<T>? = bias ? W + F * K : nil
    let inputSize = x.sampleSize
    return Tensor(shape: [x.batch] + outputShape) { y in
      x.withUnsafeBufferPointer { xb in
        if stride == 1 {
          T.convolve(Tensor.base(xb), weights: W, bias: b, into: Tensor.base(y), outChannels: F, geometry(batch: x.batch))
          return
        }
        forEachChunk(batch: x.batch) { first, g, cols, yt in  // yt: Y' (F, c P)
          T.im2col(Tensor.base(xb) + first * inputSize, cols, g)
          if let b { T.fillRows(b, rows: F, cols: g.positions, into: yt) }
          T.gemm(transposeA: false, transposeB: false, m: F, n: g.positions, k: K, alpha: 1, a: W, lda: K, b: cols,
                 ldb: g.positions, beta: b == nil ? 0 : 1, c: yt, ldc: g.positions)
          T.swapLeadingAxes(yt, Tensor.base(y) + first * F * P, a: F, b: g.batch, p: P)
        }
      }
    }
  }

  public func backward(
    _ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
    gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool
  ) -> Tensor<T>? {
    let F = outChannels, K = geometry(batch: 1).patch, P = geometry(batch: 1).positions
    // Without a bias, its sums go to scratch nobody reads.
    let scratch = bias ? nil : UnsafeMutablePointer<T>.allocate(capacity: F)
    scratch?.initialize(repeating: 0, count: F)
    defer { scratch?.deallocate() }
    let W = Tensor.base(p), dW = Tensor.base(dp), db = scratch ?? dW + F * K
    let inputSize = x.sampleSize
    if stride == 1 && padding < kernel {
      // dx is the stride-1 convolution of dy, padded by k - 1 - pad, with the kernels flipped and their channel axes
      // swapped: dx[c, h, w] = sum_{f,i,j} W[f, c, k-1-i, k-1-j] dy[f, h - (k-1-pad) + i, w - (k-1-pad) + j].
      return Tensor.withBases(x, dy) { X, dY -> Tensor<T>? in
        T.addConvolutionGradients(x: X, dy: dY, weights: dW, bias: db, outChannels: F, geometry(batch: x.batch))
        guard needsInputGradient else { return nil }
        let C = inChannels, k = kernel, kk = kernel * kernel
        let flipped = UnsafeMutablePointer<T>.allocate(capacity: F * K)  // (C, F, k, k)
        defer { flipped.deallocate() }
        for f in 0..<F {
          for c in 0..<C {
            for t in 0..<kk { flipped[(c * F + f) * kk + t] = W[(f * C + c) * kk + kk - 1 - t] }
          }
        }
        let g = geometry(batch: 1), back = ConvolutionGeometry(
          batch: x.batch, channels: F, height: g.outputHeight, width: g.outputWidth, kernel: k, stride: 1,
          padding: k - 1 - padding)
        return Tensor(shape: x.shape) { T.convolve(dY, weights: flipped, bias: nil, into: Tensor.base($0), outChannels: C, back) }
      }
    }
    var dx = needsInputGradient ? Tensor<T>(zeros: x.shape) : nil
    let dcols = needsInputGradient ? UnsafeMutablePointer<T>.allocate(capacity: K * P * chunkSize(batch: x.batch)) : nil
    defer { dcols?.deallocate() }
    Tensor.withBases(x, dy) { X, dY in
      forEachChunk(batch: x.batch) { first, g, cols, dyt in  // dyt: dY' (F, c P)
        let N = g.positions
        T.swapLeadingAxes(dY + first * F * P, dyt, a: g.batch, b: F, p: P)
        T.im2col(X + first * inputSize, cols, g)
        T.gemm(transposeA: false, transposeB: true, m: F, n: K, k: N, alpha: 1, a: dyt, lda: N, b: cols, ldb: N,
               beta: 1, c: dW, ldc: K)  // dW += dY' cols^T: (F, cP) (cP, CKK)
        T.addRowSums(dyt, rows: F, cols: N, into: db)
        guard let dcols else { return }
        T.gemm(transposeA: true, transposeB: false, m: K, n: N, k: F, alpha: 1, a: W, lda: K, b: dyt, ldb: N,
               beta: 0, c: dcols, ldc: N)  // dcols = W^T dY': (CKK, F) (F, cP)
        dx!.withUnsafeMutableBufferPointer { T.col2im(dcols, Tensor.base($0) + first * inputSize, g) }
      }
    }
    return dx
  }

  public var summary: String {
    "conv \(inChannels)->\(outChannels) \(kernel)x\(kernel)" + (stride > 1 ? " stride \(stride)" : "") + (padding > 0 ? " pad \(padding)" : "")
      + (bias ? "" : " no bias")
  }

  public var pytorch: PyTorchModule? {
    PyTorchModule("nn.Conv2d(\(inChannels), \(outChannels), kernel_size=\(kernel), stride=\(stride), padding=\(padding)\(bias ? "" : ", bias=False"))")
  }

  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    let n = outChannels * inChannels * kernel * kernel
    let w = graph.constant(name + ".weight", shape: [outChannels, inChannels, kernel, kernel], p, at: 0..<n)
    let inputs = [x, w] + (bias ? [graph.constant(name + ".bias", shape: [outChannels], p, at: n..<n + outChannels)] : [])
    return graph.node("Conv", inputs, [.ints("kernel_shape", [kernel, kernel]), .ints("strides", [stride, stride]),
                                       .ints("pads", [padding, padding, padding, padding])], name: name)
  }
}

/// `conv2d(C, k, stride=1, padding=0, bias=true)` (alias `conv`): `nn.Conv2d`.
public struct Conv2DItem: LayerDefinition {
  public static let names = ["conv2d", "conv"]
  public static let usage = "conv2d(C, k, stride=1, padding=0, bias=true)"
  public var channels, kernel, stride, padding: Int
  public var bias: Bool

  public init(channels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
    (self.channels, self.kernel, self.stride, self.padding, self.bias) = (channels, kernel, stride, padding, bias)
  }

  public init(_ a: LayerArguments) throws {
    let b = try a.bind(["channels", "kernel_size", "stride", "padding", "bias"], required: 2, example: "conv2d(6, 5)")
    try self.init(channels: b.count("channels", "the channels"), kernel: b.count("kernel_size", "the kernel size"),
                  stride: b.count("stride", "the stride", otherwise: 1), padding: b.count("padding", "the padding", minimum: 0, otherwise: 0),
                  bias: b.flag("bias", true))
  }

  public var text: String {
    LayerText.call("conv2d", ["\(channels)", "\(kernel)"] + (stride != 1 ? ["stride=\(stride)"] : []) + (padding != 0 ? ["padding=\(padding)"] : [])
      + (bias ? [] : ["bias=false"]))
  }

  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    let (ci, h, w) = try input.images("conv2d")
    guard kernel <= h + 2 * padding && kernel <= w + 2 * padding else {
      throw LayerProblem("a \(kernel)x\(kernel) kernel is larger than its input \(input.described) (with padding \(padding))")
    }
    return Conv2D<T>(inChannels: ci, outChannels: channels, kernel: kernel, stride: stride, padding: padding, height: h, width: w, bias: bias)
  }
}
