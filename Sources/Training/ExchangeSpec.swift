import Collectives
import Datasets
import Layers
import Optimizers
import TensorCore

/// How gradients are compressed on the wire (`--compress`): not at all, a codec applied block by block in the bucket
/// reductions (`GradientCodecs`: bf16, fp16, top-k), or PowerSGD, a reducer of its own.
public enum Compression: Equatable, Sendable, Codable, CustomStringConvertible {
  case none
  /// Each bucket's blocks encoded by `codec`, summed in float32.
  case codec(any GradientCodec)
  /// Rank-R PowerSGD with error feedback (Vogels et al., NeurIPS 2019).
  case powerSGD(rank: Int)

  public static var bfloat16: Compression { .codec(BFloat16Codec()) }
  public static var float16: Compression { .codec(Float16Codec()) }

  /// Parses "none", "powersgd:R" or a codec's name ("bf16", "fp16", "topk:F", ...).
  public init?(_ text: String) {
    if text == "none" { self = .none; return }
    if let codec = GradientCodecs.parse(text) { self = .codec(codec); return }
    guard text.hasPrefix("powersgd"), let r = text == "powersgd" ? 4 : Int(text.dropFirst("powersgd:".count)),
          text == "powersgd" || text.hasPrefix("powersgd:"), r >= 1 else { return nil }
    self = .powerSGD(rank: r)
  }

  /// Every spelling, for help texts: "none | bf16 | fp16 | topk:F | powersgd:R".
  public static var syntax: String { "none | \(GradientCodecs.syntax) | powersgd:R" }

  public var description: String {
    switch self {
    case .none: "none"
    case .codec(let codec): codec.description
    case .powerSGD(let r): "powersgd:\(r)"
    }
  }

  public static func == (a: Compression, b: Compression) -> Bool { a.description == b.description }

  /// Whether the exchanged gradient equals the plain sum up to float summation order.
  public var isExact: Bool { self == .none }

  /// The codec of the bucket reductions (nil: the values themselves).
  public var codec: (any GradientCodec)? {
    if case .codec(let codec) = self { return codec }
    return nil
  }

  /// Encoded as its spelling ("bf16"); the keyed form of earlier versions (`{"bfloat16": {}}`) is read too.
  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(description)
  }

  public init(from decoder: any Decoder) throws {
    if let text = try? decoder.singleValueContainer().decode(String.self) {
      guard let c = Compression(text) else {
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown compression '\(text)'"))
      }
      self = c
      return
    }
    struct Rank: Decodable { var rank: Int }
    enum Earlier: String, CodingKey { case none, bfloat16, float16, powerSGD }
    let keyed = try decoder.container(keyedBy: Earlier.self)
    if keyed.contains(.bfloat16) { self = .bfloat16 }
    else if keyed.contains(.float16) { self = .float16 }
    else if keyed.contains(.powerSGD) { self = .powerSGD(rank: try keyed.decode(Rank.self, forKey: .powerSGD).rank) }
    else { self = .none }
  }
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

  /// The method a run takes, decided from the spec and the shape of the job alone (Horovod's `Enabled`).
  public func method(deterministic: Bool, deterministicChunk: Int, ranks: Int, hosts: Int) -> any ExchangeMethod {
    if deterministic { return DeterministicExchange(chunk: deterministicChunk) }
    let bucketBytes = effectiveBucketBytes(hosts: hosts)
    if case .powerSGD(let rank) = compression { return PowerSGDExchange(rank: rank, warmupSteps: effectiveWarmupSteps) }
    // Several ranks on some host (the hosts have fewer ranks than the group): shared memory, by default when nothing
    // is compressed and no bucket size is asked for; with --shared-memory and bf16/fp16 the shards cross hosts
    // compressed. Hosts with different numbers of ranks cannot pair their shards: overlapped buckets then.
    if sharedMemory ?? (compression == .none && self.bucketBytes == nil), ranks > hosts {
      return SharedMemoryExchange(codec: compression.codec, otherwise: ExchangeSpec.defaultBucketBytes(compression))
    }
    if bucketBytes == 0 && compression == .none { return FlatExchange() }
    return BucketExchange(bytes: max(bucketBytes, 1 << 12), codec: compression.codec)
  }

  /// Settings that do not go together, whatever the job's shape: a `ConfigurationProblem` naming them.
  public func check(deterministic: Bool, optimizer: OptimizerKind) throws {
    if sharedMemory == true, case .powerSGD = compression { throw ConfigurationProblem.exchangeConflict(.powerSGDWithSharedMemory) }
    if deterministic && compression != .none { throw ConfigurationProblem.exchangeConflict(.compressedDeterministic) }
    if case .powerSGD = compression, optimizer == .lbfgs { throw ConfigurationProblem.exchangeConflict(.powerSGDWithLineSearch) }
  }
}

/// One way of exchanging gradients: the reducer it builds, whether it shards the optimizer step among a host's ranks,
/// and what one step sends (for `dpt scaling`). `ExchangeSpec.method` chooses one from the flags and the job's shape.
public protocol ExchangeMethod: Sendable {
  /// The reducer for `network` on `communicator`; collective when the method sets up shared state. `shardStep`:
  /// the optimizer is first-order, so a method that shards may take its step apart (`ShardsOptimizerStep`).
  func makeReducer<T: TrainingScalar>(for network: Network<T>, communicator: any Communicator, seed: UInt64, shardStep: Bool) throws
    -> any Reducer<T>
  /// What one step sends on `ranks` ranks over `hosts` hosts.
  func traffic<T: TrainingScalar>(for network: Network<T>, ranks: Int, hosts: Int) -> ExchangeTraffic
}

/// A `BucketReduction` of the elements `range` of a buffer of P + 1 (the last one the loss, which travels exactly).
func bucketReduction<T: TrainingScalar>(_ range: Range<Int>, of P: Int, _ codec: (any GradientCodec)?, _: T.Type) -> Collective {
  .bucketReduction(bytes: BucketReduction<T>.bufferWireBytes(count: range.count, codec: codec, exactTail: range.upperBound == P + 1 ? 1 : 0,
                                                              elementBytes: MemoryLayout<T>.stride))
}

/// `--deterministic`: 64-bit fixed-point sums of chunks, the same bits for any number of ranks.
public struct DeterministicExchange: ExchangeMethod {
  public let chunk: Int
  public func makeReducer<T: TrainingScalar>(for network: Network<T>, communicator: any Communicator, seed: UInt64, shardStep: Bool) throws
    -> any Reducer<T> { DeterministicReducer<T>(network: network, communicator: communicator, chunk: chunk) }
  public func traffic<T: TrainingScalar>(for network: Network<T>, ranks: Int, hosts: Int) -> ExchangeTraffic {
    ExchangeTraffic([.allReduce(bytes: 2 * 8), .allReduce(bytes: (network.parameterCount + 1) * MemoryLayout<Int64>.stride)],
                    overlapsBackward: false)
  }
}

/// One blocking all-reduce of the whole buffer after the backward pass (MPI's own).
public struct FlatExchange: ExchangeMethod {
  public func makeReducer<T: TrainingScalar>(for network: Network<T>, communicator: any Communicator, seed: UInt64, shardStep: Bool) throws
    -> any Reducer<T> { FlatAllReduce<T>(network: network, communicator: communicator) }
  public func traffic<T: TrainingScalar>(for network: Network<T>, ranks: Int, hosts: Int) -> ExchangeTraffic {
    ExchangeTraffic([.allReduce(bytes: (network.parameterCount + 1) * MemoryLayout<T>.stride)], overlapsBackward: false)
  }
}

/// Buckets of `bytes`, each reduced (encoded by `codec`, if any) as soon as the backward pass has finished it.
public struct BucketExchange: ExchangeMethod {
  public let bytes: Int
  public let codec: (any GradientCodec)?
  public func makeReducer<T: TrainingScalar>(for network: Network<T>, communicator: any Communicator, seed: UInt64, shardStep: Bool) throws
    -> any Reducer<T> { BucketedReducer<T>(network: network, communicator: communicator, bucketBytes: bytes, codec: codec) }
  public func traffic<T: TrainingScalar>(for network: Network<T>, ranks: Int, hosts: Int) -> ExchangeTraffic {
    let P = network.parameterCount
    let buckets = BucketedReducer<T>.plan(network: network, bucketBytes: bytes)
    return ExchangeTraffic(buckets.map { bucketReduction($0, of: P, codec, T.self) }, overlapsBackward: true)
  }
}

/// The ranks of a host sum through memory they share, and each host's shards cross hosts encoded by `codec`; the
/// optimizer step may be sharded among a host's ranks (ZeRO-1). Hosts with different numbers of ranks cannot pair
/// their shards: buckets of `otherwise` bytes then.
public struct SharedMemoryExchange: ExchangeMethod {
  public let codec: (any GradientCodec)?
  public let otherwise: Int
  public func makeReducer<T: TrainingScalar>(for network: Network<T>, communicator: any Communicator, seed: UInt64, shardStep: Bool) throws
    -> any Reducer<T> {
    guard let local = try SharedMemoryReducer<T>.hostGroup(of: communicator) else {
      return try BucketExchange(bytes: otherwise, codec: codec).makeReducer(for: network, communicator: communicator, seed: seed, shardStep: shardStep)
    }
    return try SharedMemoryReducer<T>(network: network, communicator: communicator, local: local, codec: codec, shardStep: shardStep)
  }
  public func traffic<T: TrainingScalar>(for network: Network<T>, ranks: Int, hosts: Int) -> ExchangeTraffic {
    guard hosts > 1 else { return ExchangeTraffic([], overlapsBackward: false) }
    let P = network.parameterCount
    let shard = SharedMemoryReducer<T>.shards(count: P + 1, ranks: max(1, ranks / hosts))[0]
    return ExchangeTraffic([bucketReduction(shard, of: P, codec, T.self)], overlapsBackward: false)
  }
}

/// Rank-`rank` PowerSGD with error feedback, after `warmupSteps` uncompressed steps.
public struct PowerSGDExchange: ExchangeMethod {
  public let rank: Int
  public let warmupSteps: Int
  public func makeReducer<T: TrainingScalar>(for network: Network<T>, communicator: any Communicator, seed: UInt64, shardStep: Bool) throws
    -> any Reducer<T> { PowerSGDReducer<T>(network: network, communicator: communicator, rank: rank, warmupSteps: warmupSteps, seed: seed) }
  public func traffic<T: TrainingScalar>(for network: Network<T>, ranks: Int, hosts: Int) -> ExchangeTraffic {
    let plan = PowerSGDReducer<T>.plan(network, rank: rank), size = MemoryLayout<T>.stride
    let uncompressed = plan.uncompressed.reduce(0) { $0 + $1.count }
    return ExchangeTraffic([.bucketReduction(bytes: (uncompressed + plan.pCount) * size), .bucketReduction(bytes: plan.qCount * size)],
                           overlapsBackward: false)
  }
}

/// A reducer that can take a first-order optimizer's step apart among a host's ranks: the trainer asks it, and
/// steps through the `ShardedOptimizer` it returns, over parameters in the shared segment.
protocol ShardsOptimizerStep<T> {
  associatedtype T: TrainingScalar
  /// Whether the reducer was built to shard the step (its segment holds the parameters).
  var shardsStep: Bool { get }
  func shardedStep(wrapping base: any FirstOrderOptimizer<T>, parameters: [T]) throws -> (ShardedOptimizer<T>, UnsafeMutableBufferPointer<T>)
}

/// One collective operation of a step, as a cost model prices it (`ScalingModel.seconds`): its kind and the bytes on
/// the wire of one rank's whole buffer.
public enum Collective: Equatable, Sendable {
  /// MPI's all-reduce, priced as a ring: a reduce-scatter then an all-gather.
  case allReduce(bytes: Int)
  /// A `BucketReduction`: a reduce-scatter and an all-gather of its blocks, or one direct round when the bucket is
  /// small (`BucketReduction.usesDirect`).
  case bucketReduction(bytes: Int)
  /// Each rank ends with the sum of its 1/p of the buffer.
  case reduceScatter(bytes: Int)
  /// Each rank sends its `bytes` to every other rank (an all-gather of p such pieces).
  case allGather(bytes: Int)

  public var bytes: Int {
    switch self {
    case .allReduce(let n), .bucketReduction(let n), .reduceScatter(let n), .allGather(let n): n
    }
  }
}

/// The collectives of one step, as a cost model sees them.
public struct ExchangeTraffic: Equatable, Sendable {
  /// In the order they start.
  public var collectives: [Collective]
  /// True when the collectives start as the backward pass finishes each bucket (all but the last can be hidden
  /// behind the rest of the backward pass); false when they run one after another after it.
  public var overlapsBackward: Bool

  public init(_ collectives: [Collective], overlapsBackward: Bool) {
    self.collectives = collectives
    self.overlapsBackward = overlapsBackward
  }

  public var bytes: Int { collectives.reduce(0) { $0 + $1.bytes } }
}
