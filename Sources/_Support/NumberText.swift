import Foundation

/// How dpt writes a number in text: one place, so tables, reports and messages agree.
public enum NumberText {
  /// `digits` places ("0.9120"); beyond 1e6 in exponent form with as many significant digits ("1.2346e+29", never
  /// 30 digits of fixed point); "-" for nil; "nan", "inf" as such.
  public static func fixed(_ x: Double?, digits: Int = 4) -> String {
    guard let x else { return "-" }
    guard x.isFinite else { return "\(x)" }
    return abs(x) >= 1e6 ? String(format: "%.\(digits)e", x) : String(format: "%.\(digits)f", x)
  }

  /// For a page of mixed values: whole numbers as such (epochs, counts), small or huge ones with three significant
  /// digits, the rest to four places.
  public static func compact(_ x: Double) -> String {
    guard x.isFinite else { return "\(x)" }
    if x == x.rounded() && abs(x) < 1e15 { return String(Int(x)) }
    return abs(x) < 1e-3 || abs(x) >= 1e6 ? String(format: "%.3g", x) : String(format: "%.4f", x)
  }

  /// An axis tick: as short as it can be ("0.25", "1000", "1e-05").
  public static func tick(_ v: Double) -> String {
    if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
    let a = abs(v)
    if a >= 1e-3 && a < 1e6 {
      var s = String(format: "%.4f", v)
      while s.hasSuffix("0") { s.removeLast() }
      if s.hasSuffix(".") { s.removeLast() }
      return s
    }
    return String(format: "%.0e", v)
  }
}

/// "1 epoch", "2 epochs": a count with its noun in the right number.
public func counted(_ n: Int, _ singular: String, _ plural: String? = nil) -> String {
  "\(n) \(n == 1 ? singular : plural ?? singular + "s")"
}
