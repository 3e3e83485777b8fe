/// One rank alone: every collective is the identity. The default when dpt runs without mpirun.
public final class LocalCommunicator: Communicator {
  private var mailbox: [Int: [[UInt8]]] = [:]

  public init() {}
  public var rank: Int { 0 }
  public var size: Int { 1 }
  public var hostCount: Int { 1 }
  public func allReduce<E: Reducible>(_ buffer: UnsafeMutableBufferPointer<E>, _ op: ReduceOp) throws {}
  public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
    precondition(root == 0, "broadcast root \(root) outside a group of 1")
  }
  public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { [bytes] }
  public func barrier() throws {}
  public func split(color: Int, key: Int) throws -> any Communicator { LocalCommunicator() }

  public func send(_ bytes: [UInt8], to destination: Int, tag: Int) throws {
    precondition(destination == 0, "send to rank \(destination) outside a group of 1")
    mailbox[tag, default: []].append(bytes)
  }

  public func hasMessage(from source: Int?, tag: Int) throws -> Bool { !(mailbox[tag]?.isEmpty ?? true) }

  public func receive(from source: Int?, tag: Int) throws -> (bytes: [UInt8], source: Int) {
    guard var queue = mailbox[tag], !queue.isEmpty else {
      throw CollectiveError("receive on a single rank with no message pending (tag \(tag)): it would wait forever")
    }
    let bytes = queue.removeFirst()
    mailbox[tag] = queue
    return (bytes, 0)
  }

  public func startAllReduce<E: Reducible>(_ buffer: UnsafeMutableBufferPointer<E>, _ op: ReduceOp) throws -> any CollectiveRequest {
    CompletedRequest()
  }

  public func startAllToAll(send: UnsafeRawPointer, sendCounts: [Int], receive: UnsafeMutableRawPointer,
                            receiveCounts: [Int]) throws -> any CollectiveRequest {
    precondition(sendCounts == receiveCounts && sendCounts.count == 1, "all-to-all counts outside a group of 1")
    receive.copyMemory(from: send, byteCount: sendCounts[0])
    return CompletedRequest()
  }

  public func startAllGather(_ buffer: UnsafeMutableRawPointer, counts: [Int]) throws -> any CollectiveRequest {
    precondition(counts.count == 1, "all-gather counts outside a group of 1")
    return CompletedRequest()
  }

  public func splitShared() throws -> any Communicator { self }

  public func allocateShared(bytes: Int) throws -> SharedMemory { OwnedMemory(bytes: bytes) }
}

/// Memory one process owns (a group of one rank, or all the in-process ranks), freed with the last reference.
final class OwnedMemory: SharedMemory {
  init(bytes: Int) {
    let base = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
    base.initializeMemory(as: UInt8.self, repeating: 0, count: max(bytes, 1))
    super.init(base: base, bytes: bytes)
  }

  deinit { base.deallocate() }
}
