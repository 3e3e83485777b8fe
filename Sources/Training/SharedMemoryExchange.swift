import Collectives
import Layers
import TensorCore

/// The default exchange between ranks of one host (`--shared-memory`, on by default): the ranks reduce through a
/// segment of shared memory (`MPI_Win_allocate_shared`) instead of messages, and share one parameter buffer.
///
/// Each of the host's k ranks backpropagates into its own slot of the segment. After a barrier, rank j adds the k
/// slots over its j-th of the buffer (in rank order) and, on several hosts, all-reduces that shard with the ranks of
/// the same local rank on the other hosts (a `BucketReduction`, with `--compress bf16|fp16` applied there): the
/// hierarchical all-reduce of Horovod's --hierarchical-allreduce, with every local rank carrying one shard across
/// instead of one leader carrying all. A second barrier makes the sums visible. With a first-order optimizer, rank j
/// then steps its shard of the shared parameters (`ShardedPlacement`) and a third barrier publishes them; otherwise
/// (L-BFGS, whose line search needs every parameter) every rank copies the whole sum into its own buffer.
public final class SharedMemoryExchange<T: TrainingScalar>: GradientExchange {
  let communicator: any Communicator
  let network: Network<T>
  let wire: WireFormat
  let parameterCount: Int
  private var local: (any Communicator)?
  private var cross: (any Communicator)?
  private var memory: SharedMemory?
  private var crossReduction: BucketReduction<T>?
  /// Each local rank's part of [0, P + 1), cut at multiples of 16 elements (no cache line is written by two ranks).
  private(set) var shards: [Range<Int>] = []
  private var sharded = false
  private var scratch: [T] = []
  private var fallback: (any GradientExchange<T>)?

  init(network: Network<T>, communicator: any Communicator, wire: WireFormat) {
    self.communicator = communicator
    self.network = network
    self.wire = wire
    self.parameterCount = network.parameterCount
  }

  public var summary: String {
    if let fallback { return fallback.summary }
    let k = local?.size ?? 0
    let across = cross.map { " | shards across \($0.size) hosts\(wire == .exact ? "" : " as \(wire == .bfloat16 ? "bf16" : "fp16")")" } ?? ""
    return "shared memory (\(k) ranks a host\(sharded ? ", sharded optimizer step" : ""))\(across)"
  }

  public var blockElements: Int { .max }
  public var bytesSent: Int { fallback?.bytesSent ?? crossReduction?.bytesSent ?? 0 }
  public var traffic: ExchangeTraffic {
    fallback?.traffic ?? ExchangeTraffic(reductions: crossReduction.map { [$0.wireBytes] } ?? [], overlapsBackward: false)
  }

  var slotLength: Int { parameterCount + 1 }
  var rank: Int { local!.rank }

  func slot(_ r: Int) -> UnsafeMutablePointer<T> {
    memory!.base.assumingMemoryBound(to: T.self) + r * slotLength
  }

  /// Each of k ranks' part of n elements, cut at multiples of 16.
  static func shards(count n: Int, ranks k: Int) -> [Range<Int>] {
    let cuts = (0...k).map { j in j == k ? n : min(n, (j * n / k) / 16 * 16) }
    return (0..<k).map { cuts[$0]..<cuts[$0 + 1] }
  }

  public func prepare(parameters: [T], shardStep: Bool) throws -> ShardedPlacement<T>? {
    let local = try communicator.splitShared()
    // Hosts with different numbers of ranks cannot pair their shards: the flat exchange then.
    var sizes = [Int64(local.size), -Int64(local.size)]
    try communicator.allReduce(&sizes, .max)
    guard sizes[0] == -sizes[1] else {
      fallback = BucketedExchange<T>(network: network, communicator: communicator,
                                     bucketBytes: ExchangeSpec.defaultBucketBytes(wire == .exact ? .none : .bfloat16), wire: wire)
      return nil
    }
    self.local = local
    let k = local.size, P = parameterCount
    shards = Self.shards(count: slotLength, ranks: k)
    if communicator.hostCount > 1 {
      let cross = try communicator.split(color: local.rank, key: communicator.rank)
      self.cross = cross
      let mine = shards[local.rank]
      crossReduction = BucketReduction<T>(communicator: cross, count: mine.count, wire: wire,
                                          exactTail: mine.upperBound == slotLength ? 1 : 0)
    }
    sharded = shardStep
    let stride = MemoryLayout<T>.stride
    let memory = try local.allocateShared(bytes: (k * slotLength + (shardStep ? P : 0)) * stride)
    self.memory = memory
    guard shardStep else { return nil }
    let shared = UnsafeMutableBufferPointer(start: slot(k), count: P)
    if local.rank == 0 { parameters.withUnsafeBufferPointer { shared.baseAddress!.copyScalars(from: $0.baseAddress!, count: P) } }
    try local.barrier()
    let me = local.rank
    return ShardedPlacement(
      parameters: shared, gradients: UnsafeBufferPointer(start: slot(me), count: P),
      shard: shards[me].clamped(to: 0..<P), barrier: { try local.barrier() },
      gradientsFinite: { [unowned self] in
        self.shards.indices.allSatisfy { j in
          let r = self.shards[j].clamped(to: 0..<P)
          return T.allFinite(self.slot(j) + r.lowerBound, count: r.count)
        }
      },
      gather: { [unowned self] values in try self.gather(values) })
  }

  /// A whole buffer from every local rank's shard of it.
  func gather(_ values: [T]) throws -> [T] {
    let P = parameterCount, me = local!.rank
    guard values.count == P else { return values }  // a buffer of another shape (none today) is left as it is
    let r = shards[me].clamped(to: 0..<P)
    let mine = values.withUnsafeBytes { Array($0[(r.lowerBound * MemoryLayout<T>.stride)..<(r.upperBound * MemoryLayout<T>.stride)]) }
    let all = try local!.allGather(mine)
    var out = values
    out.withUnsafeMutableBytes { o in
      for (j, bytes) in all.enumerated() {
        let rj = shards[j].clamped(to: 0..<P)
        bytes.withUnsafeBytes { (o.baseAddress! + rj.lowerBound * MemoryLayout<T>.stride).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
      }
    }
    return out
  }

  public func shards(ofBatch count: Int) -> [Range<Int>] {
    fallback?.shards(ofBatch: count) ?? contiguousPiece(ofBatch: count, communicator)
  }

  public func buffer(piece k: Int, destination: UnsafeMutableBufferPointer<T>) -> UnsafeMutableBufferPointer<T> {
    if let fallback { return fallback.buffer(piece: k, destination: destination) }
    precondition(memory != nil, "the shared-memory exchange is used before its collective setup (Trainer.synchronizeParameters)")
    let mine = UnsafeMutableBufferPointer(start: slot(rank), count: slotLength)
    mine.zero()
    return mine
  }

  public func ready(_ range: Range<Int>) { fallback?.ready(range) }

  public func finish(into destination: UnsafeMutableBufferPointer<T>) throws -> Double {
    if let fallback { return try fallback.finish(into: destination) }
    let local = local!, k = local.size, me = local.rank
    try local.barrier()  // every slot is written
    // This rank's shard: the sum of the k slots in rank order.
    let r = shards[me], n = r.count
    if scratch.count < n { scratch = [T](repeating: 0, count: n) }
    scratch.withUnsafeMutableBufferPointer { s in
      s.baseAddress!.copyScalars(from: slot(0) + r.lowerBound, count: n)
      for j in 1..<k { T.add(slot(j) + r.lowerBound, into: s.baseAddress!, count: n) }
      (slot(me) + r.lowerBound).copyScalars(from: s.baseAddress!, count: n)
    }
    if let crossReduction {
      try crossReduction.start(slot(me) + r.lowerBound)
      try crossReduction.wait()
    }
    try local.barrier()  // every shard is summed
    let loss = Double(slot(k - 1)[parameterCount])
    if !sharded {
      // Every rank takes the whole sum, then waits until all have read it before any slot is written again.
      for j in 0..<k { (destination.baseAddress! + shards[j].lowerBound).copyScalars(from: slot(j) + shards[j].lowerBound, count: shards[j].count) }
      try local.barrier()
    }
    return loss
  }
}
