import RealModule
import TensorCore

/// The losses' loops (the formulas are in `Loss`).
public protocol LossKernels: Scalar {
  /// Loss of each row and dL/dprediction of the batch sum; see `Loss`. Returns sum_i loss_i in Double.
  static func loss(_ loss: Loss, prediction p: UnsafePointer<Self>, classes: UnsafePointer<Int32>?,
                   targets t: UnsafePointer<Self>?, rows: Int, cols: Int,
                   gradient g: UnsafeMutablePointer<Self>?) -> Double
}

extension LossKernels {
  public static func loss(_ loss: Loss, prediction p: UnsafePointer<Self>, classes: UnsafePointer<Int32>?,
                          targets t: UnsafePointer<Self>?, rows: Int, cols: Int,
                          gradient g: UnsafeMutablePointer<Self>?) -> Double {
    var total = 0.0
    let perOutput = 1 / Self(cols)  // the regression losses are means over the outputs of a sample
    switch loss {
    case .crossEntropy:
      let y = classes!
      for i in 0..<rows {
        let z = p + i * cols
        var m = z[0]
        for j in 1..<cols { m = Swift.max(m, z[j]) }
        var s = Self.zero
        for j in 0..<cols { s += Self.exp(z[j] - m) }
        let c = Int(y[i])
        total += Double(m + Self.log(s) - z[c])  // -log softmax(z)_c = log sum_j e^{z_j} - z_c
        if let g {
          let gi = g + i * cols
          let invS = 1 / s
          for j in 0..<cols { gi[j] = Self.exp(z[j] - m) * invS }  // softmax(z)_j - [j == c]
          gi[c] -= 1
        }
      }
    case .nll:
      let y = classes!
      let tiny = Self.leastNormalMagnitude
      for i in 0..<rows {
        let c = Int(y[i]), pc = Swift.max(p[i * cols + c], tiny)
        total -= Double(Self.log(pc))
        if let g {
          for j in 0..<cols { g[i * cols + j] = 0 }
          g[i * cols + c] = -1 / pc
        }
      }
    case .hinge(let margin, let mean):
      let y = classes!, delta = Self(margin), scale = mean ? 1 / Self(cols) : 1
      for i in 0..<rows {
        let s = p + i * cols, c = Int(y[i])
        var active = 0, sum = 0.0
        for j in 0..<cols where j != c {
          let m = delta + s[j] - s[c]
          if m > 0 { sum += Double(m); active += 1 }
          g?[i * cols + j] = m > 0 ? scale : 0
        }
        total += mean ? sum / Double(cols) : sum
        g?[i * cols + c] = -Self(active) * scale
      }
    case .mse:
      for k in 0..<rows * cols {
        let d = p[k] - t![k]
        total += Double(d * d * perOutput)
        g?[k] = 2 * perOutput * d
      }
    case .halfMSE:
      for k in 0..<rows * cols {
        let d = p[k] - t![k]
        total += Double(d * d * perOutput / 2)
        g?[k] = perOutput * d
      }
    case .l1:
      for k in 0..<rows * cols {
        let d = p[k] - t![k]
        total += Double(Swift.abs(d) * perOutput)
        g?[k] = d > 0 ? perOutput : d < 0 ? -perOutput : 0
      }
    case .huber(let deltaValue):
      let delta = Self(deltaValue)
      for k in 0..<rows * cols {
        let d = p[k] - t![k], a = Swift.abs(d)
        total += Double((a <= delta ? d * d / 2 : delta * (a - delta / 2)) * perOutput)
        g?[k] = (a <= delta ? d : d > 0 ? delta : -delta) * perOutput
      }
    case .cosine:
      let eps = Self(1e-8)
      for i in 0..<rows {
        let pi = p + i * cols, ti = t! + i * cols
        var pt = Self.zero, pp = Self.zero, tt = Self.zero
        for j in 0..<cols { pt += pi[j] * ti[j]; pp += pi[j] * pi[j]; tt += ti[j] * ti[j] }
        let np = Swift.max(pp.squareRoot(), eps), nt = Swift.max(tt.squareRoot(), eps)
        let cosine = pt / (np * nt)
        total += Double(1 - cosine)
        if let g {  // d(1 - cos)/dp = -(t / (|p| |t|) - cos p / |p|^2)
          for j in 0..<cols { g[i * cols + j] = -(ti[j] / (np * nt) - cosine * pi[j] / (np * np)) }
        }
      }
    }
    return total
  }
}
