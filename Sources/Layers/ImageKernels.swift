import TensorCore

/// The shapes of a 2-D convolution over a batch: input (batch, channels, height, width), square kernel, equal
/// stride and padding on both axes.
public struct ConvolutionGeometry: Equatable, Sendable {
  public var batch: Int
  public var channels: Int
  public var height: Int
  public var width: Int
  public var kernel: Int
  public var stride: Int
  public var padding: Int

  public init(batch: Int, channels: Int, height: Int, width: Int, kernel: Int, stride: Int, padding: Int) {
    self.batch = batch
    self.channels = channels
    self.height = height
    self.width = width
    self.kernel = kernel
    self.stride = stride
    self.padding = padding
  }

  public var outputHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
  public var outputWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
  /// Rows of the unfolded matrix: channels k k.
  public var patch: Int { channels * kernel * kernel }
  /// Columns of the unfolded matrix: batch outH outW.
  public var positions: Int { batch * outputHeight * outputWidth }
}

/// The shapes of max pooling: input (planes, height, width), square windows.
public struct PoolingGeometry: Equatable, Sendable {
  public var planes: Int
  public var height: Int
  public var width: Int
  public var size: Int
  public var stride: Int

  public init(planes: Int, height: Int, width: Int, size: Int, stride: Int) {
    self.planes = planes
    self.height = height
    self.width = width
    self.size = size
    self.stride = stride
  }

  public var outputHeight: Int { (height - size) / stride + 1 }
  public var outputWidth: Int { (width - size) / stride + 1 }
}

/// The convolution's loops: im2col and its adjoint, and the reshapes and sums around its GEMMs.
public protocol ConvolutionKernels: Scalar {
  /// Unfolds the k x k windows of x (batch, channels, height, width) into columns (channels k k, batch outH outW):
  /// cols[(c k + i) k + j, (b outH + oh) outW + ow] = x[b, c, oh s - pad + i, ow s - pad + j] (0 outside).
  static func im2col(_ x: UnsafePointer<Self>, _ cols: UnsafeMutablePointer<Self>, _ g: ConvolutionGeometry)
  /// The adjoint of im2col: adds every column entry back onto the input position it came from.
  static func col2im(_ cols: UnsafePointer<Self>, _ dx: UnsafeMutablePointer<Self>, _ g: ConvolutionGeometry)
  /// out[b, a, p] = x[a, b, p] for x (A, B, P): swaps the two leading axes.
  static func swapLeadingAxes(_ x: UnsafePointer<Self>, _ out: UnsafeMutablePointer<Self>, a: Int, b: Int, p: Int)
  /// y[i, :] = v_i for y (rows, cols).
  static func fillRows(_ v: UnsafePointer<Self>, rows: Int, cols: Int, into y: UnsafeMutablePointer<Self>)
  /// s_i += sum_j x[i, j] for x (rows, cols).
  static func addRowSums(_ x: UnsafePointer<Self>, rows: Int, cols: Int, into s: UnsafeMutablePointer<Self>)
  /// A stride-1 convolution computed directly, without unfolding, sample by sample: for x (batch, C, H, W) and
  /// W (F, C, k, k), y[b, f, r, q] = bias_f + sum_{c,i,j} W[f, c, i, j] x[b, c, r - pad + i, q - pad + j] (0 outside),
  /// y (batch, F, outH, outW). No bias adds nothing.
  static func convolve(_ x: UnsafePointer<Self>, weights W: UnsafePointer<Self>, bias: UnsafePointer<Self>?,
                       into y: UnsafeMutablePointer<Self>, outChannels F: Int, _ g: ConvolutionGeometry)
  /// The parameter gradients of that convolution, added on: for dy (batch, F, outH, outW),
  /// dW[f, c, i, j] += sum_{b,r,q} dy[b, f, r, q] x[b, c, r - pad + i, q - pad + j] and db[f] += sum_{b,r,q} dy[b, f, r, q].
  static func addConvolutionGradients(x: UnsafePointer<Self>, dy: UnsafePointer<Self>, weights dW: UnsafeMutablePointer<Self>,
                                      bias db: UnsafeMutablePointer<Self>, outChannels F: Int, _ g: ConvolutionGeometry)
}

extension ConvolutionKernels {
  public static func convolve(_ x: UnsafePointer<Self>, weights W: UnsafePointer<Self>, bias: UnsafePointer<Self>?,
                              into y: UnsafeMutablePointer<Self>, outChannels F: Int, _ g: ConvolutionGeometry) {
    precondition(g.stride == 1, "convolve is the stride-1 convolution")
    let C = g.channels, k = g.kernel, oh = g.outputHeight, ow = g.outputWidth
    for b in 0..<g.batch {
      for f in 0..<F {
        let out = y + (b * F + f) * oh * ow
        for r in 0..<oh {
          for q in 0..<ow {
            var s = bias?[f] ?? 0
            for c in 0..<C {
              let plane = x + (b * C + c) * g.height * g.width, w = W + (f * C + c) * k * k
              for i in 0..<k where (0..<g.height).contains(r - g.padding + i) {
                for j in 0..<k where (0..<g.width).contains(q - g.padding + j) {
                  s += w[i * k + j] * plane[(r - g.padding + i) * g.width + q - g.padding + j]
                }
              }
            }
            out[r * ow + q] = s
          }
        }
      }
    }
  }

  public static func addConvolutionGradients(x: UnsafePointer<Self>, dy: UnsafePointer<Self>, weights dW: UnsafeMutablePointer<Self>,
                                             bias db: UnsafeMutablePointer<Self>, outChannels F: Int, _ g: ConvolutionGeometry) {
    precondition(g.stride == 1, "addConvolutionGradients is the stride-1 convolution's")
    let C = g.channels, k = g.kernel, oh = g.outputHeight, ow = g.outputWidth
    for b in 0..<g.batch {
      for f in 0..<F {
        let grad = dy + (b * F + f) * oh * ow
        for c in 0..<C {
          let plane = x + (b * C + c) * g.height * g.width, w = dW + (f * C + c) * k * k
          for i in 0..<k {
            for j in 0..<k {
              var s: Self = 0
              for r in 0..<oh where (0..<g.height).contains(r - g.padding + i) {
                for q in 0..<ow where (0..<g.width).contains(q - g.padding + j) {
                  s += grad[r * ow + q] * plane[(r - g.padding + i) * g.width + q - g.padding + j]
                }
              }
              w[i * k + j] += s
            }
          }
        }
        var s: Self = 0
        for t in 0..<(oh * ow) { s += grad[t] }
        db[f] += s
      }
    }
  }

  /// The output columns q whose input column q s - pad + j lies inside 0 ..< width.
  @inline(__always)
  static func validColumns(_ g: ConvolutionGeometry, offset j: Int) -> Range<Int> {
    let ow = g.outputWidth
    let first = max(0, (g.padding - j + g.stride - 1) / g.stride)
    let last = min(ow, (g.width - 1 + g.padding - j) / g.stride + 1)
    return first..<max(first, last)
  }

  public static func im2col(_ x: UnsafePointer<Self>, _ cols: UnsafeMutablePointer<Self>, _ g: ConvolutionGeometry) {
    let oh = g.outputHeight, ow = g.outputWidth, n = g.positions, s = g.stride
    if s == 1 {
      // Each input plane is padded once into a small buffer (in L1), then every row of every window is a
      // branch-free copy of ow values: the loops over an image row's valid range cost more than the copies.
      let ph = g.height + 2 * g.padding, pw = g.width + 2 * g.padding, k = g.kernel
      let padded = UnsafeMutablePointer<Self>.allocate(capacity: ph * pw)
      defer { padded.deallocate() }
      for i in 0..<(ph * pw) { padded[i] = 0 }
      for b in 0..<g.batch {
        for c in 0..<g.channels {
          let plane = x + (b * g.channels + c) * g.height * g.width
          for h in 0..<g.height {
            let from = plane + h * g.width, to = padded + (h + g.padding) * pw + g.padding
            for q in 0..<g.width { to[q] = from[q] }
          }
          for i in 0..<k {
            for j in 0..<k {
              let block = cols + ((c * k + i) * k + j) * n + b * oh * ow
              for r in 0..<oh {
                let from = padded + (r + i) * pw + j, to = block + r * ow
                for q in 0..<ow { to[q] = from[q] }
              }
            }
          }
        }
      }
      return
    }
    for c in 0..<g.channels {
      for i in 0..<g.kernel {
        for j in 0..<g.kernel {
          let row = cols + ((c * g.kernel + i) * g.kernel + j) * n
          let valid = validColumns(g, offset: j)
          for b in 0..<g.batch {
            let plane = x + (b * g.channels + c) * g.height * g.width
            for r in 0..<oh {
              let out = row + (b * oh + r) * ow
              let h = r * s - g.padding + i
              // Rows are short (an image row): loops here beat a memmove/memset call per row (which
              // update(from:) and update(repeating:) compile to).
              guard h >= 0 && h < g.height else {
                for q in 0..<ow { out[q] = 0 }
                continue
              }
              for q in 0..<valid.lowerBound { out[q] = 0 }
              for q in valid.upperBound..<ow { out[q] = 0 }
              let line = plane + h * g.width - g.padding + j
              if s == 1 {
                for q in valid { out[q] = line[q] }
              } else {
                for q in valid { out[q] = line[q * s] }
              }
            }
          }
        }
      }
    }
  }

  public static func col2im(_ cols: UnsafePointer<Self>, _ dx: UnsafeMutablePointer<Self>, _ g: ConvolutionGeometry) {
    let oh = g.outputHeight, ow = g.outputWidth, n = g.positions, s = g.stride
    if s == 1 {
      // As im2col: sums into a padded plane (in L1), whose interior is then added to dx.
      let ph = g.height + 2 * g.padding, pw = g.width + 2 * g.padding, k = g.kernel
      let padded = UnsafeMutablePointer<Self>.allocate(capacity: ph * pw)
      defer { padded.deallocate() }
      for b in 0..<g.batch {
        for c in 0..<g.channels {
          for i in 0..<(ph * pw) { padded[i] = 0 }
          for i in 0..<k {
            for j in 0..<k {
              let block = cols + ((c * k + i) * k + j) * n + b * oh * ow
              for r in 0..<oh {
                let from = block + r * ow, to = padded + (r + i) * pw + j
                for q in 0..<ow { to[q] += from[q] }
              }
            }
          }
          let plane = dx + (b * g.channels + c) * g.height * g.width
          for h in 0..<g.height {
            let from = padded + (h + g.padding) * pw + g.padding, to = plane + h * g.width
            for q in 0..<g.width { to[q] += from[q] }
          }
        }
      }
      return
    }
    for c in 0..<g.channels {
      for i in 0..<g.kernel {
        for j in 0..<g.kernel {
          let row = cols + ((c * g.kernel + i) * g.kernel + j) * n
          let valid = validColumns(g, offset: j)
          for b in 0..<g.batch {
            let plane = dx + (b * g.channels + c) * g.height * g.width
            for r in 0..<oh {
              let h = r * s - g.padding + i
              guard h >= 0 && h < g.height else { continue }
              let out = row + (b * oh + r) * ow
              let line = plane + h * g.width - g.padding + j
              if s == 1 {
                for q in valid { line[q] += out[q] }
              } else {
                for q in valid { line[q * s] += out[q] }
              }
            }
          }
        }
      }
    }
  }

  public static func swapLeadingAxes(_ x: UnsafePointer<Self>, _ out: UnsafeMutablePointer<Self>, a: Int, b: Int, p: Int) {
    for i in 0..<a {
      for j in 0..<b {
        let from = x + (i * b + j) * p, to = out + (j * a + i) * p
        for k in 0..<p { to[k] = from[k] }
      }
    }
  }

  public static func fillRows(_ v: UnsafePointer<Self>, rows: Int, cols: Int, into y: UnsafeMutablePointer<Self>) {
    for i in 0..<rows {
      let value = v[i], row = y + i * cols
      for j in 0..<cols { row[j] = value }
    }
  }

  public static func addRowSums(_ x: UnsafePointer<Self>, rows: Int, cols: Int, into s: UnsafeMutablePointer<Self>) {
    // s += X 1 as a BLAS matrix-vector product: a loop's one running sum cannot be vectorised (3% of the CNN's step).
    let ones = UnsafeMutablePointer<Self>.allocate(capacity: cols)
    defer { ones.deallocate() }
    ones.initialize(repeating: 1, count: cols)
    gemv(transpose: false, m: rows, n: cols, alpha: 1, a: x, lda: cols, x: ones, beta: 1, y: s)
  }
}

/// Max pooling's loops.
public protocol PoolingKernels: Scalar {
  /// Max pooling of x (planes, height, width) over size x size windows with a stride.
  static func maxPool(_ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, _ g: PoolingGeometry)
  /// Max pooling's backward: each dy goes to the first position of its window that holds the maximum.
  static func maxPoolBackward(x: UnsafePointer<Self>, y: UnsafePointer<Self>, dy: UnsafePointer<Self>,
                              dx: UnsafeMutablePointer<Self>, _ g: PoolingGeometry)
}

extension PoolingKernels {
  public static func maxPool(_ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, _ g: PoolingGeometry) {
    let oh = g.outputHeight, ow = g.outputWidth
    if g.size == 2 && g.stride == 2 {
      // The common case (LeNet's), without the window loops: 1.5 ns per input element became 0.2.
      let w = g.width
      for n in 0..<g.planes {
        let plane = x + n * g.height * w, out = y + n * oh * ow
        for r in 0..<oh {
          let top = plane + 2 * r * w, bottom = top + w, row = out + r * ow
          for q in 0..<ow {
            let a = Swift.max(top[2 * q], top[2 * q + 1]), b = Swift.max(bottom[2 * q], bottom[2 * q + 1])
            row[q] = Swift.max(a, b)
          }
        }
      }
      return
    }
    for n in 0..<g.planes {
      let plane = x + n * g.height * g.width, out = y + n * oh * ow
      for r in 0..<oh {
        for q in 0..<ow {
          var m = plane[r * g.stride * g.width + q * g.stride]
          for i in 0..<g.size {
            let line = plane + (r * g.stride + i) * g.width + q * g.stride
            for j in 0..<g.size { m = Swift.max(m, line[j]) }
          }
          out[r * ow + q] = m
        }
      }
    }
  }

  public static func maxPoolBackward(x: UnsafePointer<Self>, y: UnsafePointer<Self>, dy: UnsafePointer<Self>,
                                     dx: UnsafeMutablePointer<Self>, _ g: PoolingGeometry) {
    let oh = g.outputHeight, ow = g.outputWidth
    if g.size == 2 && g.stride == 2 {
      // The first of the four positions (in row order) that holds the maximum gets dy, the others 0: every position
      // of a window is written, without branches (a data-dependent branch per window cost 7% of the CNN's step).
      // Rows and columns past the last whole window keep dx's zeros.
      let w = g.width
      for n in 0..<g.planes {
        let plane = x + n * g.height * w, dplane = dx + n * g.height * w
        let out = y + n * oh * ow, grad = dy + n * oh * ow
        for r in 0..<oh {
          let top = plane + 2 * r * w, bottom = top + w, dtop = dplane + 2 * r * w, dbottom = dtop + w
          for q in 0..<ow {
            // `rest` is dy until a position has taken it (selects, not short-circuit branches).
            let m = out[r * ow + q], c = 2 * q
            var rest = grad[r * ow + q]
            let a = top[c] == m, b = top[c + 1] == m, e = bottom[c] == m
            dtop[c] = a ? rest : 0
            rest = a ? 0 : rest
            dtop[c + 1] = b ? rest : 0
            rest = b ? 0 : rest
            dbottom[c] = e ? rest : 0
            dbottom[c + 1] = e ? 0 : rest
          }
        }
      }
      return
    }
    for n in 0..<g.planes {
      let plane = x + n * g.height * g.width, dplane = dx + n * g.height * g.width
      for r in 0..<oh {
        for q in 0..<ow {
          let k = n * oh * ow + r * ow + q
          search: for i in 0..<g.size {
            for j in 0..<g.size {
              let at = (r * g.stride + i) * g.width + q * g.stride + j
              if plane[at] == y[k] {
                dplane[at] += dy[k]
                break search
              }
            }
          }
        }
      }
    }
  }
}
