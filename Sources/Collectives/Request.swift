/// A collective operation that was started without waiting for it. Its buffers belong to the operation until it
/// completes: no rank may read or write them before `test` returns true or `wait` returns.
///
/// Every rank starts the same non-blocking operations in the same order (as with blocking ones); they may complete
/// in any order, and each rank may test or wait on them in any order.
public protocol CollectiveRequest: AnyObject {
  /// Whether the operation has completed. Never blocks; each call also lets the library move the operation on
  /// (MPI progresses non-blocking collectives only inside MPI calls).
  func test() throws -> Bool
  /// Blocks until the operation has completed.
  func wait() throws
}

/// An operation that completed when it started (a group of one rank).
public final class CompletedRequest: CollectiveRequest {
  public init() {}
  public func test() throws -> Bool { true }
  public func wait() throws {}
}

/// Byte offsets of consecutive blocks: offsets(of: [3, 5, 2]) == [0, 3, 8].
public func blockOffsets(_ counts: [Int]) -> [Int] {
  var out: [Int] = []
  out.reserveCapacity(counts.count)
  var at = 0
  for c in counts {
    out.append(at)
    at += c
  }
  return out
}
