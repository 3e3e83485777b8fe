import RealModule
import TensorCore

/// Batch normalisation with the statistics of the global batch (PyTorch's SyncBatchNorm, on CPUs): per feature of
/// a vector (BatchNorm1d) or per channel of an image (BatchNorm2d), over the n values of that channel in the whole
/// global batch (samples, and positions of an image):
///
///   mean = (1/n) sum x, var = (1/n) sum x^2 - mean^2, xhat = (x - mean) / sqrt(var + eps), y = gamma xhat + beta.
///
/// Under mpirun the forward pass sums each channel's sum x and sum x^2 over every rank (one all-reduce), and the
/// backward pass the two sums it needs, sum dy and sum dy xhat (a second):
///
///   dbeta = sum dy, dgamma = sum dy xhat, dx = gamma / sqrt(var + eps) (dy - (sum dy + xhat sum dy xhat) / n),
///
/// so N ranks compute what one process computes on the whole batch. In training the running statistics are updated
/// as PyTorch does, running = (1 - momentum) running + momentum batch, with the unbiased variance n / (n - 1) var;
/// evaluation normalises with them. They are buffers: in checkpoints and exports (running_mean, running_var,
/// num_batches_tracked), never touched by the optimizer or weight decay. gamma starts at 1, beta at 0.
public struct BatchNorm<T: LayerKernels>: BatchLayer, BufferHolder {
  public let inputShape: [Int]
  public let momentum: Double
  public let eps: Double
  public var outputShape: [Int] { inputShape }
  public var channels: Int { inputShape[0] }
  var inner: Int { inputShape.dropFirst().reduce(1, *) }

  public init(shape: [Int], momentum: Double = 0.1, eps: Double = 1e-5) {
    precondition(shape.count == 1 || shape.count == 3, "BatchNorm takes vectors or (channels, height, width) samples")
    precondition(momentum >= 0 && momentum <= 1 && eps > 0, "BatchNorm needs 0 <= momentum <= 1 and eps > 0")
    inputShape = shape
    self.momentum = momentum
    self.eps = eps
  }

  public var parameters: [ParameterSpec] {
    [ParameterSpec(name: "weight", shape: [channels]), ParameterSpec(name: "bias", shape: [channels], isBias: true)]
  }
  public var bufferSpecs: [ParameterSpec] {
    [ParameterSpec(name: "running_mean", shape: [channels]), ParameterSpec(name: "running_var", shape: [channels]),
     ParameterSpec(name: "num_batches_tracked", shape: [])]
  }
  public func initialBuffers() -> [Double] {
    [Double](repeating: 0, count: channels) + [Double](repeating: 1, count: channels) + [0]
  }

  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {
    for c in 0..<channels {
      p[c] = 1
      p[channels + c] = 0
    }
  }

  // MARK: Training, over the pieces of the global batch

  public func forward(_ x: [Tensor<T>], parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeMutableBufferPointer<T>,
                      context: StepContext, index: Int) throws -> [Tensor<T>] {
    let C = channels
    // sum x and sum x^2 per channel, per piece (in Double), then over the global batch.
    let partials = x.map { piece -> [Double] in
      var sums = [Double](repeating: 0, count: 2 * C)
      piece.withUnsafeBufferPointer { T.channelSums(Tensor.base($0), batch: piece.batch, channels: C, inner: inner, into: &sums) }
      return sums
    }
    let sums = try context.sumOverBatch(partials, 2 * C)
    let n = Double(context.globalCount * inner)
    guard n > 1 else {
      throw LayerError.batchTooSmall(item: StepContext.item(of: index), text: summary, samples: context.globalCount)
    }
    var mean = [Double](repeating: 0, count: C), istd = [Double](repeating: 0, count: C)
    for c in 0..<C {
      mean[c] = sums[c] / n
      let variance = Swift.max(sums[C + c] / n - mean[c] * mean[c], 0)
      istd[c] = 1 / (variance + eps).squareRoot()
      if context.training {
        let unbiased = n > 1 ? variance * n / (n - 1) : variance
        b[c] = T((1 - momentum) * Double(b[c]) + momentum * mean[c])
        b[C + c] = T((1 - momentum) * Double(b[C + c]) + momentum * unbiased)
      }
    }
    if context.training { b[2 * C] += 1 }
    context.saved[index] = mean + istd
    return x.map { normalize($0, mean: mean, istd: istd, parameters: p) }
  }

  func normalize(_ x: Tensor<T>, mean: [Double], istd: [Double], parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    let C = channels
    let shift = (0..<C).map { T(mean[$0]) }, scale = (0..<C).map { T(istd[$0]) }
    return Tensor(shape: x.shape) { y in
      x.withUnsafeBufferPointer { x in
        T.batchNormalize(Tensor.base(x), mean: shift, istd: scale, gamma: Tensor.base(p), beta: Tensor.base(p) + C,
                         Tensor.base(y), batch: x.count / (C * inner), channels: C, inner: inner)
      }
    }
  }

  public func backward(_ dy: [Tensor<T>], inputs x: [Tensor<T>], outputs y: [Tensor<T>], parameters p: UnsafeBufferPointer<T>,
                       gradients dp: [UnsafeMutableBufferPointer<T>], context: StepContext, index: Int,
                       needsInputGradient: Bool) throws -> [Tensor<T>]? {
    let C = channels
    guard let saved = context.saved[index] else { preconditionFailure("BatchNorm's backward before its forward") }
    let mean = (0..<C).map { T(saved[$0]) }, istd = (0..<C).map { T(saved[C + $0]) }
    // sum dy and sum dy xhat per channel, per piece: the piece's own dbeta and dgamma, and the global sums for dx.
    var partials: [[Double]] = []
    for k in x.indices {
      var sums = [Double](repeating: 0, count: 2 * C)
      Tensor.withBases(dy[k], x[k]) { dY, X in
        T.batchNormSums(dy: dY, x: X, mean: mean, istd: istd, batch: x[k].batch, channels: C, inner: inner, into: &sums)
      }
      for c in 0..<C {
        dp[k][c] += T(sums[C + c])  // dgamma = sum dy xhat
        dp[k][C + c] += T(sums[c])  // dbeta = sum dy
      }
      partials.append(sums)
    }
    guard needsInputGradient else { return nil }
    let sums = try context.sumOverBatch(partials, 2 * C)
    let n = Double(context.globalCount * inner)
    let meanDy = (0..<C).map { T(sums[$0] / n) }, meanDyXhat = (0..<C).map { T(sums[C + $0] / n) }
    return x.indices.map { k in
      Tensor(shape: x[k].shape) { dx in
        Tensor.withBases(dy[k], x[k]) { dY, X in
          T.batchNormBackward(dy: dY, x: X, mean: mean, istd: istd, gamma: Tensor.base(p), meanDy: meanDy,
                              meanDyXhat: meanDyXhat, dx: Tensor.base(dx), batch: x[k].batch, channels: C, inner: inner)
        }
      }
    }
  }

  public func evaluate(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>) -> Tensor<T> {
    let C = channels
    return normalize(x, mean: (0..<C).map { Double(b[$0]) }, istd: (0..<C).map { 1 / (Double(b[C + $0]) + eps).squareRoot() },
                     parameters: p)
  }

  // MARK: One batch alone (the `Layer` requirements)

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    var scratch = [T].zeros(2 * channels + 1)
    let context = StepContext.alone(training: false, count: x.batch)
    return scratch.withUnsafeMutableBufferPointer { b in
      try! forward([x], parameters: p, buffers: b, context: context, index: 0)[0]
    }
  }

  public func backward(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
                       gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool) -> Tensor<T>? {
    var scratch = [T].zeros(2 * channels + 1)
    let context = StepContext.alone(training: false, count: x.batch)
    return scratch.withUnsafeMutableBufferPointer { b in
      _ = try! forward([x], parameters: p, buffers: b, context: context, index: 0)
      return try! backward([dy], inputs: [x], outputs: [y], parameters: p, gradients: [dp], context: context, index: 0,
                           needsInputGradient: needsInputGradient)?[0]
    }
  }

  public var summary: String {
    "batchnorm\(inputShape.count == 1 ? "1d" : "2d")(\(channels)\(momentum != 0.1 ? ", momentum=\(momentum)" : "")\(eps != 1e-5 ? ", eps=\(eps)" : ""))"
  }
  public var usesBatchStatistics: Bool { true }

  public var pytorch: PyTorchModule? {
    PyTorchModule("nn.BatchNorm\(inputShape.count == 1 ? 1 : 2)d(\(channels), eps=\(eps), momentum=\(momentum))")
  }

  /// Evaluation's normalisation, by the running statistics (ONNX's BatchNormalization takes channels as dimension 1,
  /// as dpt's samples have them).
  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    let C = channels
    let inputs = [x, graph.constant(name + ".weight", shape: [C], p, at: 0..<C), graph.constant(name + ".bias", shape: [C], p, at: C..<2 * C),
                  graph.constant(name + ".running_mean", shape: [C], b, at: 0..<C), graph.constant(name + ".running_var", shape: [C], b, at: C..<2 * C)]
    return graph.node("BatchNormalization", inputs, [.float("epsilon", Float(eps))], name: name)
  }

}

/// BatchNorm's loops over x (batch, channels, inner), channel by channel.
public protocol BatchNormKernels: Scalar {
  /// sums[c] += sum x, sums[C + c] += sum x^2 over the batch and the inner positions of channel c (in Double).
  static func channelSums(_ x: UnsafePointer<Self>, batch: Int, channels: Int, inner: Int, into sums: inout [Double])
  /// y = gamma_c (x - mean_c) istd_c + beta_c
  static func batchNormalize(_ x: UnsafePointer<Self>, mean: [Self], istd: [Self], gamma: UnsafePointer<Self>,
                             beta: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, batch: Int, channels: Int, inner: Int)
  /// sums[c] += sum dy, sums[C + c] += sum dy xhat, xhat = (x - mean_c) istd_c.
  static func batchNormSums(dy: UnsafePointer<Self>, x: UnsafePointer<Self>, mean: [Self], istd: [Self], batch: Int,
                            channels: Int, inner: Int, into sums: inout [Double])
  /// dx = gamma_c istd_c (dy - meanDy_c - xhat meanDyXhat_c)
  static func batchNormBackward(dy: UnsafePointer<Self>, x: UnsafePointer<Self>, mean: [Self], istd: [Self],
                                gamma: UnsafePointer<Self>, meanDy: [Self], meanDyXhat: [Self], dx: UnsafeMutablePointer<Self>,
                                batch: Int, channels: Int, inner: Int)
}

extension BatchNormKernels {
  public static func channelSums(_ x: UnsafePointer<Self>, batch: Int, channels C: Int, inner: Int, into sums: inout [Double]) {
    for n in 0..<batch {
      for c in 0..<C {
        let (s, q) = sumAndSquares(x + (n * C + c) * inner, count: inner)
        sums[c] += s
        sums[C + c] += q
      }
    }
  }

  /// sum v and sum v^2 of a row, in Double, with four independent accumulators each (a single one waits on the
  /// latency of every add; four keep the adder busy, and the result does not depend on the rank computing it).
  @inline(__always)
  static func sumAndSquares(_ row: UnsafePointer<Self>, count: Int) -> (Double, Double) {
    var s = SIMD4<Double>(), q = SIMD4<Double>()
    var i = 0
    while i + 4 <= count {
      let v = SIMD4<Double>(Double(row[i]), Double(row[i + 1]), Double(row[i + 2]), Double(row[i + 3]))
      s += v
      q += v * v
      i += 4
    }
    var (a, b) = (s.sum(), q.sum())
    while i < count {
      let v = Double(row[i])
      a += v
      b += v * v
      i += 1
    }
    return (a, b)
  }

  public static func batchNormalize(_ x: UnsafePointer<Self>, mean: [Self], istd: [Self], gamma: UnsafePointer<Self>,
                                    beta: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, batch: Int, channels C: Int,
                                    inner: Int) {
    for n in 0..<batch {
      for c in 0..<C {
        let at = (n * C + c) * inner, m = mean[c], s = istd[c] * gamma[c], b = beta[c]
        for i in 0..<inner { y[at + i] = (x[at + i] - m) * s + b }
      }
    }
  }

  public static func batchNormSums(dy: UnsafePointer<Self>, x: UnsafePointer<Self>, mean: [Self], istd: [Self], batch: Int,
                                   channels C: Int, inner: Int, into sums: inout [Double]) {
    for n in 0..<batch {
      for c in 0..<C {
        let at = (n * C + c) * inner, m = mean[c], s = istd[c]
        var a = SIMD4<Double>(), b = SIMD4<Double>()
        var i = 0
        while i + 4 <= inner {
          let g = SIMD4<Double>(Double(dy[at + i]), Double(dy[at + i + 1]), Double(dy[at + i + 2]), Double(dy[at + i + 3]))
          let h = SIMD4<Double>(Double((x[at + i] - m) * s), Double((x[at + i + 1] - m) * s), Double((x[at + i + 2] - m) * s),
                                Double((x[at + i + 3] - m) * s))
          a += g
          b += g * h
          i += 4
        }
        var (ga, gb) = (a.sum(), b.sum())
        while i < inner {
          let g = Double(dy[at + i])
          ga += g
          gb += g * Double((x[at + i] - m) * s)
          i += 1
        }
        sums[c] += ga
        sums[C + c] += gb
      }
    }
  }

  public static func batchNormBackward(dy: UnsafePointer<Self>, x: UnsafePointer<Self>, mean: [Self], istd: [Self],
                                       gamma: UnsafePointer<Self>, meanDy: [Self], meanDyXhat: [Self],
                                       dx: UnsafeMutablePointer<Self>, batch: Int, channels C: Int, inner: Int) {
    for n in 0..<batch {
      for c in 0..<C {
        let at = (n * C + c) * inner, m = mean[c], s = istd[c], k = gamma[c] * s, a = meanDy[c], b = meanDyXhat[c]
        for i in 0..<inner { dx[at + i] = k * (dy[at + i] - a - (x[at + i] - m) * s * b) }
      }
    }
  }
}

extension Float {
  /// BatchNorm's sums for Float, eight values a load, converted to Double four at a time (a Double per element is
  /// what keeps the variance, E[x^2] - mean^2, exact enough; the loads and conversions vectorise here).
  public static func channelSums(_ x: UnsafePointer<Float>, batch: Int, channels C: Int, inner: Int, into sums: inout [Double]) {
    for n in 0..<batch {
      for c in 0..<C {
        let row = x + (n * C + c) * inner
        var s0 = SIMD4<Double>(), s1 = SIMD4<Double>(), q0 = SIMD4<Double>(), q1 = SIMD4<Double>()
        var i = 0
        while i + 8 <= inner {
          let v = UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Float>.self)
          let lo = SIMD4<Double>(v.lowHalf), hi = SIMD4<Double>(v.highHalf)
          s0 += lo; s1 += hi; q0 += lo * lo; q1 += hi * hi
          i += 8
        }
        var s = (s0 + s1).sum(), q = (q0 + q1).sum()
        while i < inner {
          let v = Double(row[i])
          s += v; q += v * v
          i += 1
        }
        sums[c] += s
        sums[C + c] += q
      }
    }
  }

  public static func batchNormSums(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: [Float], istd: [Float], batch: Int,
                                   channels C: Int, inner: Int, into sums: inout [Double]) {
    for n in 0..<batch {
      for c in 0..<C {
        let at = (n * C + c) * inner, m = SIMD8<Float>(repeating: mean[c]), s = SIMD8<Float>(repeating: istd[c])
        var a0 = SIMD4<Double>(), a1 = SIMD4<Double>(), b0 = SIMD4<Double>(), b1 = SIMD4<Double>()
        var i = 0
        while i + 8 <= inner {
          let g = UnsafeRawPointer(dy + at + i).loadUnaligned(as: SIMD8<Float>.self)
          let h = (UnsafeRawPointer(x + at + i).loadUnaligned(as: SIMD8<Float>.self) - m) * s
          let glo = SIMD4<Double>(g.lowHalf), ghi = SIMD4<Double>(g.highHalf)
          a0 += glo; a1 += ghi
          b0 += glo * SIMD4<Double>(h.lowHalf); b1 += ghi * SIMD4<Double>(h.highHalf)
          i += 8
        }
        var ga = (a0 + a1).sum(), gb = (b0 + b1).sum()
        while i < inner {
          let g = Double(dy[at + i])
          ga += g
          gb += g * Double((x[at + i] - mean[c]) * istd[c])
          i += 1
        }
        sums[c] += ga
        sums[C + c] += gb
      }
    }
  }
}

/// `batchnorm(momentum=0.1, eps=1e-5)`: `nn.BatchNorm1d` after a dense layer, `nn.BatchNorm2d` after a convolution;
/// `batchnorm1d` and `batchnorm2d` say which and are checked against the shape.
public struct BatchNormItem: LayerDefinition {
  public static let names = ["batchnorm", "batchnorm1d", "batchnorm2d", "batch-norm"]
  public static let usage = "batchnorm(momentum=0.1, eps=1e-5)"
  public var momentum, eps: Double
  /// 1 or 2 when written so, nil for `batchnorm` (decided by the shape).
  public var dimensions: Int?

  public init(momentum: Double = 0.1, eps: Double = 1e-5, dimensions: Int? = nil) {
    (self.momentum, self.eps, self.dimensions) = (momentum, eps, dimensions)
  }

  public init(_ a: LayerArguments) throws {
    guard a.positional.isEmpty else { throw LayerProblem("\(a.name) takes keywords only: \(a.name)(momentum=0.1, eps=1e-5)") }
    let b = try a.bind(["momentum", "eps"], example: "batchnorm(momentum=0.1)")
    guard let m = try b.number("momentum", 0.1), m >= 0, m <= 1 else { throw LayerProblem("momentum must be from 0 to 1") }
    guard let e = try b.number("eps", 1e-5), e > 0 else { throw LayerProblem("eps must be > 0") }
    self.init(momentum: m, eps: e, dimensions: a.name == "batchnorm1d" ? 1 : a.name == "batchnorm2d" ? 2 : nil)
  }

  public var text: String {
    LayerText.call(dimensions.map { "batchnorm\($0)d" } ?? "batchnorm",
                   (momentum != 0.1 ? ["momentum=\(LayerText.number(momentum))"] : []) + (eps != 1e-5 ? ["eps=\(eps)"] : []))
  }

  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    let shape = input.shape
    guard (shape.count == 1 && input.vocabulary == nil) || shape.count == 3 else {
      throw LayerProblem("batchnorm needs a vector or images; its input is \(input.described)\(shape.count == 2 ? ": use layernorm on a sequence" : "")")
    }
    if let d = dimensions, (d == 1) != (shape.count == 1) {
      throw LayerProblem("batchnorm\(d)d takes \(d == 1 ? "vectors (after a dense layer)" : "images (after a convolution)"); its input is \(input.described): write batchnorm")
    }
    return BatchNorm<T>(shape: shape, momentum: momentum, eps: eps)
  }
}
