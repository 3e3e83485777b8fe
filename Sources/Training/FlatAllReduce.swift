import Collectives
import Datasets
import Layers
import TensorCore

/// Today's exchange, and the default between ranks of one host: after the backward pass, one blocking
/// `MPI_Allreduce` of the whole flat buffer with the loss in its last slot.
public final class FlatAllReduce<T: TrainingScalar>: GradientExchange {
  let communicator: any Communicator
  let count: Int

  init(network: Network<T>, communicator: any Communicator) {
    self.communicator = communicator
    self.count = network.parameterCount + 1
  }

  public var summary: String { "all-reduce" }
  public var blockElements: Int { .max }
  public var traffic: ExchangeTraffic {
    ExchangeTraffic(reductions: [count * MemoryLayout<T>.stride], overlapsBackward: false, smallOnesDirect: false)
  }
  public var bytesSent: Int { ringBytes(count * MemoryLayout<T>.stride, ranks: communicator.size) }

  public func shards(ofBatch count: Int) -> [Range<Int>] { contiguousPiece(ofBatch: count, communicator) }

  public func buffer(piece k: Int, destination: UnsafeMutableBufferPointer<T>) -> UnsafeMutableBufferPointer<T> {
    destination.zero()
    return destination
  }

  public func ready(_ range: Range<Int>) {}

  public func finish(into destination: UnsafeMutableBufferPointer<T>) throws -> Double {
    try communicator.allReduce(destination, .sum)
    return Double(destination[destination.count - 1])
  }
}
