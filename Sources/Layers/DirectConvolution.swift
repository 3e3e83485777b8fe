extension Float {
  /// The stride-1 convolution for Float, sixteen output columns a vector: no unfolded columns, no GEMM packing and no
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
    let C = g.channels, k = g.kernel, oh = g.outputHeight, ow = g.outputWidth, K = C * k * k
    let layout = PaddedPlanes(g), ph = layout.height, pw = layout.width, spans = layout.spans
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
      layout.copy(x + b * C * g.height * g.width, into: xp)
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
                var at = UnsafeRawPointer(xp + (c * ph + r + i) * pw + 16 * sp)
                for _ in 0..<k {
                  let v = at.loadUnaligned(as: V.self)
                  at += 4
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

extension Float {
  /// The stride-1 convolution's parameter gradients for Float, sixteen columns a vector, without unfolding.
  ///
  /// A chunk of samples is copied into zero-bordered planes xp (as `convolve`'s) and dy into rows
  /// of 16 spans' width whose columns past outW are 0, so the columns a vector computes past outW add nothing.
  /// Then for each block of 6 output channels and each (c, i, j): twelve registers hold
  /// sum_{b,r} dy[b, f, r, q..q+15] * xp[b, c, r + i, q + j..q + j + 15] for the block's six f, one load of x and six
  /// of dy feeding six FMAs; their lanes are summed into dW once per chunk.
  public static func addConvolutionGradients(x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                             weights dW: UnsafeMutablePointer<Float>, bias db: UnsafeMutablePointer<Float>,
                                             outChannels F: Int, _ g: ConvolutionGeometry) {
    precondition(g.stride == 1, "addConvolutionGradients is the stride-1 convolution's")
    typealias V = SIMD16<Float>
    let C = g.channels, k = g.kernel, oh = g.outputHeight, ow = g.outputWidth
    let layout = PaddedPlanes(g), ph = layout.height, pw = layout.width, spans = layout.spans, sw = 16 * spans
    let blocks = (F + 5) / 6, Fp = 6 * blocks
    let xSize = C * ph * pw, dySize = Fp * oh * sw
    // The samples of a chunk share each (block, c, i, j)'s sums: enough of them that the lanes are summed rarely, few
    // enough that a block's dy and one plane of x stay in L1 (24 KiB) through the k k passes over them. A chunk of
    // 256 KiB (from L2) ran at a third of the speed.
    let chunk = Swift.max(1, Swift.min(g.batch, (24 << 10) / (4 * (6 * oh * sw + ph * pw))))
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
      let n = Swift.min(chunk, g.batch - first)
      for b in 0..<n {
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
      let plane = oh * sw, planeBytes = 4 * plane
      for blk in 0..<blocks {
        let live = Swift.min(6, F - blk * 6)
        for c in 0..<C {
          for i in 0..<k {
            for j in 0..<k {
              var a0 = V(), a1 = V(), a2 = V(), a3 = V(), a4 = V(), a5 = V()
              for b in 0..<n {
                // x's row r + i from column j, and the block's dy rows, whose vectors follow one another.
                var xr = xp + b * xSize + (c * ph + i) * pw + j
                var d = UnsafeRawPointer(dyp + b * dySize + blk * 6 * plane)
                for _ in 0..<oh {
                  for sp in 0..<spans {
                    let v = UnsafeRawPointer(xr + 16 &* sp).loadUnaligned(as: V.self)
                    a0.addProduct(d.loadUnaligned(as: V.self), v)
                    a1.addProduct(d.loadUnaligned(fromByteOffset: planeBytes, as: V.self), v)
                    a2.addProduct(d.loadUnaligned(fromByteOffset: 2 &* planeBytes, as: V.self), v)
                    a3.addProduct(d.loadUnaligned(fromByteOffset: 3 &* planeBytes, as: V.self), v)
                    a4.addProduct(d.loadUnaligned(fromByteOffset: 4 &* planeBytes, as: V.self), v)
                    a5.addProduct(d.loadUnaligned(fromByteOffset: 5 &* planeBytes, as: V.self), v)
                    d += 64
                  }
                  xr += pw
                }
              }
              let w = dW + ((blk * 6 * C) + c) * k * k + i * k + j, step = C * k * k
              func add(_ a: V, _ fb: Int) { if fb < live { w[fb * step] += a.sum() } }
              add(a0, 0); add(a1, 1); add(a2, 2); add(a3, 3); add(a4, 4); add(a5, 5)
            }
          }
        }
      }
      first += n
    }
  }
}

/// A sample's planes copied into zero borders for the vectorised convolutions: (C, H + 2 pad, width), where width
/// also leaves room for the columns up to 16 spans (past outW) that the last vector of a row reads.
struct PaddedPlanes {
  let g: ConvolutionGeometry
  /// Rows and columns of a padded plane.
  let height: Int, width: Int
  /// Vectors of 16 output columns per output row.
  let spans: Int

  init(_ g: ConvolutionGeometry) {
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
