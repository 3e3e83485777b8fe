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

extension LayerKernels {
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
              // Rows are short (an image row): loops here beat a memmove/memset call per row.
              guard h >= 0 && h < g.height else {
                out.update(repeating: 0, count: ow)
                continue
              }
              out.update(repeating: 0, count: valid.lowerBound)
              (out + valid.upperBound).update(repeating: 0, count: ow - valid.upperBound)
              let line = plane + h * g.width - g.padding + j
              if s == 1 {
                (out + valid.lowerBound).update(from: line + valid.lowerBound, count: valid.count)
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
              for q in valid { line[q * s] += out[q] }
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
    for i in 0..<rows {
      var t = Self.zero
      for j in 0..<cols { t += x[i * cols + j] }
      s[i] += t
    }
  }

  public static func maxPool(_ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, _ g: PoolingGeometry) {
    let oh = g.outputHeight, ow = g.outputWidth
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
