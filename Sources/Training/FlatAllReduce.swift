import Collectives
import Layers
import TensorCore

/// The default between ranks of one host when shared memory is off: after the backward pass, one blocking
/// `MPI_Allreduce` of the whole flat buffer, the loss in its last element.
public final class FlatAllReduce<T: TrainingScalar>: GradientReducer, ReducerReport {
  let communicator: any Communicator
  let buffer: LossCarryingBuffer<T>

  init(network: Network<T>, communicator: any Communicator) {
    self.communicator = communicator
    buffer = LossCarryingBuffer(parameters: network.parameterCount)
  }

  public var summary: String { "all-reduce" }
  public var bytesSent: Int { ringBytes(buffer.storage.count * MemoryLayout<T>.stride, ranks: communicator.size) }
  public var blockElements: Int { .max }
  public var gradient: UnsafeMutableBufferPointer<T> { buffer.gradient }

  public func begin(pieces: Int, piecesInBatch: Int) -> [UnsafeMutableBufferPointer<T>] {
    buffer.begin(pieces: pieces, reducer: "the all-reduce")
  }

  public func setLossSums(_ sums: [Double]) { buffer.lossSum = sums[0] }

  public func ready(_ range: Range<Int>) {}

  public func finish() throws -> Double {
    try communicator.allReduce(buffer.storage, .sum)
    return buffer.lossSum
  }
}
