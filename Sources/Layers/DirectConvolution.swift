extension Float {
  /// The stride-1 convolution for Float, eight output columns a vector: no unfolded columns, no GEMM packing and no
  /// transpose of the output. LeNet's convolutions have 6 or 16 channels and 5x5 kernels: GEMMs of those shapes
  /// (6 or 16 rows) kept OpenBLAS's kernel at a third of its speed, and unfolding, packing and transposing around them
  /// cost as much again.
  ///
  /// Each sample's planes are copied into a zero-bordered buffer xp (C, H + 2 pad, pw), so that every window row is
  /// an unconditional load; pw leaves room for the columns past outW that the last vector computes and drops.
  /// The inner loop holds 6 output channels x 16 columns in twelve registers (enough independent sums to cover the
  /// FMA's latency): per (c, i, j), two loads of x, six broadcast weights, twelve FMAs. Weights are repacked as
  /// (F / 6, C k k, 6), channels past F zero. Six rather than four or eight: LeNet's 6 channels (and the 6 input
  /// channels of its second convolution's backward pass) fill a block.
  public static func convolve(_ x: UnsafePointer<Float>, weights W: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              into y: UnsafeMutablePointer<Float>, outChannels F: Int, _ g: ConvolutionGeometry) {
    precondition(g.stride == 1, "convolve is the stride-1 convolution")
    typealias V = SIMD16<Float>  // two AVX registers
    let C = g.channels, k = g.kernel, pad = g.padding, H = g.height, Wd = g.width
    let oh = g.outputHeight, ow = g.outputWidth, K = C * k * k
    let spans = (ow + 15) / 16
    let ph = H + 2 * pad, pw = Swift.max(Wd + 2 * pad, 16 * spans + k - 1)
    let blocks = (F + 5) / 6

    let wp = UnsafeMutablePointer<Float>.allocate(capacity: blocks * K * 6)
    let bp = UnsafeMutablePointer<Float>.allocate(capacity: blocks * 6)
    let xp = UnsafeMutablePointer<Float>.allocate(capacity: C * ph * pw)
    defer {
      wp.deallocate()
      bp.deallocate()
      xp.deallocate()
    }
    for blk in 0..<blocks {
      for fb in 0..<6 {
        let f = blk * 6 + fb
        bp[blk * 6 + fb] = f < F ? (bias?[f] ?? 0) : 0
        for t in 0..<K { wp[(blk * K + t) * 6 + fb] = f < F ? W[f * K + t] : 0 }
      }
    }
    xp.initialize(repeating: 0, count: C * ph * pw)

    for b in 0..<g.batch {
      for c in 0..<C {
        let plane = x + (b * C + c) * H * Wd
        for h in 0..<H {
          (xp + (c * ph + h + pad) * pw + pad).update(from: plane + h * Wd, count: Wd)
        }
      }
      for blk in 0..<blocks {
        let w0 = wp + blk * K * 6, live = Swift.min(6, F - blk * 6)
        let outs = y + (b * F + blk * 6) * oh * ow
        for r in 0..<oh {
          for sp in 0..<spans {
            var a0 = V(repeating: bp[blk * 6]), a1 = V(repeating: bp[blk * 6 + 1]), a2 = V(repeating: bp[blk * 6 + 2])
            var a3 = V(repeating: bp[blk * 6 + 3]), a4 = V(repeating: bp[blk * 6 + 4]), a5 = V(repeating: bp[blk * 6 + 5])
            var w = w0
            for c in 0..<C {
              for i in 0..<k {
                let row = UnsafeRawPointer(xp + (c * ph + r + i) * pw + 16 * sp)
                for j in 0..<k {
                  let v = row.loadUnaligned(fromByteOffset: 4 * j, as: V.self)
                  a0.addProduct(V(repeating: w[0]), v)
                  a1.addProduct(V(repeating: w[1]), v)
                  a2.addProduct(V(repeating: w[2]), v)
                  a3.addProduct(V(repeating: w[3]), v)
                  a4.addProduct(V(repeating: w[4]), v)
                  a5.addProduct(V(repeating: w[5]), v)
                  w += 6
                }
              }
            }
            // Whole spans are stored as vectors; the last one's columns past outW are dropped.
            let q = 16 * sp, whole = q + 16 <= ow
            let to = outs + r * ow + q
            func store(_ a: V, _ fb: Int) {
              guard fb < live else { return }
              let o = to + fb * oh * ow
              if whole {
                UnsafeMutableRawPointer(o).storeBytes(of: a, as: V.self)
              } else {
                for l in 0..<(ow - q) { o[l] = a[l] }
              }
            }
            store(a0, 0); store(a1, 1); store(a2, 2); store(a3, 3); store(a4, 4); store(a5, 5)
          }
        }
      }
    }
  }
}
