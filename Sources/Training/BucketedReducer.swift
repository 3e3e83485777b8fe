import Collectives
import Datasets
import Layers
import TensorCore
import _Support

/// Buckets reduced while the backward pass runs (`--bucket-size`), the values exact or as 16-bit codes
/// (`--compress bf16|fp16|topk:F`).
///
/// The buckets are cut from `Network.gradientBlocks` in the order the backward pass finishes them (the loss slot and
/// the last layer first; the largest weight gradients split into blocks of whole rows), the same on every rank.
/// A bucket starts (`BucketReduction`: a reduce-scatter then an all-gather, both non-blocking) as soon as the backward
/// pass has finished all of it, and every later `ready` tests the buckets in flight, which is what moves MPI's
/// non-blocking collectives on while this rank computes (measured against a progress thread: see the README).
/// Exact values give the plain all-reduce's sum up to float summation order; encoded ones do not, but are bitwise
/// repeatable for the same seed and world size.
public final class BucketedReducer<T: TrainingScalar>: GradientReducer, ReducerReport, RecordsBuckets {
  let communicator: any Communicator
  /// The buckets, in the order they are started: ranges of the flat buffer, descending.
  public let buckets: [Range<Int>]
  let reductions: [BucketReduction<T>]
  public let blockElements: Int
  let codec: (any GradientCodec)?
  let buffer: LossCarryingBuffer<T>
  /// [finalFrom, P + 1) of the current buffer is final.
  private var finalFrom = 0
  private var started = 0
  private var failure: Error?
  /// With `--timeline`: each bucket's span, from its start to the moment it was seen complete.
  public var timeline: Timeline?
  private var startedAt: [Double] = []
  private var recorded = 0

  init(network: Network<T>, communicator: any Communicator, bucketBytes: Int, codec: (any GradientCodec)?) {
    self.communicator = communicator
    self.codec = codec
    let P = network.parameterCount
    buffer = LossCarryingBuffer(parameters: P)
    blockElements = max(1, bucketBytes / MemoryLayout<T>.stride)
    buckets = Self.plan(network: network, bucketBytes: bucketBytes)
    reductions = buckets.map {
      BucketReduction<T>(communicator: communicator, count: $0.count, codec: codec, exactTail: $0.upperBound == P + 1 ? 1 : 0)
    }
  }

  /// The buckets of `network`'s gradient and loss slot, in the order they start.
  static func plan(network: Network<T>, bucketBytes: Int) -> [Range<Int>] {
    let P = network.parameterCount, blockElements = max(1, bucketBytes / MemoryLayout<T>.stride)
    return plan(blocks: [P..<P + 1] + network.gradientBlocks(blockElements: blockElements), bucketElements: blockElements)
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
    let wire = codec.map { ", \($0) on the wire" } ?? ""
    return "\(buckets.count) overlapped bucket\(buckets.count == 1 ? "" : "s") of up to \(size >> 10) KiB\(wire)"
  }

  public var bytesSent: Int { reductions.reduce(0) { $0 + $1.bytesSent } }
  public var gradient: UnsafeMutableBufferPointer<T> { buffer.gradient }

  public func begin(pieces: Int, piecesInBatch: Int) -> [UnsafeMutableBufferPointer<T>] {
    let buffers = buffer.begin(pieces: pieces, reducer: "buckets")
    finalFrom = buffer.storage.count
    started = 0
    failure = nil
    return buffers
  }

  public func setLossSums(_ sums: [Double]) {
    buffer.lossSum = sums[0]
    let P = buffer.parameterCount
    ready(P..<P + 1)  // the loss is final: the first bucket may start once the last layer's gradient is
  }

  public func ready(_ range: Range<Int>) {
    guard failure == nil else { return }
    precondition(range.upperBound == finalFrom, "gradient blocks arrive in descending order")
    finalFrom = range.lowerBound
    do {
      while started < buckets.count && buckets[started].lowerBound >= finalFrom {
        try startBucket()
      }
      for i in 0..<started where try reductions[i].progress() { recordBucket(i) }
    } catch { failure = error }
  }

  private func startBucket() throws {
    if timeline != nil {
      if started == 0 { (startedAt, recorded) = (Array(repeating: 0, count: buckets.count), 0) }
      startedAt[started] = WallClock.now()
    }
    try reductions[started].start(buffer.storage.baseAddress! + buckets[started].lowerBound)
    started += 1
  }

  /// Bucket `i` is complete: its span, once (buckets complete in the order they started, as far as it is seen).
  private func recordBucket(_ i: Int) {
    guard let timeline, i == recorded, startedAt.indices.contains(i) else { return }
    let bytes = buckets[i].count * MemoryLayout<T>.stride
    timeline.record("bucket \(i + 1) of \(buckets.count) (\(bytes >> 10) KiB)", category: "exchange", from: startedAt[i], track: 1)
    recorded += 1
  }

  public func finish() throws -> Double {
    if let failure { throw failure }
    // Buckets the backward pass did not complete (a rank without samples in a short batch reports nothing): start
    // them now, in the same order as every other rank.
    while started < buckets.count { try startBucket() }
    for (i, r) in reductions.enumerated() {
      try r.wait()
      recordBucket(i)
    }
    return buffer.lossSum
  }
}
