import Foundation

/// A value behind a lock: the little state a process keeps for all its threads (the MPI world's side communicators,
/// the BLAS kernel's reason, shared windows to free). Sendable because every access holds the lock.
public final class Locked<Value>: @unchecked Sendable {
  private var value: Value
  private let lock = NSLock()

  public init(_ value: Value) { self.value = value }

  /// Runs `body` with the value, holding the lock.
  public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
    lock.lock()
    defer { lock.unlock() }
    return try body(&value)
  }

  /// A copy of the value.
  public var current: Value { withLock { $0 } }
}
