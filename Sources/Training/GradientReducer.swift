import Collectives
import Datasets
import Layers
import TensorCore

/// The step's reduce: turns each rank's local gradient into the gradient every rank applies. It starts buckets and
/// finishes them, and nothing else.
///
/// A step reads: the trainer cuts its share of the global batch (`BatchSharding`), `begin`s the reduction (a zeroed
/// buffer per piece), runs forward and the loss, gives the loss sums (`setLossSums`) and backpropagates into the
/// buffers. As the backward pass finishes each part of the gradient it says so (`ready`), so a reducer can start
/// sending while the rest is computed; `finish` completes every bucket. With gradient accumulation (`--accumulate
/// N`) the N micro-batches backpropagate into the same buffers, and only the last one's backward pass reports
/// `ready`: one exchange a step. Implementations: one blocking all-reduce (`FlatAllReduce`),
/// buckets reduced while the backward pass runs (`BucketedReducer`), shared memory between a host's ranks
/// (`SharedMemoryReducer`), low-rank compression (`PowerSGDReducer`) and the exact fixed-point sum of
/// `--deterministic` (`DeterministicReducer`). Which one a run takes is `ExchangeSpec.makeReducer`'s choice; what
/// it reports is `ReducerReport`; what it sends, for `dpt scaling`, is `ExchangeSpec.traffic`, kept apart.
///
/// Compression is a codec, not a reducer: bf16, fp16 and top-k are `GradientCodec`s that `BucketReduction`
/// (Collectives) encodes and decodes block by block, so any reducer built on bucket reductions takes them (the buckets, and the shards that
/// cross hosts from shared memory). PowerSGD is a reducer of its own, as PyTorch's `powerSGD_hook` is a hook and
/// not a compressor: it needs two rounds (P, then Q), an orthogonalisation between them and error memory across
/// steps, which no per-block codec can express.
///
/// The loss is its own scalar here: `setLossSums` takes each piece's loss sum, `finish` returns the global batch's. (On the
/// wire it rides with the gradient, in one extra element of the first bucket, so that one reduction carries both.)
public protocol GradientReducer<T>: AnyObject {
  associatedtype T: TrainingScalar
  /// Layers report their weight gradients in blocks of about this many elements (Int.max: whole).
  var blockElements: Int { get }
  /// Starts a step in which this rank computes `pieces` pieces of a global batch cut into `piecesInBatch`: returns
  /// one zeroed buffer of P gradients per piece.
  func begin(pieces: Int, piecesInBatch: Int) -> [UnsafeMutableBufferPointer<T>]
  /// The loss sum over each piece's samples: given once a step, before the backward pass that reports `ready` (the
  /// first bucket carries them).
  func setLossSums(_ sums: [Double])
  /// The range `range` (within 0..<P) of every piece's buffer is final. Ranges come in the order of
  /// `Network.gradientBlocks(blockElements:)`, descending. Errors are kept for `finish` (the backward pass does not
  /// throw).
  func ready(_ range: Range<Int>)
  /// Completes every bucket: `gradient` becomes the gradient every rank applies; returns the global batch's loss
  /// sum. Both are the same on every rank.
  func finish() throws -> Double
  /// The reduced gradient after `finish`, P values. (A sharded optimizer step reads only its shard of it: outside
  /// the shard, a sharded reducer's buffer holds this rank's own partial sum. Read `wholeGradient()` for all of it.)
  var gradient: UnsafeMutableBufferPointer<T> { get }
  /// The whole reduced gradient after `finish`, the same P values on every rank, whatever the reducer keeps where
  /// (`--trace` records it). Collective.
  func wholeGradient() throws -> [T]
  /// Whether every value of the reduced gradient is finite (`--on-nan skip-batch`); the same on every rank.
  func gradientIsFinite() throws -> Bool
  /// The reduced gradient's squared L2 norm, summed in Double, the same on every rank (`--clip-grad-norm`).
  func gradientSquaredNorm() throws -> Double
  /// Multiplies the reduced gradient (the part this rank's optimizer step reads) by `c`.
  func scaleGradient(by c: T)
}

/// Sum of squares of `count` values from `x`, in Double, in a fixed order (so the same values give the same bits).
/// Specialised: a generic conversion to Double a value took 5% of a GPT's step.
@_specialize(where T == Float)
@_specialize(where T == Double)
func squaredNorm<T: TrainingScalar>(_ x: UnsafePointer<T>, count: Int) -> Double {
  var s = (0.0, 0.0, 0.0, 0.0)
  var i = 0
  while i + 4 <= count {
    let (a, b, c, d) = (Double(x[i]), Double(x[i + 1]), Double(x[i + 2]), Double(x[i + 3]))
    s.0 += a * a; s.1 += b * b; s.2 += c * c; s.3 += d * d
    i += 4
  }
  while i < count { s.0 += Double(x[i]) * Double(x[i]); i += 1 }
  return (s.0 + s.1) + (s.2 + s.3)
}

extension GradientReducer {
  public func gradientIsFinite() throws -> Bool { T.allFinite(gradient.baseAddress!, count: gradient.count) }
  public func gradientSquaredNorm() throws -> Double { squaredNorm(gradient.baseAddress!, count: gradient.count) }
  public func scaleGradient(by c: T) { T.scal(gradient.count, c, gradient.baseAddress!) }
  public func wholeGradient() throws -> [T] { Array(gradient) }
}

/// A reducer whose buckets travel while the backward pass runs can draw each one in the run's timeline
/// (`--timeline`), from its start to its end, on a track of its own.
public protocol RecordsBuckets: AnyObject {
  var timeline: Timeline? { get set }
}

/// What a reducer tells the run's log.
public protocol ReducerReport: AnyObject {
  /// e.g. "all-reduce", "7 overlapped buckets of up to 256 KiB, bf16 on the wire"
  var summary: String { get }
  /// Bytes this rank handed to the other ranks in the last step (0 on one rank).
  var bytesSent: Int { get }
}

/// A reducer as a trainer holds it: the step's verb and its report.
public typealias Reducer<T: TrainingScalar> = GradientReducer<T> & ReducerReport

/// A buffer of P + 1 values the reducers that send the loss beside the gradient share: P gradients, then the loss sum.
final class LossCarryingBuffer<T: TrainingScalar> {
  let storage: UnsafeMutableBufferPointer<T>
  init(parameters P: Int) {
    storage = .allocate(capacity: P + 1)
    storage.initialize(repeating: 0)
  }
  deinit { storage.deallocate() }
  var parameterCount: Int { storage.count - 1 }
  var gradient: UnsafeMutableBufferPointer<T> { UnsafeMutableBufferPointer(rebasing: storage[0..<parameterCount]) }
  var lossSum: Double {
    get { Double(storage[parameterCount]) }
    set { storage[parameterCount] = T(newValue) }
  }
  /// The start of a step of one contiguous piece a rank: zeroes the buffer and returns the gradient as the piece's.
  func begin(pieces: Int, reducer: String) -> [UnsafeMutableBufferPointer<T>] {
    precondition(pieces == 1, "\(reducer) takes one contiguous piece a rank")
    storage.zero()
    return [gradient]
  }
}

/// The bytes a ring all-reduce of `bytes` sends from each of `ranks` ranks: 2 (p - 1) / p of the buffer.
func ringBytes(_ bytes: Int, ranks p: Int) -> Int { p > 1 ? 2 * (p - 1) * bytes / p : 0 }
