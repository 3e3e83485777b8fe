import Optimizers
import TensorCore

/// The ZeRO-1 step over parameters a host's ranks share (`SharedMemoryReducer`): a first-order optimizer that
/// updates only this rank's `shard`, then waits until every rank of the host has updated its own (the barrier that
/// publishes the new values; there is no all-gather, the others read them from the shared buffer). It wraps any
/// first-order optimizer, whose state is then valid over the shard only: `wholeState` gathers it for a checkpoint.
public struct ShardedOptimizer<T: OptimizerKernels>: FirstOrderOptimizer {
  var base: any FirstOrderOptimizer<T>
  /// The parameters this rank updates.
  public let shard: Range<Int>
  let barrier: () throws -> Void
  /// A buffer of the parameters' size, valid over this rank's shard, made whole from every rank's; collective.
  let gather: ([T]) throws -> [T]

  init(base: any FirstOrderOptimizer<T>, shard: Range<Int>, barrier: @escaping () throws -> Void,
       gather: @escaping ([T]) throws -> [T]) {
    self.base = base
    self.shard = shard
    self.barrier = barrier
    self.gather = gather
  }

  public var learningRate: Double {
    get { base.learningRate }
    set { base.learningRate = newValue }
  }
  public var summary: String { base.summary }
  /// Valid over `shard` only.
  public var savedState: SavedOptimizerState<T> { base.savedState }
  public mutating func restore(_ saved: SavedOptimizerState<T>) { base.restore(saved) }

  public mutating func step(parameters: UnsafeMutableBufferPointer<T>, gradients: UnsafeBufferPointer<T>, range: Range<Int>) throws {
    try base.step(parameters: parameters, gradients: gradients, range: shard.clamped(to: range))
    try barrier()
  }

  /// The host's ranks meet after every step, taken or not.
  public mutating func skipStep() throws { try barrier() }

  /// The optimizer's state made whole from every rank's shard. Collective over the host.
  public func wholeState() throws -> SavedOptimizerState<T> {
    var state = base.savedState
    for i in state.buffers.indices { state.buffers[i].values = try gather(state.buffers[i].values) }
    return state
  }
}
