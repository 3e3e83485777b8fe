import _Support

/// An element type the collectives can reduce.
public protocol Reducible: Comparable, Sendable {
  static var elementType: ElementType { get }
  static var zero: Self { get }
  static func + (a: Self, b: Self) -> Self
}

public enum ElementType: Sendable { case float32, float64, int32, int64 }

extension Float: Reducible { public static var elementType: ElementType { .float32 } }
extension Double: Reducible { public static var elementType: ElementType { .float64 } }
extension Int32: Reducible { public static var elementType: ElementType { .int32 } }
extension Int64: Reducible { public static var elementType: ElementType { .int64 } }

public enum ReduceOp: Sendable { case sum, max, min }

/// A group of ranks that exchange buffers. Every rank of the group calls each collective in the same order.
///
/// Three implementations: `LocalCommunicator` (one rank: every collective is the identity, so the program runs
/// without mpirun), `InProcessGroup` (N ranks as threads of one process, for unit tests) and `MPICommunicator`.
/// The communicator knows nothing of models: it moves flat buffers.
public protocol Communicator: AnyObject {
  /// This process's index in the group, 0 ..< size.
  var rank: Int { get }
  var size: Int { get }
  /// How many hosts (shared-memory nodes) the ranks of the group run on: 1 for a local or in-process group.
  var hostCount: Int { get }
  /// How many of the job's processes share this host's memory (every group's, for a group split from the world).
  var processesOnHost: Int { get }
  /// Replaces `buffer` on every rank by the element-wise reduction of all ranks' buffers.
  func allReduce<E: Reducible>(_ buffer: UnsafeMutableBufferPointer<E>, _ op: ReduceOp) throws
  /// Copies `root`'s bytes into every rank's `buffer` (all ranks pass the same count).
  func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws
  /// Every rank's bytes, in rank order, on every rank (counts may differ).
  func allGather(_ bytes: [UInt8]) throws -> [[UInt8]]
  /// Returns when every rank has called it.
  func barrier() throws
  /// Splits the group into subgroups of the ranks that pass the same `color`, ordered by `key` then rank.
  func split(color: Int, key: Int) throws -> any Communicator
  /// Sends bytes to one rank of this group (buffered: returns once the bytes are copied).
  func send(_ bytes: [UInt8], to destination: Int, tag: Int) throws
  /// Receives the next message with `tag`, from `source` or from any rank when nil; returns it and its sender.
  func receive(from source: Int?, tag: Int) throws -> (bytes: [UInt8], source: Int)
  /// Whether a message with `tag` (from `source`, or any rank) is waiting to be received; never blocks.
  func hasMessage(from source: Int?, tag: Int) throws -> Bool

  // MARK: Shared memory

  /// The ranks of this group that share memory with this one (MPI_Comm_split_type with MPI_COMM_TYPE_SHARED: the
  /// ranks on this host), ordered by rank. Collective.
  func splitShared() throws -> any Communicator
  /// `bytes` of memory every rank of this group can read and write, zeroed; the group must share one host (see
  /// `splitShared`). Collective; it is freed when every rank has let it go (MPI_Win_free, collective too).
  func allocateShared(bytes: Int) throws -> SharedMemory

  // MARK: Non-blocking collectives (see `CollectiveRequest`)

  /// Starts `allReduce(buffer, op)` and returns at once (MPI_Iallreduce, in place).
  func startAllReduce<E: Reducible>(_ buffer: UnsafeMutableBufferPointer<E>, _ op: ReduceOp) throws -> any CollectiveRequest
  /// Starts an exchange of one block of bytes between every pair of ranks (MPI_Ialltoallv): `send` holds the block
  /// for rank j at byte offset sendCounts[0] + ... + sendCounts[j - 1]; `receive` gets the block from rank k at
  /// offset receiveCounts[0] + ... + receiveCounts[k - 1]. Rank j's receiveCounts[k] equals rank k's sendCounts[j].
  func startAllToAll(send: UnsafeRawPointer, sendCounts: [Int], receive: UnsafeMutableRawPointer,
                     receiveCounts: [Int]) throws -> any CollectiveRequest
  /// Starts gathering every rank's block onto every rank, in place (MPI_Iallgatherv with MPI_IN_PLACE): rank r's
  /// block is `counts[r]` bytes of `buffer` at offset counts[0] + ... + counts[r - 1], and every rank passes the
  /// same counts.
  func startAllGather(_ buffer: UnsafeMutableRawPointer, counts: [Int]) throws -> any CollectiveRequest
}

extension Communicator {
  public var processesOnHost: Int { max(1, size / max(hostCount, 1)) }
}

/// Memory shared by the ranks of one host. Reads and writes of one rank are seen by the others after a barrier.
public class SharedMemory {
  public let base: UnsafeMutableRawPointer
  public let bytes: Int

  public init(base: UnsafeMutableRawPointer, bytes: Int) {
    self.base = base
    self.bytes = bytes
  }
}

/// A collective that could not complete.
public struct CollectiveError: Error, CustomStringConvertible {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// An error that every rank of the group raises at the same point (after agreeing on it, or from values every rank
/// computed identically). On such an error all ranks can stop together cleanly; any other error on one rank must end
/// the whole job (MPI_Abort), since the other ranks would wait for it forever.
public protocol RaisedOnEveryRank: Error {}

/// An error raised on one or more ranks and agreed on by all of them (see `Communicator.agree`).
public struct RankFailure: RaisedOnEveryRank, CustomStringConvertible {
  /// The lowest rank that failed.
  public var rank: Int
  /// How many ranks failed.
  public var failedRanks: Int
  public var message: String
  public var worldSize: Int

  public var description: String {
    if worldSize == 1 || failedRanks == worldSize { return message }
    return "rank \(rank): \(message)"
  }
}

extension Communicator {
  public var isRoot: Bool { rank == 0 }

  public func allReduce<E: Reducible>(_ array: inout [E], _ op: ReduceOp = .sum) throws {
    try array.withUnsafeMutableBufferPointer { try allReduce($0, op) }
  }

  public func allReduce<E: Reducible>(_ value: E, _ op: ReduceOp = .sum) throws -> E {
    var a = [value]
    try allReduce(&a, op)
    return a[0]
  }

  public func broadcast<E>(_ array: inout [E], root: Int = 0) throws {
    try array.withUnsafeMutableBytes { try broadcast($0, root: root) }
  }

  /// The bytes of `root`, on every rank (the other ranks' `bytes` are ignored; counts need not agree).
  public func broadcast(bytes: [UInt8], root: Int = 0) throws -> [UInt8] {
    var count = [Int64(rank == root ? bytes.count : 0)]
    try count.withUnsafeMutableBytes { try broadcast($0, root: root) }
    var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count[0]))
    try out.withUnsafeMutableBytes { try broadcast($0, root: root) }
    return out
  }

  /// Runs `body` on every rank and agrees on the outcome: when it throws on any rank, every rank throws a
  /// `RankFailure` with the message of the lowest failing rank, so no rank is left waiting in a later collective.
  /// `describe` turns that rank's error into the message (a program passes the words its users know).
  public func agree<R>(describing describe: (any Error) -> String = { "\($0)" }, _ body: () throws -> R) throws -> R {
    var result: Result<R, Error>
    do { result = .success(try body()) } catch { result = .failure(error) }
    if size == 1 {
      if case .failure(let e) = result { throw RankFailure(rank: 0, failedRanks: 1, message: describe(e), worldSize: 1) }
    }
    let failed: Bool = { if case .failure = result { return true } else { return false } }()
    let failures = try allReduce(Int64(failed ? 1 : 0), .sum)
    guard failures > 0 else { return try result.get() }
    let first = Int(try allReduce(failed ? Int64(rank) : Int64.max, .min))
    var message = ""
    if rank == first, case .failure(let e) = result { message = describe(e) }
    let text = try broadcast(bytes: Array(message.utf8), root: first)
    throw RankFailure(rank: first, failedRanks: Int(failures), message: String(decoding: text, as: UTF8.self),
                      worldSize: size)
  }
}
