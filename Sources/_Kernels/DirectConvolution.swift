// This file is compiled twice, into _KernelsAVX2 (-target-cpu haswell: a 16-float vector is two AVX registers, 16
// of them) and into _KernelsAVX512 (-target-cpu skylake-avx512: one register of 32). Layers calls the one the CPU
// runs (`KernelISA`). Only the block of output channels each pass keeps in registers differs (`Blocks.sizes`).

typealias V = SIMD16<Float>

/// The stride-1 convolution for Float, sixteen output columns a vector: no unfolded columns, no GEMM packing and no
/// transpose of the output. LeNet's convolutions have 6 or 16 channels and 5x5 kernels: GEMMs of those shapes (6 or
/// 16 rows) kept OpenBLAS's kernel at a third of its speed, and unfolding, packing and transposing around them cost
/// as much again.
public enum DirectConvolution {
  /// A stride-1 convolution's shapes: input (batch, channels, height, width), square kernel, equal padding.
  public struct Shape {
    public var batch: Int, channels: Int, height: Int, width: Int, kernel: Int, padding: Int

    public init(batch: Int, channels: Int, height: Int, width: Int, kernel: Int, padding: Int) {
      (self.batch, self.channels, self.height, self.width, self.kernel, self.padding) = (batch, channels, height, width, kernel, padding)
    }

    var outputHeight: Int { height + 2 * padding - kernel + 1 }
    var outputWidth: Int { width + 2 * padding - kernel + 1 }
  }

  /// The vector width this build computes with, and its blocks of output channels: "AVX-512, blocks of 8 and 6".
  public static var summary: String { "\(Blocks.isa), blocks of \(Blocks.sizes.map(String.init).joined(separator: " and ")) channels" }

  /// The block of output channels for F of them: the size of `Blocks.sizes` that pads F least (the first on a tie).
  static func block(for F: Int) -> Int {
    Blocks.sizes.min { a, b in ((F + a - 1) / a) * a < ((F + b - 1) / b) * b }!
  }

  /// y[b, f, r, q] = bias_f + sum_{c,i,j} W[f, c, i, j] x[b, c, r - pad + i, q - pad + j] (0 outside), for x (batch, C,
  /// H, W), W (F, C, k, k) and y (batch, F, outH, outW); no bias adds nothing.
  ///
  /// Each sample's planes are copied into a zero-bordered buffer xp (C, H + 2 pad, pw), so that every window row is
  /// an unconditional load; pw leaves room for the columns past outW that the last vector computes and drops. The
  /// inner loop holds a block of output channels x 16 columns in registers: per (c, i, j), one vector of x, one
  /// broadcast weight a channel, one FMA a channel. Weights are repacked as (F / block, C k k, block), channels past F
  /// zero.
  public static func forward(_ x: UnsafePointer<Float>, weights W: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                             into y: UnsafeMutablePointer<Float>, outChannels F: Int, _ g: Shape) {
    switch block(for: F) {
    case 8: forward(x, weights: W, bias: bias, into: y, outChannels: F, g, Eight.self)
    default: forward(x, weights: W, bias: bias, into: y, outChannels: F, g, Six.self)
    }
  }

  static func forward<A: Accumulators>(_ x: UnsafePointer<Float>, weights W: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                       into y: UnsafeMutablePointer<Float>, outChannels F: Int, _ g: Shape, _: A.Type) {
    let n = A.count
    let C = g.channels, k = g.kernel, oh = g.outputHeight, ow = g.outputWidth, K = C * k * k
    let layout = PaddedPlanes(g), ph = layout.height, pw = layout.width, spans = layout.spans
    let blocks = (F + n - 1) / n

    let wp = UnsafeMutablePointer<Float>.allocate(capacity: blocks * K * n)
    let bp = UnsafeMutablePointer<Float>.allocate(capacity: blocks * n)
    let xp = UnsafeMutablePointer<Float>.allocate(capacity: C * ph * pw)
    defer {
      wp.deallocate()
      bp.deallocate()
      xp.deallocate()
    }
    for blk in 0..<blocks {
      for fb in 0..<n {
        let f = blk * n + fb
        bp[blk * n + fb] = f < F ? (bias?[f] ?? 0) : 0
        for t in 0..<K { wp[(blk * K + t) * n + fb] = f < F ? W[f * K + t] : 0 }
      }
    }
    xp.initialize(repeating: 0, count: C * ph * pw)

    for b in 0..<g.batch {
      layout.copy(x + b * C * g.height * g.width, into: xp)
      for blk in 0..<blocks {
        let w0 = wp + blk * K * n, live = Swift.min(n, F - blk * n)
        let outs = y + (b * F + blk * n) * oh * ow
        for r in 0..<oh {
          for sp in 0..<spans {
            var a = A(splat: bp + blk * n)
            var w = UnsafePointer(w0)
            for c in 0..<C {
              for i in 0..<k {
                var at = UnsafeRawPointer(xp + (c * ph + r + i) * pw + 16 * sp)
                for _ in 0..<k {
                  a.add(weights: w, times: at.loadUnaligned(as: V.self))
                  at += 4
                  w += n
                }
              }
            }
            // Whole spans are stored as vectors; the last one's columns past outW are dropped.
            let q = 16 * sp, whole = q + 16 <= ow
            let to = outs + r * ow + q
            for fb in 0..<live {
              let o = to + fb * oh * ow, v = a[fb]
              if whole {
                UnsafeMutableRawPointer(o).storeBytes(of: v, as: V.self)
              } else {
                for l in 0..<(ow - q) { o[l] = v[l] }
              }
            }
          }
        }
      }
    }
  }

  /// The parameter gradients, added on: for dy (batch, F, outH, outW), dW[f, c, i, j] += sum_{b,r,q} dy[b, f, r, q]
  /// x[b, c, r - pad + i, q - pad + j] and db[f] += sum_{b,r,q} dy[b, f, r, q].
  ///
  /// A chunk of samples is copied into zero-bordered planes xp (as `forward`'s) and dy into rows of 16 spans' width
  /// whose columns past outW are 0, so the columns a vector computes past outW add nothing. Then for each block of
  /// output channels and each (c, i, j), registers hold sum_{b,r} dy[b, f, r, q..q+15] * xp[b, c, r + i, q + j..q +
  /// j + 15] for the block's channels, one load of x and one of dy a channel feeding one FMA; their lanes are summed
  /// into dW once per chunk.
  public static func addGradients(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, weights dW: UnsafeMutablePointer<Float>,
                                  bias db: UnsafeMutablePointer<Float>, outChannels F: Int, _ g: Shape) {
    switch block(for: F) {
    case 8: addGradients(x: x, dy: dy, weights: dW, bias: db, outChannels: F, g, Eight.self)
    default: addGradients(x: x, dy: dy, weights: dW, bias: db, outChannels: F, g, Six.self)
    }
  }

  static func addGradients<A: Accumulators>(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, weights dW: UnsafeMutablePointer<Float>,
                                            bias db: UnsafeMutablePointer<Float>, outChannels F: Int, _ g: Shape, _: A.Type) {
    let n = A.count
    let C = g.channels, k = g.kernel, oh = g.outputHeight, ow = g.outputWidth
    let layout = PaddedPlanes(g), ph = layout.height, pw = layout.width, spans = layout.spans, sw = 16 * spans
    let blocks = (F + n - 1) / n, Fp = n * blocks
    let xSize = C * ph * pw, dySize = Fp * oh * sw
    // The samples of a chunk share each (block, c, i, j)'s sums: enough of them that the lanes are summed rarely, few
    // enough that a block's dy and one plane of x stay in L1 (24 KiB) through the k k passes over them. A chunk of
    // 256 KiB (from L2) ran at a third of the speed.
    let chunk = Swift.max(1, Swift.min(g.batch, (24 << 10) / (4 * (n * oh * sw + ph * pw))))
    let xp = UnsafeMutablePointer<Float>.allocate(capacity: chunk * xSize)
    let dyp = UnsafeMutablePointer<Float>.allocate(capacity: chunk * dySize)
    defer {
      xp.deallocate()
      dyp.deallocate()
    }
    xp.initialize(repeating: 0, count: chunk * xSize)
    dyp.initialize(repeating: 0, count: chunk * dySize)

    var first = 0
    while first < g.batch {
      let count = Swift.min(chunk, g.batch - first)
      for b in 0..<count {
        layout.copy(x + (first + b) * C * g.height * g.width, into: xp + b * xSize)
        for f in 0..<F {
          let from = dy + ((first + b) * F + f) * oh * ow, to = dyp + b * dySize + f * oh * sw
          var s = V()
          for r in 0..<oh {
            (to + r * sw).update(from: from + r * ow, count: ow)
            for sp in 0..<spans { s += UnsafeRawPointer(to + r * sw + 16 * sp).loadUnaligned(as: V.self) }
          }
          db[f] += s.sum()
        }
      }
      let planeBytes = 4 * oh * sw
      for blk in 0..<blocks {
        let live = Swift.min(n, F - blk * n)
        for c in 0..<C {
          for i in 0..<k {
            for j in 0..<k {
              var a = A()
              for b in 0..<count {
                // x's row r + i from column j, and the block's dy rows, whose vectors follow one another.
                var xr = xp + b * xSize + (c * ph + i) * pw + j
                var d = UnsafeRawPointer(dyp + b * dySize + blk * n * oh * sw)
                for _ in 0..<oh {
                  for sp in 0..<spans {
                    a.add(rows: d, apart: planeBytes, times: UnsafeRawPointer(xr + 16 &* sp).loadUnaligned(as: V.self))
                    d += 64
                  }
                  xr += pw
                }
              }
              let w = dW + ((blk * n * C) + c) * k * k + i * k + j, step = C * k * k
              for fb in 0..<live { w[fb * step] += a[fb].sum() }
            }
          }
        }
      }
      first += count
    }
  }
}

/// A block of output channels' sums in registers, one 16-float vector a channel (`Six` for AVX2's 16 registers,
/// `Eight` where AVX-512 has 32).
protocol Accumulators {
  static var count: Int { get }
  init()
  /// Channel f starts at bias[f].
  init(splat bias: UnsafePointer<Float>)
  /// a_f += w[f] v for each channel f.
  mutating func add(weights w: UnsafePointer<Float>, times v: V)
  /// a_f += (the vector at d + f apart bytes) v for each channel f.
  mutating func add(rows d: UnsafeRawPointer, apart: Int, times v: V)
  subscript(f: Int) -> V { get }
}

struct Six: Accumulators {
  static var count: Int { 6 }
  var a0 = V(), a1 = V(), a2 = V(), a3 = V(), a4 = V(), a5 = V()

  init() {}
  init(splat b: UnsafePointer<Float>) {
    (a0, a1, a2, a3, a4, a5) = (V(repeating: b[0]), V(repeating: b[1]), V(repeating: b[2]), V(repeating: b[3]), V(repeating: b[4]),
                                V(repeating: b[5]))
  }

  @inline(__always) mutating func add(weights w: UnsafePointer<Float>, times v: V) {
    a0.addProduct(V(repeating: w[0]), v)
    a1.addProduct(V(repeating: w[1]), v)
    a2.addProduct(V(repeating: w[2]), v)
    a3.addProduct(V(repeating: w[3]), v)
    a4.addProduct(V(repeating: w[4]), v)
    a5.addProduct(V(repeating: w[5]), v)
  }

  @inline(__always) mutating func add(rows d: UnsafeRawPointer, apart p: Int, times v: V) {
    a0.addProduct(d.loadUnaligned(as: V.self), v)
    a1.addProduct(d.loadUnaligned(fromByteOffset: p, as: V.self), v)
    a2.addProduct(d.loadUnaligned(fromByteOffset: 2 &* p, as: V.self), v)
    a3.addProduct(d.loadUnaligned(fromByteOffset: 3 &* p, as: V.self), v)
    a4.addProduct(d.loadUnaligned(fromByteOffset: 4 &* p, as: V.self), v)
    a5.addProduct(d.loadUnaligned(fromByteOffset: 5 &* p, as: V.self), v)
  }

  subscript(f: Int) -> V {
    switch f {
    case 0: a0
    case 1: a1
    case 2: a2
    case 3: a3
    case 4: a4
    default: a5
    }
  }
}

struct Eight: Accumulators {
  static var count: Int { 8 }
  var a0 = V(), a1 = V(), a2 = V(), a3 = V(), a4 = V(), a5 = V(), a6 = V(), a7 = V()

  init() {}
  init(splat b: UnsafePointer<Float>) {
    (a0, a1, a2, a3) = (V(repeating: b[0]), V(repeating: b[1]), V(repeating: b[2]), V(repeating: b[3]))
    (a4, a5, a6, a7) = (V(repeating: b[4]), V(repeating: b[5]), V(repeating: b[6]), V(repeating: b[7]))
  }

  @inline(__always) mutating func add(weights w: UnsafePointer<Float>, times v: V) {
    a0.addProduct(V(repeating: w[0]), v)
    a1.addProduct(V(repeating: w[1]), v)
    a2.addProduct(V(repeating: w[2]), v)
    a3.addProduct(V(repeating: w[3]), v)
    a4.addProduct(V(repeating: w[4]), v)
    a5.addProduct(V(repeating: w[5]), v)
    a6.addProduct(V(repeating: w[6]), v)
    a7.addProduct(V(repeating: w[7]), v)
  }

  @inline(__always) mutating func add(rows d: UnsafeRawPointer, apart p: Int, times v: V) {
    a0.addProduct(d.loadUnaligned(as: V.self), v)
    a1.addProduct(d.loadUnaligned(fromByteOffset: p, as: V.self), v)
    a2.addProduct(d.loadUnaligned(fromByteOffset: 2 &* p, as: V.self), v)
    a3.addProduct(d.loadUnaligned(fromByteOffset: 3 &* p, as: V.self), v)
    a4.addProduct(d.loadUnaligned(fromByteOffset: 4 &* p, as: V.self), v)
    a5.addProduct(d.loadUnaligned(fromByteOffset: 5 &* p, as: V.self), v)
    a6.addProduct(d.loadUnaligned(fromByteOffset: 6 &* p, as: V.self), v)
    a7.addProduct(d.loadUnaligned(fromByteOffset: 7 &* p, as: V.self), v)
  }

  subscript(f: Int) -> V {
    switch f {
    case 0: a0
    case 1: a1
    case 2: a2
    case 3: a3
    case 4: a4
    case 5: a5
    case 6: a6
    default: a7
    }
  }
}

/// A sample's planes copied into zero borders for the vectorised convolutions: (C, H + 2 pad, width), where width
/// also leaves room for the columns up to 16 spans (past outW) that the last vector of a row reads.
struct PaddedPlanes {
  let g: DirectConvolution.Shape
  /// Rows and columns of a padded plane.
  let height: Int, width: Int
  /// Vectors of 16 output columns per output row.
  let spans: Int

  init(_ g: DirectConvolution.Shape) {
    self.g = g
    spans = (g.outputWidth + 15) / 16
    height = g.height + 2 * g.padding
    width = Swift.max(g.width + 2 * g.padding, 16 * spans + g.kernel - 1)
  }

  /// Copies one sample's planes (C, H, W) into the interior of xp; its borders keep what they held (zeros).
  func copy(_ x: UnsafePointer<Float>, into xp: UnsafeMutablePointer<Float>) {
    for c in 0..<g.channels {
      for h in 0..<g.height {
        (xp + (c * height + h + g.padding) * width + g.padding).update(from: x + (c * g.height + h) * g.width, count: g.width)
      }
    }
  }
}
