import Collectives
import Datasets
import Layers
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
