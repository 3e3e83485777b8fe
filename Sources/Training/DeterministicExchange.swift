import Collectives
import Datasets
import Foundation
import Layers
import TensorCore

/// `--deterministic`: the step is bitwise the same for any number of ranks.
///
/// Every global batch is cut into chunks of `chunk` samples, whatever the number of ranks; the ranks share out
/// whole chunks (its `pieces`); each chunk's gradient is computed by the same BLAS calls on whichever rank, into a
/// buffer of its own; `finish` adds them all in 64-bit fixed point, where addition is exact and associative, with a
/// scale set from the largest magnitude of any chunk (one small all-reduce first).
public final class DeterministicExchange<T: TrainingScalar>: GradientExchange {
  let communicator: any Communicator
  let chunk: Int
  let parameterCount: Int
  /// One gradient buffer per chunk this rank computes, kept from step to step.
  var chunkGradients: [[T]] = []
  /// Chunks of the current batch: all of them (for the scale's headroom), and this rank's.
  private var totalChunks = 0
  private var mine = 0
  private var sums: [Int64] = []

  init(network: Network<T>, communicator: any Communicator, chunk: Int) {
    self.communicator = communicator
    self.chunk = chunk
    self.parameterCount = network.parameterCount
  }

  public var summary: String { "deterministic (64-bit fixed-point sums of chunks of \(chunk))" }
  public var blockElements: Int { .max }
  public var traffic: ExchangeTraffic {
    ExchangeTraffic(reductions: [2 * 8, (parameterCount + 1) * MemoryLayout<Int64>.stride], overlapsBackward: false, smallOnesDirect: false)
  }
  public var bytesSent: Int { ringBytes((parameterCount + 1) * MemoryLayout<Int64>.stride, ranks: communicator.size) }

  public func shards(ofBatch count: Int) -> [Range<Int>] {
    let chunks = Sharding.batches(count: count, batchSize: chunk)
    let mineRange = Sharding.slice(0..<chunks.count, rank: communicator.rank, size: communicator.size)
    totalChunks = chunks.count
    mine = mineRange.count
    while chunkGradients.count < mine { chunkGradients.append(.zeros(parameterCount + 1)) }
    return mineRange.map { chunks[$0] }
  }

  public func buffer(piece k: Int, destination: UnsafeMutableBufferPointer<T>) -> UnsafeMutableBufferPointer<T> {
    chunkGradients[k].withUnsafeMutableBufferPointer { b in
      b.zero()
      return b  // the array is not resized or copied while the step uses it
    }
  }

  public func ready(_ range: Range<Int>) {}

  public func finish(into g: UnsafeMutableBufferPointer<T>) throws -> Double {
    let P = parameterCount
    var largest = [0.0, 0.0]  // largest |gradient entry| and |chunk loss sum|
    for slot in 0..<mine {
      chunkGradients[slot].withUnsafeBufferPointer {
        largest[0] = max(largest[0], Double(T.maxMagnitude($0.baseAddress!, count: P)))
        largest[1] = max(largest[1], abs(Double($0[P])))
      }
    }
    try communicator.allReduce(&largest, .max)
    guard largest[0].isFinite && largest[1].isFinite else {
      // A NaN or infinity has no fixed-point form: the batch's loss and gradient are NaN (every rank saw the same
      // all-reduced maximum), and --on-nan decides.
      for i in g.indices { g[i] = .nan }
      return .nan
    }
    let gradientScale = FixedPoint.scale(largest: largest[0], terms: totalChunks)
    let lossScale = FixedPoint.scale(largest: largest[1], terms: totalChunks)
    if sums.count != P + 1 { sums = .init(repeating: 0, count: P + 1) }
    sums.withUnsafeMutableBufferPointer { s in
      s.baseAddress!.update(repeating: 0, count: P + 1)
      for slot in 0..<mine {
        chunkGradients[slot].withUnsafeBufferPointer {
          T.addFixedPoint($0.baseAddress!, scale: gradientScale, into: s.baseAddress!, count: P)
          s[P] &+= Int64(Double($0[P]) * lossScale)
        }
      }
    }
    try communicator.allReduce(&sums, .sum)
    sums.withUnsafeBufferPointer {
      T.fromFixedPoint($0.baseAddress!, inverseScale: 1 / gradientScale, into: g.baseAddress!, count: P)
    }
    let lossSum = Double(sums[P]) / lossScale
    g[P] = T(lossSum)
    return lossSum
  }
}
