import Collectives
import Datasets
import Layers
import TensorCore

/// Turns each rank's local gradient into the gradient every rank applies: the seam between the backward pass and
/// the optimizer step.
///
/// A training step reads: take the batch slice, forward, loss, backward, exchange, optimizer step. The exchange
/// decides how this rank's share of the global batch is cut (`pieces`), gets told as the backward pass finishes
/// each part of the gradient (`ready`), so it can start sending while the rest is computed, and completes in
/// `finish`. Implementations: one blocking all-reduce of the flat buffer (`FlatAllReduce`), buckets reduced while
/// the backward pass runs, exactly or as 16-bit values (`BucketedExchange`), low-rank compression
/// (`PowerSGDExchange`) and the exact fixed-point sum of `--deterministic` (`DeterministicExchange`).
///
/// Every buffer has P + 1 slots: the P gradients (of the sum of the piece's sample losses, divided by the global
/// batch size) and the piece's loss sum, which rides along so that one exchange carries both.
public protocol GradientExchange<T>: AnyObject {
  associatedtype T: TrainingScalar
  /// e.g. "all-reduce", "overlapped buckets of 256 KiB, bf16 on the wire"
  var summary: String { get }
  /// The pieces of this rank's share of a global batch of `count` samples, as positions in the batch, each
  /// backpropagated into its own buffer: one contiguous slice, except in deterministic mode (whole chunks).
  func shards(ofBatch count: Int) -> [Range<Int>]
  /// Layers report their weight gradients in blocks of about this many elements (Int.max: whole).
  var blockElements: Int { get }
  /// The zeroed buffer piece `k` is backpropagated into: `destination` itself, or a buffer of the exchange's own.
  func buffer(piece k: Int, destination: UnsafeMutableBufferPointer<T>) -> UnsafeMutableBufferPointer<T>
  /// The range `range` of the current piece's buffer is final. The loss slot comes first, then the blocks of
  /// `Network.gradientBlocks(blockElements:)` in order, so the final part grows downwards from P + 1 to 0.
  /// Errors are kept for `finish` (the backward pass does not throw).
  func ready(_ range: Range<Int>)
  /// Completes the exchange: `destination[0..<P]` becomes the gradient every rank applies; returns the loss sum of
  /// the global batch. Both are the same on every rank.
  func finish(into destination: UnsafeMutableBufferPointer<T>) throws -> Double
  /// Bytes this rank handed to the other ranks in the last exchange (0 on one rank).
  var bytesSent: Int { get }
  /// What one step sends, for `dpt scaling`: the reductions in order, each as the bytes its buffer has on the wire,
  /// and whether they can start while the backward pass is still running.
  var traffic: ExchangeTraffic { get }
  /// Collective setup once the parameters are final on every rank (shared memory, sub-communicators). With
  /// `shardStep` (a first-order optimizer) an exchange may take over where the optimizer step runs: it then
  /// returns the placement, whose shared buffer now holds the parameters. Most exchanges need nothing: nil.
  func prepare(parameters: [T], shardStep: Bool) throws -> ShardedPlacement<T>?
}

extension GradientExchange {
  public func prepare(parameters: [T], shardStep: Bool) throws -> ShardedPlacement<T>? { nil }
}

/// The reductions of one exchange, as a cost model sees them.
public struct ExchangeTraffic: Equatable, Sendable {
  /// Bytes on the wire of each reduction's whole buffer, in the order they start.
  public var reductions: [Int]
  /// True when the reductions start as the backward pass finishes each bucket (all but the last can be hidden
  /// behind the rest of the backward pass); false when they run one after another after it.
  public var overlapsBackward: Bool
  /// True when they are `BucketReduction`s, whose small buckets go in one direct phase; false for MPI's own
  /// all-reduce, modelled as a ring.
  public var smallOnesDirect: Bool

  public init(reductions: [Int], overlapsBackward: Bool, smallOnesDirect: Bool = true) {
    self.reductions = reductions
    self.overlapsBackward = overlapsBackward
    self.smallOnesDirect = smallOnesDirect
  }

  public var bytes: Int { reductions.reduce(0, +) }
}

extension Compression {
  var wire: WireFormat {
    switch self {
    case .bfloat16: .bfloat16
    case .float16: .float16
    case .none, .powerSGD: .exact
    }
  }
}

/// This rank's contiguous slice of a batch of `count` (see `Sharding.slice`), as the only piece.
func contiguousPiece(ofBatch count: Int, _ communicator: any Communicator) -> [Range<Int>] {
  [Sharding.slice(0..<count, rank: communicator.rank, size: communicator.size)]
}

/// The bytes a ring all-reduce of `bytes` sends from each of `ranks` ranks: 2 (p - 1) / p of the buffer.
func ringBytes(_ bytes: Int, ranks p: Int) -> Int { p > 1 ? 2 * (p - 1) * bytes / p : 0 }
