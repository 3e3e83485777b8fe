import Foundation
import _Support

/// A line chart drawn as SVG: axes with ticks and labels, a title, a legend, one `<path>` per series (the axes,
/// ticks and grid are `<line>` elements), and an optional logarithmic y axis (for losses).
public struct Chart {
  public struct Series {
    public var label: String
    public var points: [(x: Double, y: Double)]
    public var color: String
    /// An SVG dash pattern ("6,4"), nil for a solid line.
    public var dash: String?

    public init(label: String, points: [(x: Double, y: Double)], color: String, dash: String? = nil) {
      self.label = label
      self.points = points
      self.color = color
      self.dash = dash
    }
  }

  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var series: [Series]
  public var logY: Bool
  public var width = 760.0
  public var height = 440.0

  public init(title: String, xLabel: String, yLabel: String, series: [Series], logY: Bool = false) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.series = series
    self.logY = logY
  }

  /// Ten distinguishable colours (matplotlib's tab10).
  public static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                               "#bcbd22", "#17becf"]

  let left = 72.0, top = 44.0, bottom = 56.0
  /// 15 px, smaller for a title that would not fit the width (about 0.62 em per character in bold Helvetica).
  var titleSize: Double { min(15, (width - 24) / (0.62 * Double(max(title.count, 1)))) }
  var legendWidth: Double { min(260, 40 + 7.2 * Double(series.map(\.label.count).max() ?? 8)) }
  var plotRight: Double { width - legendWidth - 16 }

  /// Values drawn on the y axis: log10 of y for a log axis (non-positive values are left out there).
  func transformed(_ y: Double) -> Double? {
    guard y.isFinite else { return nil }
    if logY { return y > 0 ? log10(y) : nil }
    return y
  }

  public func svg() -> String {
    let xs = series.flatMap { $0.points.map(\.x) }.filter(\.isFinite)
    let ys = series.flatMap { $0.points.compactMap { transformed($0.y) } }
    var (x0, x1) = (xs.min() ?? 0, xs.max() ?? 1)
    if x1 - x0 < 1e-12 { (x0, x1) = (x0 - 0.5, x1 + 0.5) }
    var (y0, y1) = (ys.min() ?? 0, ys.max() ?? 1)
    if y1 - y0 < 1e-12 { (y0, y1) = (y0 - (logY ? 0.5 : max(abs(y0) * 0.05, 0.05)), y1 + (logY ? 0.5 : max(abs(y1) * 0.05, 0.05))) }
    if logY {
      // The axis runs from a 1-2-5 value at or below the data to one at or above it, so that its ticks fall on them.
      (y0, y1) = (log10(Chart.oneTwoFive(below: pow(10, y0))), log10(Chart.oneTwoFive(above: pow(10, y1))))
    } else {
      let pad = (y1 - y0) * 0.06
      (y0, y1) = (y0 - pad, y1 + pad)
    }
    let right = plotRight, plotBottom = height - bottom
    func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (right - left) }
    func py(_ y: Double) -> Double { plotBottom - (y - y0) / (y1 - y0) * (plotBottom - top) }

    var out = """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" viewBox="0 0 \(f(width)) \(f(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
      <rect x="0" y="0" width="\(f(width))" height="\(f(height))" fill="white"/>
      <text x="\(f(width / 2))" y="24" text-anchor="middle" font-size="\(f(titleSize))" font-weight="bold">\(escape(title))</text>

      """
    // Grid and ticks.
    for t in Chart.ticks(x0, x1, integer: true) {
      let x = px(t)
      out += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(plotBottom))\" stroke=\"#e6e6e6\"/>\n"
      out += "<line x1=\"\(f(x))\" y1=\"\(f(plotBottom))\" x2=\"\(f(x))\" y2=\"\(f(plotBottom + 5))\" stroke=\"black\"/>\n"
      out += "<text x=\"\(f(x))\" y=\"\(f(plotBottom + 19))\" text-anchor=\"middle\">\(NumberText.tick(t))</text>\n"
    }
    for (t, text) in yTicks(y0, y1) {
      let y = py(t)
      out += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(right))\" y2=\"\(f(y))\" stroke=\"#e6e6e6\"/>\n"
      out += "<line x1=\"\(f(left - 5))\" y1=\"\(f(y))\" x2=\"\(f(left))\" y2=\"\(f(y))\" stroke=\"black\"/>\n"
      out += "<text x=\"\(f(left - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(escape(text))</text>\n"
    }
    // Axes and their labels.
    out += "<line x1=\"\(f(left))\" y1=\"\(f(plotBottom))\" x2=\"\(f(right))\" y2=\"\(f(plotBottom))\" stroke=\"black\"/>\n"
    out += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(plotBottom))\" stroke=\"black\"/>\n"
    out += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(height - 14))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
    let yText = logY ? "\(yLabel) (log scale)" : yLabel
    out += "<text x=\"18\" y=\"\(f((top + plotBottom) / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(f((top + plotBottom) / 2)))\">\(escape(yText))</text>\n"
    // One path per series; a gap (NaN, or <= 0 on a log axis) starts a new segment of the same path.
    for s in series {
      var d = ""
      var pen = "M"
      for p in s.points {
        guard p.x.isFinite, let y = transformed(p.y) else { pen = "M"; continue }
        d += "\(pen)\(f(px(p.x))) \(f(py(y))) "
        pen = "L"
      }
      let dash = s.dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
      out += "<path d=\"\(d.trimmingCharacters(in: .whitespaces))\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\"\(dash)><title>\(escape(s.label))</title></path>\n"
      if s.points.count <= 30 {
        for p in s.points {
          guard p.x.isFinite, let y = transformed(p.y) else { continue }
          out += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(y)))\" r=\"2.5\" fill=\"\(s.color)\"/>\n"
        }
      }
    }
    // Legend.
    let lx = width - legendWidth
    out += "<rect x=\"\(f(lx - 8))\" y=\"\(f(top))\" width=\"\(f(legendWidth))\" height=\"\(f(Double(series.count) * 20 + 12))\" fill=\"white\" stroke=\"#cccccc\"/>\n"
    for (i, s) in series.enumerated() {
      let y = top + 18 + Double(i) * 20
      let dash = s.dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
      out += "<line x1=\"\(f(lx))\" y1=\"\(f(y - 4))\" x2=\"\(f(lx + 28))\" y2=\"\(f(y - 4))\" stroke=\"\(s.color)\" stroke-width=\"2\"\(dash)/>\n"
      out += "<text x=\"\(f(lx + 36))\" y=\"\(f(y))\">\(escape(s.label))</text>\n"
    }
    return out + "</svg>\n"
  }

  /// y ticks: "nice" values, or on a log axis 1, 2 and 5 times the powers of ten (the powers alone over 3 or more
  /// decades). The log axis's ends are such values (see `oneTwoFive`), so there are always at least two.
  func yTicks(_ y0: Double, _ y1: Double) -> [(Double, String)] {
    guard logY else { return Chart.ticks(y0, y1, integer: false).map { ($0, NumberText.tick($0)) } }
    var out: [(Double, String)] = []
    let decades = y1 - y0
    for e in Int(floor(y0 + 1e-9))...Int(ceil(y1 - 1e-9)) {
      for m in decades < 3 ? [1.0, 2, 5] : [1.0] {
        let v = log10(m) + Double(e)
        if v >= y0 - 1e-9 && v <= y1 + 1e-9 { out.append((v, NumberText.tick(m * pow(10, Double(e))))) }
      }
    }
    return out
  }

  /// The largest value 1, 2 or 5 x 10^k at or below `v` (> 0).
  static func oneTwoFive(below v: Double) -> Double {
    let e = floor(log10(v)), p = pow(10, e)
    return [5.0, 2, 1].map { $0 * p }.first { $0 <= v * (1 + 1e-12) } ?? p
  }

  /// The smallest value 1, 2 or 5 x 10^k at or above `v` (> 0).
  static func oneTwoFive(above v: Double) -> Double {
    let e = floor(log10(v)), p = pow(10, e)
    return [1.0, 2, 5, 10].map { $0 * p }.first { $0 >= v * (1 - 1e-12) } ?? 10 * p
  }

  /// About six evenly spaced round values (1, 2, 2.5, 5 times a power of ten) inside [lo, hi].
  static func ticks(_ lo: Double, _ hi: Double, integer: Bool) -> [Double] {
    let raw = (hi - lo) / 6
    let magnitude = pow(10, floor(log10(raw)))
    var step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    if integer { step = max(1, step.rounded()) }
    var t = (lo / step).rounded(.up) * step
    var out: [Double] = []
    while t <= hi + step * 1e-9 && out.count < 50 {
      out.append(abs(t) < step * 1e-9 ? 0 : t)
      t += step
    }
    return out
  }

  func f(_ x: Double) -> String { String(format: "%.1f", x) }
}

/// Text for XML: & < > " ' escaped.
func escape(_ s: String) -> String {
  var out = ""
  for c in s {
    switch c {
    case "&": out += "&amp;"
    case "<": out += "&lt;"
    case ">": out += "&gt;"
    case "\"": out += "&quot;"
    case "'": out += "&apos;"
    default: out.append(c)
    }
  }
  return out
}
