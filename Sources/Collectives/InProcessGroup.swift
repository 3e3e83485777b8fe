import Foundation

/// N ranks as N threads of one process, for unit tests of distributed logic without mpirun.
///
/// Reductions add the ranks' buffers in rank order on every rank, so results are deterministic. When the body of
/// one rank throws, the group is marked failed and every rank waiting in (or later entering) a collective throws
/// too: a failure never leaves the other ranks hanging.
public final class InProcessGroup: @unchecked Sendable {
  public let size: Int
  /// The hosts the ranks pretend to run on, in contiguous blocks of ranks (as mpirun places them by slot): ranks
  /// see `hostCount` and `splitShared` as on that many hosts, though all share this process's memory.
  public let hosts: Int
  private let condition = NSCondition()
  private var arrived = 0
  private var generation = 0
  private var failure: String?
  private var slots: [UnsafeRawPointer?]
  private var counts: [Int]
  private var splitGroups: [String: InProcessGroup] = [:]
  private var mailboxes: [[(source: Int, tag: Int, bytes: [UInt8])]]
  /// Non-blocking operations in flight, by their sequence number (every rank numbers its operations in order).
  private var pending: [Int: Pending] = [:]

  public init(size: Int, hosts: Int = 1) {
    precondition(size >= 1, "a group needs at least one rank")
    precondition(hosts >= 1 && hosts <= size, "\(hosts) hosts for \(size) ranks")
    self.size = size
    self.hosts = hosts
    slots = Array(repeating: nil, count: size)
    counts = Array(repeating: 0, count: size)
    mailboxes = Array(repeating: [], count: size)
  }

  /// The communicator of each rank.
  public func communicators() -> [any Communicator] {
    (0..<size).map { InProcessCommunicator(group: self, rank: $0, host: $0 * hosts / size, hostCount: hosts) }
  }

  /// Runs `body` once per rank, each on its own thread, and returns the results in rank order. Rethrows the first
  /// error raised by any rank (the errors raised by other ranks because the group failed are dropped).
  public static func run<R>(size: Int, hosts: Int = 1, _ body: @escaping (any Communicator) throws -> R) throws -> [R] {
    try InProcessGroup(size: size, hosts: hosts).run(body)
  }

  public func run<R>(_ body: @escaping (any Communicator) throws -> R) throws -> [R] {
    // Every rank's thread calls the same closure with its own communicator: what the closure captures is shared by
    // the ranks, as it is by design in a group of threads (tests); the box hands it to the threads.
    let work = ThreadWork(body: body, comms: communicators())
    let results = ResultBox<R>(count: size)
    let done = DispatchGroup()
    for r in 0..<size {
      done.enter()
      let thread = Thread { [self] in
        let outcome: Result<R, Error>
        do { outcome = .success(try work.body(work.comms[r])) } catch {
          outcome = .failure(error)
          fail("rank \(r) failed: \(error)")
        }
        results.set(r, outcome)
        done.leave()
      }
      thread.stackSize = 8 << 20
      thread.start()
    }
    done.wait()
    // Report the original error, not the "group failed" errors it caused on the other ranks.
    let all = results.values
    let errors = all.compactMap { r -> Error? in if case .failure(let e) = r { return e } else { return nil } }
    if let original = errors.first(where: { !($0 is GroupFailed) }) ?? errors.first { throw original }
    return all.map { try! $0!.get() }
  }

  /// The ranks' outcomes, written by their threads.
  private struct ThreadWork<R>: @unchecked Sendable {
    let body: (any Communicator) throws -> R
    let comms: [any Communicator]
  }

  private final class ResultBox<R>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<R, Error>?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<R, Error>) { lock.lock(); slots[i] = r; lock.unlock() }
    var values: [Result<R, Error>?] { lock.lock(); defer { lock.unlock() }; return slots }
  }

  struct GroupFailed: Error, CustomStringConvertible { var description: String }

  func fail(_ message: String) {
    condition.lock()
    if failure == nil { failure = message }
    condition.broadcast()
    condition.unlock()
  }

  /// Waits until all ranks have arrived. Must be called with the lock held; returns with it held.
  private func arriveAndWait() throws {
    if let failure { throw GroupFailed(description: "the group failed: \(failure)") }
    let mine = generation
    arrived += 1
    if arrived == size {
      arrived = 0
      generation += 1
      condition.broadcast()
    } else {
      while generation == mine && failure == nil { condition.wait() }
      if generation == mine, let failure { throw GroupFailed(description: "the group failed: \(failure)") }
    }
  }

  /// One collective: every rank publishes a pointer and a byte count, all ranks wait, every rank reads all the
  /// published buffers (`combine`), all ranks wait again, then each rank may write its own buffer (`finish`).
  func exchange(rank: Int, _ pointer: UnsafeRawPointer?, count: Int, combine: ([UnsafeRawPointer?], [Int]) -> Void,
                finish: () -> Void = {}) throws {
    condition.lock()
    defer { condition.unlock() }
    slots[rank] = pointer
    counts[rank] = count
    try arriveAndWait()
    let (s, c) = (slots, counts)
    condition.unlock()
    combine(s, c)
    condition.lock()
    try arriveAndWait()
    finish()
  }

  func subgroup(color: Int, members: Int, sequence: Int) -> InProcessGroup {
    condition.lock()
    defer { condition.unlock() }
    let key = "\(sequence):\(color)"
    if let g = splitGroups[key] { return g }
    let g = InProcessGroup(size: members)
    splitGroups[key] = g
    return g
  }

  // MARK: Non-blocking operations

  /// One non-blocking operation: every rank posts its part (buffers and counts); the last rank to post completes the
  /// operation for all of them at once, so that a rank that tests sees it done or not, never half done.
  final class Pending {
    var parts: [Any?]
    var posted = 0
    var complete = false
    var released = 0
    init(size: Int) { parts = Array(repeating: nil, count: size) }
  }

  /// Posts this rank's part of operation `sequence`; the last rank to post runs `complete` on every rank's part.
  func post(sequence: Int, rank: Int, part: Any, complete: ([Any]) -> Void) throws {
    condition.lock()
    defer { condition.unlock() }
    if let failure { throw GroupFailed(description: "the group failed: \(failure)") }
    let op: Pending
    if let existing = pending[sequence] { op = existing } else {
      op = Pending(size: size)
      pending[sequence] = op
    }
    op.parts[rank] = part
    op.posted += 1
    if op.posted == size {
      complete(op.parts.map { $0! })
      op.complete = true
      condition.broadcast()
    }
  }

  /// Whether operation `sequence` has completed; with `wait`, blocks until it has. A completed operation is
  /// forgotten once every rank has seen it complete.
  func complete(sequence: Int, wait: Bool) throws -> Bool {
    condition.lock()
    defer { condition.unlock() }
    while true {
      if let op = pending[sequence], op.complete {
        op.released += 1
        if op.released == size { pending[sequence] = nil }
        return true
      }
      if let failure { throw GroupFailed(description: "the group failed: \(failure)") }
      if !wait { return false }
      condition.wait()
    }
  }

  func post(_ bytes: [UInt8], from source: Int, to destination: Int, tag: Int) {
    condition.lock()
    mailboxes[destination].append((source, tag, bytes))
    condition.broadcast()
    condition.unlock()
  }

  func peek(rank: Int, from source: Int?, tag: Int) throws -> Bool {
    condition.lock()
    defer { condition.unlock() }
    if mailboxes[rank].contains(where: { $0.tag == tag && (source == nil || $0.source == source) }) { return true }
    if let failure { throw GroupFailed(description: "the group failed: \(failure)") }
    return false
  }

  func take(rank: Int, from source: Int?, tag: Int) throws -> (bytes: [UInt8], source: Int) {
    condition.lock()
    defer { condition.unlock() }
    while true {
      if let i = mailboxes[rank].firstIndex(where: { $0.tag == tag && (source == nil || $0.source == source) }) {
        let m = mailboxes[rank].remove(at: i)
        return (m.bytes, m.source)
      }
      if let failure { throw GroupFailed(description: "the group failed: \(failure)") }
      condition.wait()
    }
  }
}

final class InProcessCommunicator: Communicator {
  let group: InProcessGroup
  let rank: Int
  var size: Int { group.size }
  /// The pretended host of this rank, and how many the group spans (see `InProcessGroup.hosts`).
  let host: Int
  let hostCount: Int
  /// Splits this rank has made; every rank splits in the same order, so the count names the split.
  private var splits = 0
  /// Non-blocking operations this rank has started; the count names each one, as the splits.
  private var started = 0

  init(group: InProcessGroup, rank: Int, host: Int, hostCount: Int) {
    self.group = group
    self.rank = rank
    self.host = host
    self.hostCount = hostCount
  }

  func allReduce<E: Reducible>(_ buffer: UnsafeMutableBufferPointer<E>, _ op: ReduceOp) throws {
    let n = buffer.count
    var result = [E](repeating: .zero, count: n)
    try group.exchange(rank: rank, UnsafeRawPointer(buffer.baseAddress), count: n, combine: { slots, counts in
      precondition(counts.allSatisfy { $0 == n }, "allReduce with different counts on different ranks: \(counts)")
      for (r, slot) in slots.enumerated() {
        let x = slot!.assumingMemoryBound(to: E.self)
        for i in 0..<n {
          if r == 0 { result[i] = x[i]; continue }
          switch op {
          case .sum: result[i] = result[i] + x[i]
          case .max: result[i] = Swift.max(result[i], x[i])
          case .min: result[i] = Swift.min(result[i], x[i])
          }
        }
      }
    }, finish: {
      for i in 0..<n { buffer[i] = result[i] }
    })
  }

  func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
    var copy: [UInt8] = []
    try group.exchange(rank: rank, UnsafeRawPointer(buffer.baseAddress), count: buffer.count, combine: { slots, counts in
      precondition(counts[root] == buffer.count, "broadcast with different counts: \(counts)")
      copy = Array(UnsafeRawBufferPointer(start: slots[root], count: counts[root]))
    }, finish: {
      copy.withUnsafeBytes { buffer.copyMemory(from: $0) }
    })
  }

  func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
    var out: [[UInt8]] = []
    try bytes.withUnsafeBytes { mine in
      try group.exchange(rank: rank, mine.baseAddress, count: mine.count, combine: { slots, counts in
        out = zip(slots, counts).map { p, n in n == 0 ? [] : Array(UnsafeRawBufferPointer(start: p, count: n)) }
      })
    }
    return out
  }

  func barrier() throws {
    try group.exchange(rank: rank, nil, count: 0, combine: { _, _ in })
  }

  func split(color: Int, key: Int) throws -> any Communicator {
    splits += 1
    let sequence = splits
    var mine = [Int64(color), Int64(key), Int64(rank), Int64(host)]
    var all: [[Int64]] = []
    try mine.withUnsafeMutableBytes { m in
      try group.exchange(rank: rank, UnsafeRawPointer(m.baseAddress), count: 4, combine: { slots, _ in
        all = slots.map { Array(UnsafeBufferPointer(start: $0!.assumingMemoryBound(to: Int64.self), count: 4)) }
      })
    }
    let members = all.filter { $0[0] == Int64(color) }.sorted { ($0[1], $0[2]) < ($1[1], $1[2]) }
    let newRank = members.firstIndex { $0[2] == Int64(rank) }!
    let sub = group.subgroup(color: color, members: members.count, sequence: sequence)
    return InProcessCommunicator(group: sub, rank: newRank, host: host, hostCount: Set(members.map { $0[3] }).count)
  }

  func send(_ bytes: [UInt8], to destination: Int, tag: Int) throws {
    group.post(bytes, from: rank, to: destination, tag: tag)
  }

  func receive(from source: Int?, tag: Int) throws -> (bytes: [UInt8], source: Int) {
    try group.take(rank: rank, from: source, tag: tag)
  }

  func hasMessage(from source: Int?, tag: Int) throws -> Bool {
    try group.peek(rank: rank, from: source, tag: tag)
  }

  /// The ranks of this rank's pretended host.
  func splitShared() throws -> any Communicator { try split(color: host, key: rank) }

  /// One allocation for every rank, freed when the last of them lets it go.
  func allocateShared(bytes: Int) throws -> SharedMemory {
    final class Slot { var memory: SharedMemory? }
    let mine = Slot()
    try start(mine) { parts in
      let memory = OwnedMemory(bytes: bytes)
      for case let s as Slot in parts { s.memory = memory }
    }.wait()
    return mine.memory!
  }

  // MARK: Non-blocking collectives: each is completed by whichever rank posts its part last.

  private func start(_ part: Any, complete: @escaping ([Any]) -> Void) throws -> any CollectiveRequest {
    started += 1
    try group.post(sequence: started, rank: rank, part: part, complete: complete)
    return InProcessRequest(group: group, sequence: started)
  }

  func startAllReduce<E: Reducible>(_ buffer: UnsafeMutableBufferPointer<E>, _ op: ReduceOp) throws -> any CollectiveRequest {
    try start(buffer) { parts in
      let buffers = parts.map { $0 as! UnsafeMutableBufferPointer<E> }
      let n = buffer.count
      precondition(buffers.allSatisfy { $0.count == n }, "allReduce with different counts on different ranks")
      for i in 0..<n {
        var r = buffers[0][i]
        for b in buffers.dropFirst() {
          switch op {
          case .sum: r = r + b[i]
          case .max: r = Swift.max(r, b[i])
          case .min: r = Swift.min(r, b[i])
          }
        }
        for b in buffers { b[i] = r }
      }
    }
  }

  func startAllToAll(send: UnsafeRawPointer, sendCounts: [Int], receive: UnsafeMutableRawPointer,
                     receiveCounts: [Int]) throws -> any CollectiveRequest {
    typealias Part = (send: UnsafeRawPointer, sendCounts: [Int], receive: UnsafeMutableRawPointer, receiveCounts: [Int])
    let part: Part = (send, sendCounts, receive, receiveCounts)
    return try start(part) { parts in
      let all = parts.map { $0 as! Part }
      for (j, from) in all.enumerated() {
        let sendOffsets = blockOffsets(from.sendCounts)
        for (k, to) in all.enumerated() {
          precondition(from.sendCounts[k] == to.receiveCounts[j], "all-to-all: rank \(j) sends \(from.sendCounts[k]) bytes to rank \(k), which expects \(to.receiveCounts[j])")
          (to.receive + blockOffsets(to.receiveCounts)[j]).copyMemory(from: from.send + sendOffsets[k], byteCount: from.sendCounts[k])
        }
      }
    }
  }

  func startAllGather(_ buffer: UnsafeMutableRawPointer, counts: [Int]) throws -> any CollectiveRequest {
    typealias Part = (buffer: UnsafeMutableRawPointer, counts: [Int])
    let part: Part = (buffer, counts)
    return try start(part) { parts in
      let all = parts.map { $0 as! Part }
      precondition(all.allSatisfy { $0.counts == counts }, "all-gather with different counts on different ranks")
      let offsets = blockOffsets(counts)
      for (k, to) in all.enumerated() {
        for (j, from) in all.enumerated() where j != k {
          (to.buffer + offsets[j]).copyMemory(from: from.buffer + offsets[j], byteCount: counts[j])
        }
      }
    }
  }
}

/// A non-blocking operation of an in-process group.
final class InProcessRequest: CollectiveRequest {
  let group: InProcessGroup
  let sequence: Int
  private var done = false

  init(group: InProcessGroup, sequence: Int) {
    self.group = group
    self.sequence = sequence
  }

  func test() throws -> Bool {
    if !done { done = try group.complete(sequence: sequence, wait: false) }
    return done
  }

  func wait() throws {
    if !done { done = try group.complete(sequence: sequence, wait: true) }
  }
}
