import TensorCore

/// Which samples each rank computes: a pure function of (rank, size, seed, epoch).
///
/// Each epoch visits the training set in one permutation drawn from (seed, epoch), the same on every rank, so the
/// global batches do not depend on the number of ranks. Each global batch is cut into `size` contiguous slices
/// whose lengths differ by at most one; rank r computes slice r.
public enum Sharding {
  /// The visiting order of epoch `epoch` (0-based).
  public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
    var rng = RandomSource(seed: seed, stream: 0xE90C_0000 &+ UInt64(epoch))
    return rng.permutation(count)
  }

  /// Positions in the epoch's permutation of each global batch, in order. The last batch is shorter when the
  /// batch size does not divide the count; with `dropLast` it is left out.
  public static func batches(count: Int, batchSize: Int, dropLast: Bool = false) -> [Range<Int>] {
    precondition(batchSize > 0, "batch size must be > 0")
    var out: [Range<Int>] = []
    var start = 0
    while start < count {
      let end = min(start + batchSize, count)
      if end - start < batchSize && dropLast { break }
      out.append(start..<end)
      start = end
    }
    return out
  }

  /// Rank `rank`'s contiguous slice of `range` when it is shared by `size` ranks (possibly empty).
  public static func slice(_ range: Range<Int>, rank: Int, size: Int) -> Range<Int> {
    precondition(size > 0 && (0..<size).contains(rank), "rank \(rank) outside a group of \(size)")
    let n = range.count
    return range.lowerBound + n * rank / size ..< range.lowerBound + n * (rank + 1) / size
  }
}
