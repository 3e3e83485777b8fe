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
  func pieces(ofBatch count: Int) -> [Range<Int>]
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

/// How gradients are compressed on the wire (`--compress`).
public enum Compression: Equatable, Sendable, CustomStringConvertible {
  case none
  /// bfloat16 values, summed in float32.
  case bfloat16
  /// IEEE half precision values with a power-of-two scale per block, summed in float32.
  case float16
  /// Rank-R PowerSGD with error feedback (Vogels et al., NeurIPS 2019).
  case powerSGD(rank: Int)

  /// Parses "none", "bf16", "fp16" or "powersgd:R".
  public init?(_ text: String) {
    switch text {
    case "none": self = .none
    case "bf16", "bfloat16": self = .bfloat16
    case "fp16", "float16": self = .float16
    default:
      guard text.hasPrefix("powersgd"), let r = text == "powersgd" ? 4 : Int(text.dropFirst("powersgd:".count)),
            text == "powersgd" || text.hasPrefix("powersgd:"), r >= 1 else { return nil }
      self = .powerSGD(rank: r)
    }
  }

  public var description: String {
    switch self {
    case .none: "none"
    case .bfloat16: "bf16"
    case .float16: "fp16"
    case .powerSGD(let r): "powersgd:\(r)"
    }
  }

  /// Whether the exchanged gradient equals the plain sum up to float summation order.
  public var isExact: Bool { self == .none }
}

/// The gradient exchange of a run (`--bucket-size`, `--compress`, `--compress-warmup-steps`; `--deterministic` is in
/// `TrainingConfig`).
public struct ExchangeSpec: Equatable, Sendable {
  public var compression: Compression = .none
  /// Bytes per bucket; 0: one blocking all-reduce of the whole buffer after the backward pass; nil: the default.
  public var bucketBytes: Int?
  /// Optimizer steps with the uncompressed exchange before compression starts (nil: the default).
  public var warmupSteps: Int?
  /// Reduce through memory shared by the ranks of a host, which also share the parameters and split the optimizer
  /// step (nil: yes whenever some host runs several ranks; `SharedMemoryExchange`).
  public var sharedMemory: Bool?

  public init(compression: Compression = .none, bucketBytes: Int? = nil, warmupSteps: Int? = nil, sharedMemory: Bool? = nil) {
    self.compression = compression
    self.bucketBytes = bucketBytes
    self.warmupSteps = warmupSteps
    self.sharedMemory = sharedMemory
  }

  /// The bucket size when none is given: one flat all-reduce between ranks of one host (shared memory moves the
  /// bytes with the same cores that compute, so overlap gains nothing there); across hosts 256 KiB of exact values,
  /// 1 MiB of 16-bit ones. Measured on two hosts at 1 Gbit/s and unshaped (medians of 3): exact buckets of 64 KiB,
  /// 256 KiB, 1 MiB, 4 MiB gave 18.7K, 18.3K, 16.4K, 15.9K and 120K, 130K, 125K, 129K samples/s; bf16 gave 37.3K,
  /// 33.8K, 37.3K, 37.4K and 118K, 119K, 149K, 148K: a 256 KiB bucket's 16-bit blocks are just over TCP's 64 KiB
  /// eager limit, so each phase waits for a rendezvous.
  public static func defaultBucketBytes(_ compression: Compression) -> Int {
    compression == .none ? 256 << 10 : 1 << 20
  }

  /// PowerSGD's uncompressed first steps (PyTorch's start_powerSGD_iter; 2, as ../shared/bench's DDP peer), 0 for the
  /// 16-bit formats. Each costs a full exchange: 10 of them took 90 ms of a one-epoch run at 1 Gbit/s. Five epochs of
  /// Fashion-MNIST end within 0.3 points of the uncompressed accuracy with 2 (seeds 0-3).
  public var effectiveWarmupSteps: Int {
    if let warmupSteps { return warmupSteps }
    if case .powerSGD = compression { return 2 }
    return 0
  }

  var isPowerSGD: Bool {
    if case .powerSGD = compression { return true }
    return false
  }

  /// The bucket size this run uses on `hosts` hosts.
  public func effectiveBucketBytes(hosts: Int) -> Int {
    if let bucketBytes { return bucketBytes }
    return hosts > 1 || compression != .none ? ExchangeSpec.defaultBucketBytes(compression) : 0
  }

  /// The exchange for `network` on `communicator` (deterministic runs take the fixed-point sum).
  public func make<T: TrainingScalar>(for network: Network<T>, communicator: any Communicator, deterministic: Bool,
                               deterministicChunk: Int, seed: UInt64) -> any GradientExchange<T> {
    if deterministic {
      return DeterministicExchange<T>(network: network, communicator: communicator, chunk: deterministicChunk)
    }
    let bucketBytes = effectiveBucketBytes(hosts: communicator.hostCount)
    // Several ranks on some host (the hosts have fewer ranks than the group): shared memory, by default when nothing
    // is compressed and no bucket size is asked for; with --shared-memory and bf16/fp16 the shards cross hosts
    // compressed.
    if sharedMemory ?? (compression == .none && self.bucketBytes == nil), communicator.size > communicator.hostCount, !isPowerSGD {
      return SharedMemoryExchange<T>(network: network, communicator: communicator, wire: compression.wire)
    }
    let plain: any GradientExchange<T> = bucketBytes == 0 && compression == .none
      ? FlatAllReduce<T>(network: network, communicator: communicator)
      : BucketedExchange<T>(network: network, communicator: communicator, bucketBytes: max(bucketBytes, 1 << 12),
                            wire: compression.wire)
    switch compression {
    case .none, .bfloat16, .float16:
      return plain
    case .powerSGD(let rank):
      return PowerSGDExchange<T>(network: network, communicator: communicator, rank: rank,
                                 warmupSteps: effectiveWarmupSteps, seed: seed)
    }
  }
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

/// Today's exchange, and the default between ranks of one host: after the backward pass, one blocking
/// `MPI_Allreduce` of the whole flat buffer with the loss in its last slot.
public final class FlatAllReduce<T: TrainingScalar>: GradientExchange {
  let communicator: any Communicator
  let count: Int

  init(network: Network<T>, communicator: any Communicator) {
    self.communicator = communicator
    self.count = network.parameterCount + 1
  }

  public var summary: String { "all-reduce" }
  public var blockElements: Int { .max }
  public var traffic: ExchangeTraffic {
    ExchangeTraffic(reductions: [count * MemoryLayout<T>.stride], overlapsBackward: false, smallOnesDirect: false)
  }
  public var bytesSent: Int { ringBytes(count * MemoryLayout<T>.stride, ranks: communicator.size) }

  public func pieces(ofBatch count: Int) -> [Range<Int>] { contiguousPiece(ofBatch: count, communicator) }

  public func buffer(piece k: Int, destination: UnsafeMutableBufferPointer<T>) -> UnsafeMutableBufferPointer<T> {
    destination.zero()
    return destination
  }

  public func ready(_ range: Range<Int>) {}

  public func finish(into destination: UnsafeMutableBufferPointer<T>) throws -> Double {
    try communicator.allReduce(destination, .sum)
    return Double(destination[destination.count - 1])
  }
}

/// The bytes a ring all-reduce of `bytes` sends from each of `ranks` ranks: 2 (p - 1) / p of the buffer.
func ringBytes(_ bytes: Int, ranks p: Int) -> Int { p > 1 ? 2 * (p - 1) * bytes / p : 0 }

/// Buckets reduced while the backward pass runs (`--bucket-size`), the values exact or as 16-bit codes
/// (`--compress bf16|fp16`).
///
/// The buckets are cut from `Network.gradientBlocks` in the order the backward pass finishes them (the loss slot and
/// the last layer first; the largest weight gradients split into blocks of whole rows), the same on every rank.
/// A bucket starts (`BucketReduction`: a reduce-scatter then an all-gather, both non-blocking) as soon as the backward
/// pass has finished all of it, and every later `ready` tests the buckets in flight, which is what moves MPI's
/// non-blocking collectives on while this rank computes (measured against a progress thread: see the README).
/// Exact values give the plain all-reduce's sum up to float summation order; 16-bit ones do not, but are bitwise
/// repeatable for the same seed and world size.
public final class BucketedExchange<T: TrainingScalar>: GradientExchange {
  let communicator: any Communicator
  /// The buckets, in the order they are started: ranges of the flat buffer, descending.
  public let buckets: [Range<Int>]
  let reductions: [BucketReduction<T>]
  public let blockElements: Int
  let wire: WireFormat
  private var base: UnsafeMutablePointer<T>?
  /// [finalFrom, P + 1) of the current buffer is final.
  private var finalFrom = 0
  private var started = 0
  private var failure: Error?

  init(network: Network<T>, communicator: any Communicator, bucketBytes: Int, wire: WireFormat) {
    self.communicator = communicator
    self.wire = wire
    let P = network.parameterCount
    blockElements = max(1, bucketBytes / MemoryLayout<T>.stride)
    buckets = Self.plan(blocks: [P..<P + 1] + network.gradientBlocks(blockElements: blockElements), bucketElements: blockElements)
    reductions = buckets.map {
      BucketReduction<T>(communicator: communicator, count: $0.count, wire: wire, exactTail: $0.upperBound == P + 1 ? 1 : 0)
    }
  }

  /// Consecutive blocks (descending, contiguous) merged into buckets of at most `bucketElements` (a larger block
  /// is a bucket of its own).
  static func plan(blocks: [Range<Int>], bucketElements: Int) -> [Range<Int>] {
    var out: [Range<Int>] = []
    for b in blocks where !b.isEmpty {
      if let last = out.last, last.lowerBound == b.upperBound, last.count + b.count <= bucketElements {
        out[out.count - 1] = b.lowerBound..<last.upperBound
      } else {
        precondition(out.last.map { $0.lowerBound == b.upperBound } ?? true, "gradient blocks must be contiguous and descending")
        out.append(b)
      }
    }
    return out
  }

  public var summary: String {
    let size = blockElements * MemoryLayout<T>.stride
    let wire = wire == .exact ? "" : ", \(wire == .bfloat16 ? "bf16" : "fp16") on the wire"
    return "\(buckets.count) overlapped buckets of up to \(size >> 10) KiB\(wire)"
  }

  public var bytesSent: Int { reductions.reduce(0) { $0 + $1.bytesSent } }
  public var traffic: ExchangeTraffic {
    ExchangeTraffic(reductions: reductions.map(\.wireBytes), overlapsBackward: true)
  }

  public func pieces(ofBatch count: Int) -> [Range<Int>] { contiguousPiece(ofBatch: count, communicator) }

  public func buffer(piece k: Int, destination: UnsafeMutableBufferPointer<T>) -> UnsafeMutableBufferPointer<T> {
    destination.zero()
    base = destination.baseAddress
    finalFrom = destination.count
    started = 0
    failure = nil
    return destination
  }

  public func ready(_ range: Range<Int>) {
    guard failure == nil else { return }
    precondition(range.upperBound == finalFrom, "gradient blocks arrive in descending order")
    finalFrom = range.lowerBound
    do {
      while started < buckets.count && buckets[started].lowerBound >= finalFrom {
        try reductions[started].start(base! + buckets[started].lowerBound)
        started += 1
      }
      for r in reductions[0..<started] { _ = try r.progress() }
    } catch { failure = error }
  }

  public func finish(into destination: UnsafeMutableBufferPointer<T>) throws -> Double {
    if let failure { throw failure }
    precondition(base == destination.baseAddress, "finish with another buffer than the one backpropagated into")
    // Buckets the backward pass did not complete (a rank without samples in a short batch reports nothing): start
    // them now, in the same order as every other rank.
    while started < buckets.count {
      try reductions[started].start(base! + buckets[started].lowerBound)
      started += 1
    }
    for r in reductions { try r.wait() }
    base = nil
    return Double(destination[destination.count - 1])
  }
}
