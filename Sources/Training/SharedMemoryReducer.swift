import Collectives
import Layers
import Optimizers
import TensorCore

/// The default exchange between ranks of one host (`--shared-memory`, on by default): the ranks reduce through a
/// segment of shared memory (`MPI_Win_allocate_shared`) instead of messages, and share one parameter buffer.
///
/// Each of the host's k ranks backpropagates into its own slot of the segment. After a barrier, rank j adds the k
/// slots over its j-th of the buffer (in rank order) and, on several hosts, all-reduces that shard with the ranks of
/// the same local rank on the other hosts (a `BucketReduction`, with `--compress`'s codec applied there): the
/// hierarchical all-reduce of Horovod's --hierarchical-allreduce, with every local rank carrying one shard across
/// instead of one leader carrying all. A second barrier makes the sums visible. With a first-order optimizer, rank j
/// then steps its shard of the shared parameters (`ShardedOptimizer`, the ZeRO-1 step) and a third barrier publishes them; otherwise
/// (L-BFGS, whose line search needs every parameter) every rank copies the whole sum into its own buffer.
public final class SharedMemoryReducer<T: TrainingScalar>: GradientReducer, ReducerReport, ShardsOptimizerStep {
  let local: any Communicator
  let codec: (any GradientCodec)?
  let parameterCount: Int
  private let cross: (any Communicator)?
  private let memory: SharedMemory
  private let crossReduction: BucketReduction<T>?
  /// Each local rank's part of [0, P + 1), cut at multiples of 16 elements (no cache line is written by two ranks).
  let shards: [Range<Int>]
  /// With a sharded optimizer step, the reduced gradient stays in the shared slots (each rank reads its shard);
  /// otherwise every rank copies the whole sum here.
  private let whole: LossCarryingBuffer<T>?
  private var scratch: [T] = []

  /// The ranks of `communicator`'s host, when every host runs as many of them (their shards pair across hosts);
  /// nil otherwise, and then shared memory cannot serve this run. Collective.
  static func hostGroup(of communicator: any Communicator) throws -> (any Communicator)? {
    let local = try communicator.splitShared()
    var sizes = [Int64(local.size), -Int64(local.size)]
    try communicator.allReduce(&sizes, .max)
    return sizes[0] == -sizes[1] ? local : nil
  }

  /// Sets up the shared segment (collective over `communicator`): a slot per local rank and, with `shardStep` (the
  /// optimizer step split among the host's ranks), the shared parameters.
  init(network: Network<T>, communicator: any Communicator, local: any Communicator, codec: (any GradientCodec)?, shardStep: Bool) throws {
    self.local = local
    self.codec = codec
    let P = network.parameterCount, k = local.size
    parameterCount = P
    shards = Self.shards(count: P + 1, ranks: k)
    if communicator.hostCount > 1 {
      let cross = try communicator.split(color: local.rank, key: communicator.rank)
      self.cross = cross
      let mine = shards[local.rank]
      crossReduction = BucketReduction<T>(communicator: cross, count: mine.count, codec: codec,
                                          exactTail: mine.upperBound == P + 1 ? 1 : 0)
    } else {
      cross = nil
      crossReduction = nil
    }
    memory = try local.allocateShared(bytes: (k * (P + 1) + (shardStep ? P : 0)) * MemoryLayout<T>.stride)
    whole = shardStep ? nil : LossCarryingBuffer(parameters: P)
  }

  public var summary: String {
    let across = cross.map { " | shards across \($0.size) hosts\(codec.map { " as \($0)" } ?? "")" } ?? ""
    return "shared memory (\(local.size) ranks a host\(whole == nil ? ", sharded optimizer step" : ""))\(across)"
  }

  public var blockElements: Int { .max }
  public var bytesSent: Int { crossReduction?.bytesSent ?? 0 }

  var slotLength: Int { parameterCount + 1 }

  func slot(_ r: Int) -> UnsafeMutablePointer<T> {
    memory.base.assumingMemoryBound(to: T.self) + r * slotLength
  }

  /// Each of k ranks' part of n elements, cut at multiples of 16.
  static func shards(count n: Int, ranks k: Int) -> [Range<Int>] {
    let cuts = (0...k).map { j in j == k ? n : min(n, (j * n / k) / 16 * 16) }
    return (0..<k).map { cuts[$0]..<cuts[$0 + 1] }
  }

  public var shardsStep: Bool { whole == nil }

  /// The ZeRO-1 step over the host's shared parameters, which start as `parameters` (rank 0's copy): `base` steps
  /// this rank's shard of them. Collective over the host.
  func shardedStep(wrapping base: any FirstOrderOptimizer<T>, parameters: [T]) throws -> (ShardedOptimizer<T>, UnsafeMutableBufferPointer<T>) {
    precondition(whole == nil, "the optimizer step is sharded only when the segment holds the parameters")
    let P = parameterCount, me = local.rank
    let shared = UnsafeMutableBufferPointer(start: slot(local.size), count: P)
    if me == 0 { parameters.withUnsafeBufferPointer { shared.baseAddress!.copyScalars(from: $0.baseAddress!, count: P) } }
    try local.barrier()
    let local = local
    let optimizer = ShardedOptimizer(base: base, shard: shards[me].clamped(to: 0..<P),
                                     barrier: { try local.barrier() }, gather: { [unowned self] in try self.gather($0) })
    return (optimizer, shared)
  }

  /// A whole buffer from every local rank's shard of it.
  func gather(_ values: [T]) throws -> [T] {
    let P = parameterCount, me = local.rank
    guard values.count == P else { return values }  // a buffer of another shape (none today) is left as it is
    let r = shards[me].clamped(to: 0..<P)
    let mine = values.withUnsafeBytes { Array($0[(r.lowerBound * MemoryLayout<T>.stride)..<(r.upperBound * MemoryLayout<T>.stride)]) }
    let all = try local.allGather(mine)
    var out = values
    out.withUnsafeMutableBytes { o in
      for (j, bytes) in all.enumerated() {
        let rj = shards[j].clamped(to: 0..<P)
        bytes.withUnsafeBytes { (o.baseAddress! + rj.lowerBound * MemoryLayout<T>.stride).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
      }
    }
    return out
  }

  public var gradient: UnsafeMutableBufferPointer<T> {
    whole?.gradient ?? UnsafeMutableBufferPointer(start: slot(local.rank), count: parameterCount)
  }

  /// Sharded, each rank's slot holds the whole sum over its own shard only: the shards are gathered.
  public func wholeGradient() throws -> [T] {
    if let whole { return Array(whole.gradient) }
    return try gather(Array(UnsafeBufferPointer(gradient)))
  }

  public func gradientIsFinite() throws -> Bool {
    if let whole { return T.allFinite(whole.storage.baseAddress!, count: parameterCount) }
    // Sharded: each rank checks its own shard, and the host's ranks agree (which also keeps any rank from reading
    // another's slot once the next step has begun).
    let r = shards[local.rank].clamped(to: 0..<parameterCount)
    var bad = [Int64(T.allFinite(slot(local.rank) + r.lowerBound, count: r.count) ? 0 : 1)]
    try local.allReduce(&bad, .max)
    return bad[0] == 0
  }

  public func gradientSquaredNorm() throws -> Double {
    if let whole { return squaredNorm(whole.storage.baseAddress!, count: parameterCount) }
    // Sharded: each rank's shard, added over the host's ranks (every host holds the whole reduced gradient).
    let r = shards[local.rank].clamped(to: 0..<parameterCount)
    return try local.allReduce(squaredNorm(slot(local.rank) + r.lowerBound, count: r.count), .sum)
  }

  public func scaleGradient(by c: T) {
    if let whole { return T.scal(parameterCount, c, whole.storage.baseAddress!) }
    let r = shards[local.rank].clamped(to: 0..<parameterCount)
    T.scal(r.count, c, slot(local.rank) + r.lowerBound)
  }

  public func begin(pieces: Int, piecesInBatch: Int) -> [UnsafeMutableBufferPointer<T>] {
    precondition(pieces == 1, "shared memory takes one contiguous piece a rank")
    let mine = UnsafeMutableBufferPointer(start: slot(local.rank), count: slotLength)
    mine.zero()
    return [UnsafeMutableBufferPointer(rebasing: mine[0..<parameterCount])]
  }

  public func setLossSums(_ sums: [Double]) { slot(local.rank)[parameterCount] = T(sums[0]) }

  public func ready(_ range: Range<Int>) {}

  public func finish() throws -> Double {
    let k = local.size, me = local.rank
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
    if let whole {
      // Every rank takes the whole sum, then waits until all have read it before any slot is written again.
      for j in 0..<k { (whole.storage.baseAddress! + shards[j].lowerBound).copyScalars(from: slot(j) + shards[j].lowerBound, count: shards[j].count) }
      try local.barrier()
    }
    return loss
  }
}
