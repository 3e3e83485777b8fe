import Collectives
import Datasets
import Layers

/// How the trainer cuts a global batch (and a data set it evaluates) among the ranks, and how it sums across them:
/// the one place `--deterministic` changes the arithmetic of a step's statistics and of evaluation. The pieces this
/// rank computes are each backpropagated into a buffer of their own.
public enum BatchSharding: Equatable, Sendable {
  /// One contiguous slice per rank (`Sharding.slice`): the default.
  case contiguous
  /// Chunks of a fixed number of samples, whatever the number of ranks, dealt out to the ranks as whole chunks:
  /// `--deterministic`, where each chunk's gradient is computed by the same BLAS calls on whichever rank.
  case chunks(Int)

  /// Chunks of `chunk` under `--deterministic`, else contiguous slices.
  public init(deterministic: Bool, chunk: Int) {
    self = deterministic ? .chunks(chunk) : .contiguous
  }

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

  /// This rank's pieces of a data set of `count` rows to evaluate, and their number over all ranks: one slice a rank,
  /// or chunks of `chunk` rows dealt out whole.
  public func pieces(ofSet count: Int, chunk: Int, rank: Int, size: Int) -> (mine: [Range<Int>], total: Int) {
    switch self {
    case .contiguous: return ([Sharding.slice(0..<count, rank: rank, size: size)], size)
    case .chunks: return BatchSharding.chunks(chunk).pieces(ofBatch: count, rank: rank, size: size)
    }
  }

  /// The element-wise sum over every rank of this rank's `partials` (rows of `width` values, one per piece; `terms`
  /// pieces in all): the local sum all-reduced as floats, or exactly (fixed point), the same bits for any number of
  /// ranks.
  public func sum(_ partials: [[Double]], width: Int, terms: Int, communicator: any Communicator) throws -> [Double] {
    switch self {
    case .contiguous:
      var total = StepContext.localSum(partials, width: width)
      try communicator.allReduce(&total)
      return total
    case .chunks:
      return try FixedPoint.exactSum(partials, width: width, terms: terms, communicator: communicator)
    }
  }
}
