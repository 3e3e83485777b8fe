import Collectives
import Datasets
import Foundation
import Layers
import TensorCore

/// `--deterministic`: the step is bitwise the same for any number of ranks.
///
/// The trainer cuts every global batch into chunks of a fixed size, whatever the number of ranks, and deals whole
/// chunks out (`BatchSharding.chunks`); each chunk's gradient is computed by the same BLAS calls on whichever rank,
/// into a buffer of its own; `finish` adds them all in 64-bit fixed point, where addition is exact and associative,
/// with a scale set from the largest magnitude of any chunk (one small all-reduce first).
public final class DeterministicReducer<T: TrainingScalar>: GradientReducer, ReducerReport {
  let communicator: any Communicator
  let chunk: Int
  let parameterCount: Int
  /// One gradient buffer per chunk this rank computes, kept from step to step: P gradients, then the chunk's loss.
  var chunkGradients: [[T]] = []
  let result: LossCarryingBuffer<T>
  /// Chunks of the current batch: all of them (for the scale's headroom), and this rank's.
  private var totalChunks = 0
  private var mine = 0
  private var sums: [Int64] = []

  init(network: Network<T>, communicator: any Communicator, chunk: Int) {
    self.communicator = communicator
    self.chunk = chunk
    self.parameterCount = network.parameterCount
    result = LossCarryingBuffer(parameters: network.parameterCount)
  }

  public var summary: String { "deterministic (64-bit fixed-point sums of chunks of \(chunk))" }
  public var blockElements: Int { .max }
  public var bytesSent: Int { ringBytes((parameterCount + 1) * MemoryLayout<Int64>.stride, ranks: communicator.size) }
  public var gradient: UnsafeMutableBufferPointer<T> { result.gradient }

  public func begin(pieces: Int, piecesInBatch: Int) -> [UnsafeMutableBufferPointer<T>] {
    let P = parameterCount
    totalChunks = piecesInBatch
    mine = pieces
    while chunkGradients.count < mine { chunkGradients.append(.zeros(P + 1)) }
    return (0..<pieces).map { k in
      chunkGradients[k].withUnsafeMutableBufferPointer { b in
        b.zero()
        return UnsafeMutableBufferPointer(rebasing: b[0..<P])  // the array is not resized or copied while the step uses it
      }
    }
  }

  public func setLossSums(_ sums: [Double]) {
    for (k, sum) in sums.enumerated() { chunkGradients[k][parameterCount] = T(sum) }
  }

  public func ready(_ range: Range<Int>) {}

  public func finish() throws -> Double {
    let P = parameterCount, g = result.storage
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
