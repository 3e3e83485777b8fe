import Collectives
import Layers
import TensorCore

/// Where the optimizer step runs when an exchange shards it across the ranks of a host: the parameters live in
/// memory the host's ranks share, and each rank updates its own `shard` of them (a ZeRO-1 style step, with no
/// all-gather: the others read the new values from the shared buffer).
public struct ShardedPlacement<T: TrainingScalar> {
  /// The parameters, in memory shared by the host's ranks.
  public var parameters: UnsafeMutableBufferPointer<T>
  /// The reduced gradient after `finish`, valid over `shard`.
  public var gradients: UnsafeBufferPointer<T>
  /// The parameters this rank updates.
  public var shard: Range<Int>
  /// After this rank's step: waits until every rank of the host has updated its shard (a barrier).
  public var barrier: () throws -> Void
  /// Whether every reduced gradient is finite (for --on-nan skip-batch).
  public var gradientsFinite: () -> Bool
  /// A buffer of the parameters' size that this rank holds correctly over its shard only (the optimizer's state),
  /// made whole from every rank's shard; collective over the host.
  public var gather: ([T]) throws -> [T]
}
