import Datasets

/// How the trainer cuts a global batch among the ranks: the pieces this rank computes, each backpropagated into a
/// buffer of its own, and how many pieces the whole batch has.
public enum BatchSharding: Equatable, Sendable {
  /// One contiguous slice per rank (`Sharding.slice`): the default.
  case contiguous
  /// Chunks of a fixed number of samples, whatever the number of ranks, dealt out to the ranks as whole chunks:
  /// `--deterministic`, where each chunk's gradient is computed by the same BLAS calls on whichever rank.
  case chunks(Int)

  /// This rank's pieces of a global batch of `count` samples (positions in the batch), and the batch's piece count.
  public func pieces(ofBatch count: Int, rank: Int, size: Int) -> (mine: [Range<Int>], total: Int) {
    switch self {
    case .contiguous:
      return ([Sharding.slice(0..<count, rank: rank, size: size)], size)
    case .chunks(let chunk):
      let chunks = Sharding.batches(count: count, batchSize: chunk)
      let mine = Sharding.slice(0..<chunks.count, rank: rank, size: size)
      return (mine.map { chunks[$0] }, chunks.count)
    }
  }
}
