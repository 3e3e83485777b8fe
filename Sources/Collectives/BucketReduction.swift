/// A sum over the ranks of one bucket of a flat buffer, in two non-blocking phases that use every link in both
/// directions at once:
///
/// 1. reduce-scatter: the bucket is cut into one block per rank; every rank sends block j to rank j (all-to-all),
///    and rank j adds the p copies of its block it receives, in rank order, in the element type (float32 when
///    training);
/// 2. all-gather: every rank sends its summed block to every other rank.
///
/// Each rank sends 2 (p-1)/p of the bucket, as a ring all-reduce does, and for two ranks it is one exchange per
/// phase: half the time of MPI's binomial non-blocking all-reduce, which sends the whole buffer one way and then back.
/// On the wire the values are either the elements themselves or a `GradientCodec`'s blocks (bf16, fp16, top-k), each
/// behind an 8-byte header: the received blocks are decoded, summed in the element type, and the summed block is
/// encoded again for the all-gather. Every rank, the owner of a block included, keeps the decoded all-gathered values,
/// so all ranks end with the same bits. A codec that feeds back its error (top-k) has this reduction keep, across
/// steps, what each encoding lost (this rank's copy of the bucket, and the sum of the block it owns), and add it to
/// the same values before the next encoding.
///
/// Small buckets, whose copies for all other ranks fit in `directLimit` bytes, take one phase instead: every rank
/// sends its whole bucket to every rank, and every rank adds all p copies in rank order (one message latency instead
/// of two, at p - 1 times the bytes: what a latency-bound reduction wants).
///
/// `exactTail` trailing elements (the batch's loss) travel exactly even when the rest is encoded, in the headers.
///
/// Call `start` with the bucket's base address, then `progress` (never blocks) until it returns true, or `wait`.
/// The bucket's memory belongs to the reduction until then. Staging memory is allocated once and reused.
///
/// Each reduction runs on a communicator of its own (split from the given one at its first start): MPI matches
/// non-blocking collectives by the order in which they are started on a communicator, and a bucket's second phase
/// starts when its first completes, which happens at different moments on different ranks.
public final class BucketReduction<E: WireScalar> {
  public let count: Int
  /// How the values travel: nil for the elements themselves.
  public let codec: (any GradientCodec)?
  public let exactTail: Int
  let parent: any Communicator
  private var own: (any Communicator)?
  /// Block j (owned by rank j) of the part that travels encoded: elements blocks[j] of the bucket.
  let blocks: [Range<Int>]
  let slotBytes: [Int]
  let slotOffsets: [Int]
  /// One phase: every rank sends the whole bucket to every rank (see `usesDirect`).
  public let direct: Bool
  let sendStaging: UnsafeMutableRawPointer?
  let receiveStaging: UnsafeMutableRawPointer
  let gatherStaging: UnsafeMutableRawPointer?
  /// Float32 copies of a block, for elements that are not Float32 (a codec works on float32 values).
  let floatStaging: UnsafeMutableBufferPointer<Float>
  /// Error feedback (`GradientCodec.feedsBackError`): what the encoding of this rank's bucket lost, and what the
  /// encoding of the sum of its own block lost.
  let sentError: UnsafeMutableBufferPointer<Float>
  let ownedError: UnsafeMutableBufferPointer<Float>

  enum Phase { case idle, scattering, gathering, done }
  private var phase = Phase.idle
  private var base: UnsafeMutablePointer<E>?
  private var request: (any CollectiveRequest)?
  /// Bytes this rank handed to other ranks in the last reduction.
  public private(set) var bytesSent = 0
  /// The bucket's bytes on the wire: every block with its header, one copy (what a ring all-reduce of it moves).
  public var wireBytes: Int { direct ? slotBytes[0] : slotBytes.reduce(0, +) }

  /// An encoded block's header: the exact tail (a Double).
  static var headerBytes: Int { 8 }

  /// Buckets whose copies for the other ranks fit in this many bytes go in one phase: TCP's eager limit in OpenMPI
  /// (below it a message needs no rendezvous).
  public static var directLimit: Int { 64 << 10 }

  /// A bucket of `count` elements as one copy of it travels (encoded by `codec`, the last `exactTail` in the header):
  /// what a cost model counts for one reduction, whichever phases it takes.
  public static func bufferWireBytes(count: Int, codec: (any GradientCodec)?, exactTail: Int = 0, elementBytes: Int) -> Int {
    codec.map { headerBytes + $0.blockBytes(count: count - exactTail) } ?? count * elementBytes
  }

  /// Whether a bucket of `wireBytes` on `ranks` ranks takes the one-phase direct exchange.
  public static func usesDirect(wireBytes: Int, ranks: Int) -> Bool { wireBytes * (ranks - 1) <= directLimit }

  public init(communicator: any Communicator, count: Int, codec: (any GradientCodec)?, exactTail: Int = 0) {
    precondition(count >= exactTail && exactTail >= 0 && exactTail <= 1, "a bucket carries at most one exact tail value")
    self.parent = communicator
    self.count = count
    self.codec = codec
    self.exactTail = codec == nil ? 0 : exactTail
    let p = communicator.size, n = count - self.exactTail
    let size = MemoryLayout<E>.stride
    let direct = BucketReduction.usesDirect(wireBytes: BucketReduction.bufferWireBytes(count: n, codec: codec, elementBytes: size), ranks: p)
    self.direct = direct
    // Direct: every rank's "block" is the whole bucket.
    blocks = (0..<p).map { j in direct ? 0..<n : (j * n / p)..<((j + 1) * n / p) }
    if let codec {
      // A header, then the codec's block (a multiple of 8 bytes, so the next slot's header is aligned).
      slotBytes = blocks.map { BucketReduction.headerBytes + codec.blockBytes(count: $0.count) }
      sendStaging = .allocate(byteCount: max(slotBytes.reduce(0, +), 1), alignment: 16)
      gatherStaging = direct ? nil : .allocate(byteCount: max(slotBytes.reduce(0, +), 1), alignment: 16)
    } else if direct {
      slotBytes = blocks.map { $0.count * size }
      sendStaging = .allocate(byteCount: max(slotBytes.reduce(0, +), 1), alignment: 16)
      gatherStaging = nil
    } else {
      slotBytes = blocks.map { $0.count * size }
      sendStaging = nil
      gatherStaging = nil
    }
    slotOffsets = blockOffsets(slotBytes)
    receiveStaging = .allocate(byteCount: max(p * slotBytes[communicator.rank], 1), alignment: 16)
    let coded = codec != nil
    floatStaging = .allocate(capacity: coded && E.self != Float.self ? n : 0)
    sentError = .allocate(capacity: codec?.feedsBackError == true ? n : 0)
    sentError.initialize(repeating: 0)
    ownedError = .allocate(capacity: codec?.feedsBackError == true ? blocks[communicator.rank].count : 0)
    ownedError.initialize(repeating: 0)
  }

  deinit {
    // A reduction still in flight when its owner goes away means the job is ending on an error: MPI may still write
    // into the staging, so it is left allocated.
    guard phase == .idle || phase == .done else { return }
    sendStaging?.deallocate()
    gatherStaging?.deallocate()
    receiveStaging.deallocate()
    floatStaging.deallocate()
    sentError.deallocate()
    ownedError.deallocate()
  }

  var rank: Int { parent.rank }
  var size: Int { parent.size }

  /// This reduction's own communicator (a collective on the parent the first time: every rank starts its
  /// reductions in the same order).
  var communicator: any Communicator {
    get throws {
      if own == nil { own = try parent.split(color: 0, key: parent.rank) }
      return own!
    }
  }

  /// Starts summing the `count` elements at `base` over the ranks.
  public func start(_ base: UnsafeMutablePointer<E>) throws {
    precondition(phase == .idle || phase == .done, "a bucket reduction was started twice")
    let communicator = try self.communicator
    self.base = base
    let receiveCounts = [Int](repeating: slotBytes[rank], count: size)
    if let codec {
      let tail = exactTail > 0 ? E.double(base[count - 1]) : 0
      // Direct: the whole bucket, encoded once, to every rank.
      for j in 0..<(direct ? 1 : size) {
        encode(base + blocks[j].lowerBound, count: blocks[j].count, tail: tail, codec, into: sendStaging! + slotOffsets[j],
               error: sentError.isEmpty ? nil : sentError.baseAddress! + blocks[j].lowerBound)
      }
      if direct { for j in 1..<size { (sendStaging! + slotOffsets[j]).copyMemory(from: sendStaging!, byteCount: slotBytes[j]) } }
      request = try communicator.startAllToAll(send: sendStaging!, sendCounts: slotBytes, receive: receiveStaging,
                                               receiveCounts: receiveCounts)
    } else if direct {
      // The whole bucket to every rank (the send staging holds p copies: all-to-all blocks do not overlap).
      for j in 0..<size { (sendStaging! + slotOffsets[j]).copyMemory(from: base, byteCount: slotBytes[j]) }
      request = try communicator.startAllToAll(send: sendStaging!, sendCounts: slotBytes, receive: receiveStaging,
                                               receiveCounts: receiveCounts)
    } else {
      request = try communicator.startAllToAll(send: UnsafeRawPointer(base), sendCounts: slotBytes,
                                               receive: receiveStaging, receiveCounts: receiveCounts)
    }
    // Phase 1 sends every block but this rank's own; phase 2 sends this rank's block to every other rank.
    bytesSent = (slotBytes.reduce(0, +) - slotBytes[rank]) + (direct ? 0 : (size - 1) * slotBytes[rank])
    phase = .scattering
  }

  /// Moves the reduction on without blocking; true once it is complete.
  public func progress() throws -> Bool {
    if phase == .scattering, try request!.test() { try scattered() }
    if phase == .gathering, try request!.test() { gathered() }
    return phase == .done || phase == .idle
  }

  /// Blocks until the reduction is complete.
  public func wait() throws {
    if phase == .scattering {
      try request!.wait()
      try scattered()
    }
    if phase == .gathering {
      try request!.wait()
      gathered()
    }
  }

  /// Phase 1 is complete: add the p copies of this rank's block, then start the all-gather of the sums.
  private func scattered() throws {
    let communicator = try self.communicator
    let base = base!, me = blocks[rank], n = me.count
    let mine = base + me.lowerBound
    if let codec {
      var tail = 0.0
      UnsafeMutableRawPointer(mine).initializeMemory(as: UInt8.self, repeating: 0, count: n * MemoryLayout<E>.stride)
      for k in 0..<size {
        let slot = receiveStaging + k * slotBytes[rank]
        tail += slot.load(as: Double.self)
        accumulate(slot + Self.headerBytes, count: n, codec, into: mine)
      }
      if exactTail > 0 { base[count - 1] = E.element(tail) }
      if direct { return finished() }
      encode(mine, count: n, tail: tail, codec, into: gatherStaging! + slotOffsets[rank], error: ownedError.isEmpty ? nil : ownedError.baseAddress)
      request = try communicator.startAllGather(gatherStaging!, counts: slotBytes)
    } else {
      let received = receiveStaging.assumingMemoryBound(to: E.self)
      UnsafeMutableRawPointer(mine).copyMemory(from: received, byteCount: n * MemoryLayout<E>.stride)
      for k in 1..<max(size, 1) { E.add(received + k * n, into: mine, count: n) }
      if direct { return finished() }
      request = try communicator.startAllGather(UnsafeMutableRawPointer(base), counts: slotBytes)
    }
    phase = .gathering
  }

  /// Phase 2 is complete: decode every block (this rank's own too, so that every rank holds the same values).
  private func gathered() {
    if let codec {
      for j in 0..<size {
        let block = gatherStaging! + slotOffsets[j] + Self.headerBytes
        decode(block, count: blocks[j].count, codec, into: base! + blocks[j].lowerBound)
      }
    }
    finished()
  }

  private func finished() {
    request = nil
    phase = .done
  }

  /// Writes the header and `codec`'s block of x[0..<n] into `slot`. With `error` (feedback), the values encoded are
  /// x + error, and error becomes what the encoding lost.
  private func encode(_ x: UnsafeMutablePointer<E>, count n: Int, tail: Double, _ codec: any GradientCodec,
                      into slot: UnsafeMutableRawPointer, error: UnsafeMutablePointer<Float>?) {
    slot.storeBytes(of: tail, as: Double.self)
    let block = slot + Self.headerBytes
    let v = floats(x, count: n)
    guard let error else { return codec.encode(v, count: n, into: block) }
    for i in 0..<n { v[i] += error[i] }
    codec.encode(v, count: n, into: block)
    codec.decode(block, count: n, into: error)
    for i in 0..<n { error[i] = v[i] - error[i] }
  }

  /// y += the decoded block.
  private func accumulate(_ block: UnsafeRawPointer, count n: Int, _ codec: any GradientCodec, into y: UnsafeMutablePointer<E>) {
    if E.self == Float.self { return codec.accumulate(block, count: n, into: UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self)) }
    codec.decode(block, count: n, into: floatStaging.baseAddress!)
    E.add(floats: floatStaging.baseAddress!, count: n, into: y)
  }

  /// y = the decoded block.
  private func decode(_ block: UnsafeRawPointer, count n: Int, _ codec: any GradientCodec, into y: UnsafeMutablePointer<E>) {
    if E.self == Float.self { return codec.decode(block, count: n, into: UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self)) }
    codec.decode(block, count: n, into: floatStaging.baseAddress!)
    E.assign(floats: floatStaging.baseAddress!, count: n, into: y)
  }

  /// x as float32 values: x itself for Float elements, else a copy in the float staging (changes to it are the
  /// encoder's own).
  private func floats(_ x: UnsafeMutablePointer<E>, count n: Int) -> UnsafeMutablePointer<Float> {
    if E.self == Float.self { return UnsafeMutableRawPointer(x).assumingMemoryBound(to: Float.self) }
    E.floats(x, count: n, into: floatStaging.baseAddress!)
    return floatStaging.baseAddress!
  }
}
