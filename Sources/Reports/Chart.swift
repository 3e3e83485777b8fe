import Foundation
import _Support

/// A line chart drawn as SVG: axes with at most about eight ticks each, a title, a legend, one `<path>` per series
/// (the axes, ticks and grid are `<line>` elements), bands (the spread over seeds), marks (a best epoch, the point
/// where a run diverged), and optionally logarithmic axes. The y range is taken from the series that count for it:
/// a diverged run is drawn up to its divergence and clipped, so that its 1e29 does not flatten every other curve.
public struct Chart {
  public struct Series {
    public var label: String
    public var points: [(x: Double, y: Double)]
    public var color: String
    /// An SVG dash pattern ("6,4"), nil for a solid line.
    public var dash: String?
    /// A band around the line: (x, low, high), e.g. the mean ± one standard deviation over seeds.
    public var band: [(x: Double, low: Double, high: Double)] = []
    /// Points marked on the line.
    public var marks: [Mark] = []
    /// Whether the series sets the y range (false: drawn, clipped to the others' range).
    public var setsRange = true
    /// Whether its points are joined by a line (false: a scatter of points, each drawn however many there are).
    public var joined = true

    public init(label: String, points: [(x: Double, y: Double)], color: String, dash: String? = nil) {
      self.label = label
      self.points = points
      self.color = color
      self.dash = dash
    }
  }

  /// A marked point: a ring for the best epoch (or setting), a cross where a run diverged, a triangle for a setting
  /// whose runs stopped before the last epoch (pruned), drawn apart from the finished ones' line.
  public struct Mark {
    public enum Kind: CaseIterable { case best, diverged, pruned }
    public var x: Double
    public var y: Double
    public var kind: Kind
    public var label: String

    public init(x: Double, y: Double, kind: Kind, label: String) {
      self.x = x
      self.y = y
      self.kind = kind
      self.label = label
    }
  }

  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var series: [Series]
  public var logY: Bool
  public var logX = false
  /// Names for the x positions 0, 1, 2, ... (a categorical axis: optimizers, models); nil for numbers.
  public var categories: [String]?
  public var width = 760.0
  public var height = 440.0
  /// The legend's entries (label, colour, dash); nil: one per series. A chart of many runs names each run once by
  /// its colour and each set once by its dash.
  public var legend: [(label: String, color: String, dash: String?)]?
  /// What each kind of mark means, in the legend under the lines (a kind no series marks is left out).
  public var markMeanings: [Mark.Kind: String] = [.best: "best epoch", .diverged: "diverged", .pruned: "stopped early (pruned)"]

  public init(title: String, xLabel: String, yLabel: String, series: [Series], logY: Bool = false) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.series = series
    self.logY = logY
  }

  /// Eight colours told apart by people with any form of colour blindness (Okabe and Ito's palette), in an order
  /// that keeps neighbours far apart; black last.
  public static let palette = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

  /// The dash patterns of the three sets: train solid, validation dotted, test dashed.
  public static let trainDash: String? = nil
  public static let validationDash = "2,3"
  public static let testDash = "7,4"

  let left = 72.0, top = 44.0, bottom = 56.0
  /// 15 px, smaller for a title that would not fit the width (about 0.62 em per character in bold Helvetica).
  var titleSize: Double { min(15, (width - 24) / (0.62 * Double(max(title.count, 1)))) }
  var legendEntries: [(label: String, color: String, dash: String?)] { legend ?? series.map { ($0.label, $0.color, $0.dash) } }
  /// The kinds of mark drawn, each explained once under the lines.
  var markEntries: [(kind: Mark.Kind, label: String)] {
    Mark.Kind.allCases.filter { k in series.contains { $0.marks.contains { $0.kind == k } } }.map { ($0, markMeanings[$0] ?? "") }
  }
  var legendRows: Int { legendEntries.count + markEntries.count }
  /// Wide enough for the longest label (about 7 px a character at 12 px); the chart widens rather than clip it.
  var legendWidth: Double { 52 + 7.6 * Double((legendEntries.map(\.label.count) + markEntries.map(\.label.count)).max() ?? 8) }
  var plotRight: Double { width - legendWidth - 16 }

  /// Values drawn on an axis: log10 on a log axis (non-positive values are left out there).
  func transformed(_ v: Double, log: Bool) -> Double? {
    guard v.isFinite else { return nil }
    if log { return v > 0 ? log10(v) : nil }
    return v
  }

  func ty(_ y: Double) -> Double? { transformed(y, log: logY) }
  func tx(_ x: Double) -> Double? { transformed(x, log: logX) }

  public func svg() -> String { sized.draw() }

  /// The chart as drawn: the plot keeps at least 520 px; a long legend widens the chart, a tall one makes it taller.
  var sized: Chart {
    var chart = self
    chart.width = max(width, 520 + legendWidth + 16 + left)
    chart.height = max(height, top + Double(legendRows) * 20 + 12 + 8)
    return chart
  }

  /// The plot area of `svg()` in its coordinates: every point and mark is drawn inside it.
  public var plotArea: (left: Double, top: Double, right: Double, bottom: Double) {
    let c = sized
    return (c.left, c.top, c.plotRight, c.height - c.bottom)
  }

  func draw() -> String {
    let ranged = series.filter(\.setsRange)
    let xs = series.flatMap { $0.points.compactMap { tx($0.x) } + $0.marks.compactMap { tx($0.x) } }
    var ys = ranged.flatMap { $0.points.compactMap { ty($0.y) } }
    ys += ranged.flatMap { $0.band.flatMap { [ty($0.low), ty($0.high)].compactMap { $0 } } }
    ys += ranged.flatMap { $0.marks.filter { $0.kind == .pruned }.compactMap { ty($0.y) } }
    if ys.isEmpty { ys = series.flatMap { $0.points.compactMap { ty($0.y) } } }
    var (x0, x1) = (xs.min() ?? 0, xs.max() ?? 1)
    if x1 - x0 < 1e-12 { (x0, x1) = (x0 - 0.5, x1 + 0.5) }
    // Every point inside the plot, none on an axis or under the legend: half a category, or 4% of the range (in
    // log space on a log axis), on each side.
    if categories != nil { (x0, x1) = (x0 - 0.5, x1 + 0.5) } else {
      let pad = (x1 - x0) * 0.04
      (x0, x1) = (x0 - pad, x1 + pad)
    }
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
    func py(_ y: Double) -> Double { plotBottom - (min(max(y, y0), y1) - y0) / (y1 - y0) * (plotBottom - top) }

    var out = """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" viewBox="0 0 \(f(width)) \(f(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
      <rect x="0" y="0" width="\(f(width))" height="\(f(height))" fill="white"/>
      <text x="\(f(width / 2))" y="24" text-anchor="middle" font-size="\(f(titleSize))" font-weight="bold">\(escape(title))</text>

      """
    // Grid and ticks.
    for (t, text) in xTicks(x0, x1) {
      let x = px(t)
      out += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(plotBottom))\" stroke=\"#e6e6e6\"/>\n"
      out += "<line x1=\"\(f(x))\" y1=\"\(f(plotBottom))\" x2=\"\(f(x))\" y2=\"\(f(plotBottom + 5))\" stroke=\"black\"/>\n"
      out += "<text x=\"\(f(x))\" y=\"\(f(plotBottom + 19))\" text-anchor=\"middle\">\(escape(text))</text>\n"
    }
    for (t, text) in Chart.logTicks(y0, y1, log: logY) {
      let y = py(t)
      out += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(right))\" y2=\"\(f(y))\" stroke=\"#e6e6e6\"/>\n"
      out += "<line x1=\"\(f(left - 5))\" y1=\"\(f(y))\" x2=\"\(f(left))\" y2=\"\(f(y))\" stroke=\"black\"/>\n"
      out += "<text x=\"\(f(left - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(escape(text))</text>\n"
    }
    // Axes and their labels.
    out += "<line x1=\"\(f(left))\" y1=\"\(f(plotBottom))\" x2=\"\(f(right))\" y2=\"\(f(plotBottom))\" stroke=\"black\"/>\n"
    out += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(plotBottom))\" stroke=\"black\"/>\n"
    out += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(height - 14))\" text-anchor=\"middle\">\(escape(logX ? "\(xLabel) (log scale)" : xLabel))</text>\n"
    let yText = logY ? "\(yLabel) (log scale)" : yLabel
    out += "<text x=\"18\" y=\"\(f((top + plotBottom) / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(f((top + plotBottom) / 2)))\">\(escape(yText))</text>\n"
    // Bands first, under the lines.
    for s in series where !s.band.isEmpty {
      let pts = s.band.compactMap { b -> (Double, Double, Double)? in
        guard let x = tx(b.x), let lo = ty(b.low), let hi = ty(b.high) else { return nil }
        return (px(x), py(lo), py(hi))
      }
      guard !pts.isEmpty else { continue }
      let d = "M" + pts.map { "\(f($0.0)) \(f($0.2))" }.joined(separator: " L") + " L" + pts.reversed().map { "\(f($0.0)) \(f($0.1))" }.joined(separator: " L") + " Z"
      out += "<path d=\"\(d)\" fill=\"\(s.color)\" fill-opacity=\"0.15\" stroke=\"none\"/>\n"
    }
    // One path per series; a gap (NaN, or <= 0 on a log axis) starts a new segment of the same path.
    for s in series {
      var d = ""
      var pen = "M"
      for p in s.points {
        guard let x = tx(p.x), let y = ty(p.y) else { pen = "M"; continue }
        d += "\(pen)\(f(px(x))) \(f(py(y))) "
        pen = "L"
      }
      let dash = s.dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
      if s.joined {
        out += "<path d=\"\(d.trimmingCharacters(in: .whitespaces))\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\"\(dash)><title>\(escape(s.label))</title></path>\n"
      }
      if s.points.count <= 30 || !s.joined {
        for p in s.points {
          guard let x = tx(p.x), let y = ty(p.y) else { continue }
          out += "<circle cx=\"\(f(px(x)))\" cy=\"\(f(py(y)))\" r=\"2.5\" fill=\"\(s.color)\"/>\n"
        }
      }
      for m in s.marks {
        guard let x = tx(m.x) else { continue }
        let (cx, cy) = (px(x), py(ty(m.y) ?? y1))
        switch m.kind {
        case .best:
          out += "<circle cx=\"\(f(cx))\" cy=\"\(f(cy))\" r=\"6\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\"><title>\(escape(m.label))</title></circle>\n"
        default:
          out += glyph(m.kind, cx, cy, color: s.color, title: m.label)
        }
      }
    }
    // Legend.
    let lx = width - legendWidth
    let entries = legendEntries
    out += "<rect x=\"\(f(lx - 8))\" y=\"\(f(top))\" width=\"\(f(legendWidth))\" height=\"\(f(Double(legendRows) * 20 + 12))\" fill=\"white\" stroke=\"#cccccc\"/>\n"
    for (i, e) in entries.enumerated() {
      let y = top + 18 + Double(i) * 20
      let dash = e.dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
      out += "<line x1=\"\(f(lx))\" y1=\"\(f(y - 4))\" x2=\"\(f(lx + 28))\" y2=\"\(f(y - 4))\" stroke=\"\(e.color)\" stroke-width=\"2\"\(dash)/>\n"
      out += "<text x=\"\(f(lx + 36))\" y=\"\(f(y))\">\(escape(e.label))</text>\n"
    }
    for (i, m) in markEntries.enumerated() {
      let y = top + 18 + Double(entries.count + i) * 20
      out += m.kind == .best
        ? "<circle cx=\"\(f(lx + 14))\" cy=\"\(f(y - 4))\" r=\"6\" fill=\"none\" stroke=\"#555555\" stroke-width=\"2\"/>\n"
        : glyph(m.kind, lx + 14, y - 4, color: "#555555", title: m.label)
      out += "<text x=\"\(f(lx + 36))\" y=\"\(f(y))\">\(escape(m.label))</text>\n"
    }
    return out + "</svg>\n"
  }

  /// A cross (diverged) or a triangle (pruned) centred at (cx, cy).
  func glyph(_ kind: Mark.Kind, _ cx: Double, _ cy: Double, color: String, title: String) -> String {
    switch kind {
    case .diverged:
      return "<path d=\"M\(f(cx - 6)) \(f(cy - 6)) L\(f(cx + 6)) \(f(cy + 6)) M\(f(cx - 6)) \(f(cy + 6)) L\(f(cx + 6)) \(f(cy - 6))\" stroke=\"\(color)\" stroke-width=\"3\"><title>\(escape(title))</title></path>\n"
    case .pruned:
      return "<path d=\"M\(f(cx)) \(f(cy - 6)) L\(f(cx + 6)) \(f(cy + 5)) L\(f(cx - 6)) \(f(cy + 5)) Z\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"><title>\(escape(title))</title></path>\n"
    case .best:
      return "<circle cx=\"\(f(cx))\" cy=\"\(f(cy))\" r=\"6\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"><title>\(escape(title))</title></circle>\n"
    }
  }

  /// x ticks: the categories, or numbers (whole ones for epochs), or powers of ten on a log axis.
  func xTicks(_ x0: Double, _ x1: Double) -> [(Double, String)] {
    if let categories {
      return categories.enumerated().map { (Double($0.offset), $0.element) }
    }
    if logX { return Chart.logTicks(x0, x1, log: true) }
    let integer = series.allSatisfy { $0.points.allSatisfy { $0.x == $0.x.rounded() } }
    return Chart.ticks(x0, x1, integer: integer).map { ($0, NumberText.tick($0)) }
  }

  /// Ticks of an axis: "nice" values, or on a log axis 1, 2 and 5 times the powers of ten, the powers alone over 3
  /// decades or more, and every k-th power when there are more than eight (a loss from 1e-3 to 1e29 gets eight
  /// ticks, not 32).
  static func logTicks(_ y0: Double, _ y1: Double, log: Bool) -> [(Double, String)] {
    guard log else { return ticks(y0, y1, integer: false).map { ($0, NumberText.tick($0)) } }
    var out: [(Double, String)] = []
    let decades = y1 - y0
    let lo = Int(floor(y0 + 1e-9)), hi = Int(ceil(y1 - 1e-9))
    let every = max(1, Int(ceil(Double(hi - lo + 1) / 8)))
    for e in lo...hi where (e - lo) % every == 0 {
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

  /// At most about seven evenly spaced round values (1, 2, 2.5, 5 times a power of ten) inside [lo, hi].
  static func ticks(_ lo: Double, _ hi: Double, integer: Bool) -> [Double] {
    let raw = (hi - lo) / 6
    let magnitude = pow(10, floor(log10(raw)))
    var step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    if integer { step = max(1, step.rounded(.up)) }
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
