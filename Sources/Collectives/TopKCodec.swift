/// Top-k sparsification (`--compress topk:F`): each block sends only its ceil(F n) values of largest magnitude, as
/// (index, value) pairs of 4 bytes each, and keeps the rest for the next step (error feedback: Stich et al., NeurIPS
/// 2018; Lin et al.'s Deep Gradient Compression, ICLR 2018), so that no part of the gradient is lost, only delayed.
///
/// In a bucket reduction a rank sends its top-k of each block to the block's owner, which adds the p sparse copies
/// and sends the top-k of their sum to everyone (keeping what that second selection dropped, too). Each block costs
/// 8 + 8 ceil(F n) bytes instead of 4 n: F = 0.01 sends 2% of the float32 bytes. A NaN counts as larger than any
/// number, so a non-finite gradient still reaches every rank (`--on-nan`).
public struct TopKCodec: GradientCodec {
  /// The fraction of each block's values that is sent, in (0, 1].
  public let fraction: Double

  public init?(fraction: Double) {
    guard fraction > 0, fraction <= 1 else { return nil }
    self.fraction = fraction
  }

  public static func parse(_ text: String) -> Self? {
    guard text.hasPrefix("topk:"), let f = Double(text.dropFirst("topk:".count)) else { return nil }
    return Self(fraction: f)
  }

  public static var syntax: String { "topk:F" }
  public var description: String { "topk:\(fraction)" }
  public var feedsBackError: Bool { true }

  /// How many of `n` values a block sends.
  public func kept(_ n: Int) -> Int { n == 0 ? 0 : min(n, max(1, Int((fraction * Double(n)).rounded(.up)))) }

  /// The entry count (UInt32) and 4 spare bytes, then the pairs.
  public func blockBytes(count n: Int) -> Int { 8 + 8 * kept(n) }

  public func encode(_ x: UnsafePointer<Float>, count n: Int, into block: UnsafeMutableRawPointer) {
    let k = kept(n)
    let pairs = (block + 8).assumingMemoryBound(to: UInt32.self)
    let keys = UnsafeRawPointer(x).assumingMemoryBound(to: UInt32.self)
    var entries = 0
    if k > 0 {
      // Every value whose magnitude is above the k-th largest t is sent, then values equal to t in index order.
      let (t, above) = Self.largest(k, keys: keys, count: n)
      var ties = k - above
      for i in 0..<n {
        let m = keys[i] & 0x7FFF_FFFF
        if m == t && ties > 0 { ties -= 1 } else if m <= t { continue }
        pairs[2 * entries] = UInt32(i)
        pairs[2 * entries + 1] = keys[i]
        entries += 1
      }
    }
    block.storeBytes(of: UInt32(entries), as: UInt32.self)
    block.storeBytes(of: 0, toByteOffset: 4, as: UInt32.self)
    for e in entries..<k { pairs[2 * e] = 0; pairs[2 * e + 1] = 0 }
  }

  public func accumulate(_ block: UnsafeRawPointer, count n: Int, into y: UnsafeMutablePointer<Float>) {
    let (entries, pairs) = Self.entries(block, count: n, kept: kept(n))
    for e in 0..<entries { y[Int(pairs[2 * e])] += Float(bitPattern: pairs[2 * e + 1]) }
  }

  public func decode(_ block: UnsafeRawPointer, count n: Int, into y: UnsafeMutablePointer<Float>) {
    y.update(repeating: 0, count: n)
    accumulate(block, count: n, into: y)
  }

  /// The entries of a block, checked: a block names at most k values, each inside it.
  static func entries(_ block: UnsafeRawPointer, count n: Int, kept k: Int) -> (Int, UnsafePointer<UInt32>) {
    let entries = Int(block.load(as: UInt32.self))
    let pairs = (block + 8).assumingMemoryBound(to: UInt32.self)
    precondition(entries <= k && (0..<entries).allSatisfy { Int(pairs[2 * $0]) < n }, "a top-k block names values outside it")
    return (entries, pairs)
  }

  /// The k-th largest magnitude of x[0..<n] (1 <= k <= n), NaN above every number.
  public static func largest(_ k: Int, of x: UnsafePointer<Float>, count n: Int) -> Float {
    Float(bitPattern: largest(k, keys: UnsafeRawPointer(x).assumingMemoryBound(to: UInt32.self), count: n).key)
  }

  /// The k-th largest of the values' bit patterns without the sign (for floats, the order of magnitudes, with NaN
  /// above infinity), and how many are larger: a radix select on the high 16 bits, then the low 16 bits of those
  /// in the chosen bucket. Two passes, no copy.
  static func largest(_ k: Int, keys: UnsafePointer<UInt32>, count n: Int) -> (key: UInt32, above: Int) {
    precondition(k >= 1 && k <= n)
    var counts = [Int32](repeating: 0, count: 1 << 16)
    return counts.withUnsafeMutableBufferPointer { counts in
      for i in 0..<n { counts[Int((keys[i] & 0x7FFF_FFFF) >> 16)] &+= 1 }
      var above = 0, high = (1 << 15) - 1
      while above + Int(counts[high]) < k { above += Int(counts[high]); high -= 1 }
      counts.update(repeating: 0)
      for i in 0..<n where (keys[i] & 0x7FFF_FFFF) >> 16 == UInt32(high) { counts[Int(keys[i] & 0xFFFF)] &+= 1 }
      var low = (1 << 16) - 1
      while above + Int(counts[low]) < k { above += Int(counts[low]); low -= 1 }
      return (UInt32(high) << 16 | UInt32(low), above)
    }
  }
}
