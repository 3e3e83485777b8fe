import Collectives
import Datasets
import Layers
import Optimizers
import TensorCore

/// How gradients are compressed on the wire (`--compress`).
public enum Compression: Equatable, Sendable, Codable, CustomStringConvertible {
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
public struct ExchangeSpec: Equatable, Sendable, Codable {
  public var compression: Compression = .none
  /// Bytes per bucket; 0: one blocking all-reduce of the whole buffer after the backward pass; nil: the default.
  public var bucketBytes: Int?
  /// Optimizer steps with the uncompressed exchange before compression starts (nil: the default).
  public var warmupSteps: Int?
  /// Reduce through memory shared by the ranks of a host, which also share the parameters and split the optimizer
  /// step (nil: yes whenever some host runs several ranks; `SharedMemoryReducer`).
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

  /// PowerSGD's uncompressed first steps (PyTorch's start_powerSGD_iter; 2, the value the DDP peer of
  /// `scripts/bench hosts` sets), 0 for the 16-bit formats. Each costs a full exchange: 10 of them took 90 ms of a
  /// one-epoch run at 1 Gbit/s. Five epochs of Fashion-MNIST end within 0.3 points of the uncompressed accuracy with
  /// 2 (seeds 0-3).
  public var effectiveWarmupSteps: Int {
    if let warmupSteps { return warmupSteps }
    if case .powerSGD = compression { return 2 }
    return 0
  }

  /// The bucket size this run uses on `hosts` hosts.
  public func effectiveBucketBytes(hosts: Int) -> Int {
    if let bucketBytes { return bucketBytes }
    return hosts > 1 || compression != .none ? ExchangeSpec.defaultBucketBytes(compression) : 0
  }

  /// Which reducer a run takes, decided from the spec and the shape of the job alone (Horovod's `Enabled`).
  enum Choice: Equatable {
    case deterministic(chunk: Int)
    /// Shared memory, when every host runs as many ranks; `otherwise` is taken when they do not.
    case sharedMemory(wire: WireFormat, otherwise: Int)
    case flat
    case buckets(bytes: Int, wire: WireFormat)
    case powerSGD(rank: Int, warmupSteps: Int)
  }

  func choice(deterministic: Bool, deterministicChunk: Int, ranks: Int, hosts: Int) -> Choice {
    if deterministic { return .deterministic(chunk: deterministicChunk) }
    let bucketBytes = effectiveBucketBytes(hosts: hosts)
    if case .powerSGD(let rank) = compression { return .powerSGD(rank: rank, warmupSteps: effectiveWarmupSteps) }
    // Several ranks on some host (the hosts have fewer ranks than the group): shared memory, by default when nothing
    // is compressed and no bucket size is asked for; with --shared-memory and bf16/fp16 the shards cross hosts
    // compressed. Hosts with different numbers of ranks cannot pair their shards: overlapped buckets then.
    if sharedMemory ?? (compression == .none && self.bucketBytes == nil), ranks > hosts {
      return .sharedMemory(wire: compression.wire, otherwise: ExchangeSpec.defaultBucketBytes(compression.wire == .exact ? .none : .bfloat16))
    }
    if bucketBytes == 0 && compression == .none { return .flat }
    return .buckets(bytes: max(bucketBytes, 1 << 12), wire: compression.wire)
  }

  /// How a batch is cut among the ranks under this choice.
  public static func sharding(deterministic: Bool, deterministicChunk: Int) -> BatchSharding {
    deterministic ? .chunks(deterministicChunk) : .contiguous
  }

  /// The reducer for `network` on `communicator`. Collective (shared memory's setup). With a first-order optimizer
  /// and shared memory, the optimizer step is sharded among a host's ranks: the optimizer comes back wrapped
  /// (`ShardedOptimizer`) and the parameters move into the shared segment.
  public func makeReducer<T: TrainingScalar>(for network: Network<T>, communicator: any Communicator, deterministic: Bool,
                                             deterministicChunk: Int, seed: UInt64, parameters: ParameterBuffer<T>,
                                             optimizer: inout AnyOptimizer<T>) throws -> any Reducer<T> {
    let choice = choice(deterministic: deterministic, deterministicChunk: deterministicChunk, ranks: communicator.size,
                        hosts: communicator.hostCount)
    switch choice {
    case .deterministic(let chunk):
      return DeterministicReducer<T>(network: network, communicator: communicator, chunk: chunk)
    case .sharedMemory(let wire, let otherwise):
      guard let local = try SharedMemoryReducer<T>.hostGroup(of: communicator) else {
        return BucketedReducer<T>(network: network, communicator: communicator, bucketBytes: otherwise, wire: wire)
      }
      let reducer = try SharedMemoryReducer<T>(network: network, communicator: communicator, local: local, wire: wire,
                                               shardStep: optimizer.firstOrder != nil)
      if let base = optimizer.firstOrder {
        let (sharded, shared) = try reducer.shardedStep(wrapping: base, parameters: Array(parameters.values))
        optimizer = AnyOptimizer(sharded)
        parameters.move(to: shared)
      }
      return reducer
    case .flat:
      return FlatAllReduce<T>(network: network, communicator: communicator)
    case .buckets(let bytes, let wire):
      return BucketedReducer<T>(network: network, communicator: communicator, bucketBytes: bytes, wire: wire)
    case .powerSGD(let rank, let warmupSteps):
      return PowerSGDReducer<T>(network: network, communicator: communicator, rank: rank, warmupSteps: warmupSteps, seed: seed)
    }
  }

  /// What one step sends, for `dpt scaling`, on `ranks` ranks over `hosts` hosts: the reductions in order, each as the
  /// bytes of one copy of its buffer on the wire, and whether they can start while the backward pass still runs.
  public func traffic<T: TrainingScalar>(for network: Network<T>, deterministic: Bool, deterministicChunk: Int,
                                         ranks: Int, hosts: Int) -> ExchangeTraffic {
    let P = network.parameterCount, size = MemoryLayout<T>.stride
    func bucket(_ count: Int, _ wire: WireFormat, exactTail: Int) -> Int {
      BucketReduction<T>.bufferWireBytes(count: count, wire: wire, exactTail: exactTail, elementBytes: size)
    }
    switch choice(deterministic: deterministic, deterministicChunk: deterministicChunk, ranks: ranks, hosts: hosts) {
    case .deterministic:
      return ExchangeTraffic(reductions: [2 * 8, (P + 1) * MemoryLayout<Int64>.stride], overlapsBackward: false, smallOnesDirect: false)
    case .sharedMemory(let wire, _):
      guard hosts > 1 else { return ExchangeTraffic(reductions: [], overlapsBackward: false) }
      let shard = SharedMemoryReducer<T>.shards(count: P + 1, ranks: max(1, ranks / hosts))[0]
      return ExchangeTraffic(reductions: [bucket(shard.count, wire, exactTail: shard.upperBound == P + 1 ? 1 : 0)], overlapsBackward: false)
    case .flat:
      return ExchangeTraffic(reductions: [(P + 1) * size], overlapsBackward: false, smallOnesDirect: false)
    case .buckets(let bytes, let wire):
      let buckets = BucketedReducer<T>.plan(network: network, bucketBytes: bytes)
      return ExchangeTraffic(reductions: buckets.map { bucket($0.count, wire, exactTail: $0.upperBound == P + 1 ? 1 : 0) },
                             overlapsBackward: true)
    case .powerSGD(let rank, _):
      let plan = PowerSGDReducer<T>.plan(network, rank: rank)
      let uncompressed = plan.uncompressed.reduce(0) { $0 + $1.count }
      return ExchangeTraffic(reductions: [(uncompressed + plan.pCount) * size, plan.qCount * size], overlapsBackward: false)
    }
  }
}

/// The reductions of one step, as a cost model sees them.
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
