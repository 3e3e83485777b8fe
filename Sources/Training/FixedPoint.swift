import Collectives
import Datasets
import Foundation
import Layers
import Optimizers
import TensorCore

/// Sums in 64-bit fixed point: exact, so their value does not depend on which rank adds what, or in which order.
public enum FixedPoint {
  /// A power of two s such that `terms` values of magnitude at most `largest`, times s, sum within Int64 (with a bit
  /// to spare). A value v is stored as round(v s): the resolution is about largest * terms / 2^61.
  public static func scale(largest: Double, terms: Int) -> Double {
    guard largest > 0, largest.isFinite else { return 1 }
    let e = Int(ceil(Foundation.log2(largest))) + Int(ceil(Foundation.log2(Double(max(terms, 1))))) + 1
    return Foundation.pow(2.0, Double(61 - e))
  }

  /// The element-wise sum over every rank's rows of `width` values, computed exactly: the largest magnitude is
  /// all-reduced first to choose the scale, then the fixed-point sums.
  public static func exactSum(_ rows: [[Double]], width: Int, terms: Int, communicator: any Communicator) throws -> [Double] {
    var largest = [rows.flatMap { $0 }.map(abs).filter(\.isFinite).max() ?? 0]
    try communicator.allReduce(&largest, .max)
    let s = scale(largest: largest[0], terms: terms)
    var sums = [Int64](repeating: 0, count: width)
    for r in rows { for j in 0..<width { sums[j] &+= Int64((r[j] * s).rounded()) } }
    try communicator.allReduce(&sums, .sum)
    return sums.map { Double($0) / s }
  }
}
