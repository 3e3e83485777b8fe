import Collectives
import Datasets
import Foundation
import TensorCore
import _Support

/// A network link between hosts: a latency per message and a bandwidth, as the alpha-beta model sees it.
public struct Link: Equatable, Sendable, CustomStringConvertible {
  /// alpha: seconds from sending a message to its first byte arriving (and the per-message overhead).
  public var latency: Double
  /// B: bytes per second one direction of the link carries.
  public var bandwidth: Double

  public init(latency: Double, bandwidth: Double) {
    self.latency = latency
    self.bandwidth = bandwidth
  }

  /// Parses "RATE,LATENCY": a rate in bit/s with an optional k, m, g or t and "bit" ("1gbit", "10gbit", "100mbit")
  /// or in bytes/s with "B" ("125MB"), and a latency with ns, us, ms or s ("50us").
  public init?(_ text: String) {
    let parts = text.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard parts.count == 2, let rate = Link.rate(parts[0]), let latency = Link.seconds(parts[1]), rate > 0,
          latency >= 0 else { return nil }
    self.init(latency: latency, bandwidth: rate)
  }

  /// Bytes per second.
  static func rate(_ s: String) -> Double? {
    var text = s, perByte = false
    if text.hasSuffix("bit") { text.removeLast(3) } else if text.hasSuffix("bps") { text.removeLast(3) } else if text.hasSuffix("b") {
      text.removeLast(1)
      perByte = true
    }
    var scale = 1.0
    for (suffix, s) in [("k", 1e3), ("m", 1e6), ("g", 1e9), ("t", 1e12)] where text.hasSuffix(suffix) {
      text.removeLast()
      scale = s
    }
    guard let v = Double(text), v.isFinite else { return nil }
    return perByte ? v * scale : v * scale / 8
  }

  /// Seconds.
  static func seconds(_ s: String) -> Double? {
    for (suffix, scale) in [("ns", 1e-9), ("us", 1e-6), ("ms", 1e-3), ("s", 1.0)] where s.hasSuffix(suffix) {
      return Double(s.dropLast(suffix.count)).map { $0 * scale }
    }
    return Double(s)
  }

  public var description: String {
    let bits = bandwidth * 8
    let rate = bits >= 1e9 ? String(format: "%g Gbit/s", bits / 1e9) : String(format: "%g Mbit/s", bits / 1e6)
    return "\(rate), \(String(format: "%g", latency * 1e6)) us"
  }
}

/// Measuring a link between two ranks.
public enum LinkProbe {
  /// The message sizes of the ping-pong.
  public static let sizes = [8, 1 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20]

  /// Ping-pong between ranks 0 and 1 of `communicator` (the others wait): for each size, the median one-way time
  /// (half a round trip). Every rank returns the same table.
  public static func pingPong(_ communicator: any Communicator, sizes: [Int] = sizes) throws -> [(bytes: Int, seconds: Double)] {
    precondition(communicator.size >= 2, "a ping-pong needs two ranks")
    let tag = 7301
    var out: [(Int, Double)] = []
    for n in sizes {
      let message = [UInt8](repeating: 1, count: n)
      let reps = n <= 64 << 10 ? 50 : n <= 1 << 20 ? 10 : 4
      var times: [Double] = []
      try communicator.barrier()
      for _ in 0..<(reps + 1) {
        if communicator.rank == 0 {
          let t = WallClock.now()
          try communicator.send(message, to: 1, tag: tag)
          _ = try communicator.receive(from: 1, tag: tag)
          times.append((WallClock.now() - t) / 2)
        } else if communicator.rank == 1 {
          _ = try communicator.receive(from: 0, tag: tag)
          try communicator.send(message, to: 0, tag: tag)
        }
      }
      var median = [times.dropFirst().sorted().dropFirst(reps / 2).first ?? 0]  // the first round warms up
      try communicator.broadcast(&median, root: 0)
      out.append((n, median[0]))
    }
    return out
  }

  /// The link from a ping-pong table: alpha the smallest message's one-way time, B from the slope between the two
  /// largest messages (what a large bucket sees, beyond any burst allowance of a shaped link).
  public static func fit(_ table: [(bytes: Int, seconds: Double)]) -> Link {
    let sorted = table.sorted { $0.bytes < $1.bytes }
    let small = sorted.first!, a = sorted[sorted.count - 2], b = sorted[sorted.count - 1]
    let slope = (b.seconds - a.seconds) / Double(b.bytes - a.bytes)
    return Link(latency: small.seconds, bandwidth: slope > 0 ? 1 / slope : Double(b.bytes) / b.seconds)
  }
}
