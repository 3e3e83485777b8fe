import Foundation
import _CMPI
import _Support

/// OpenMPI. The only code in dpt that calls MPI; every return code goes through `check` (or, where nothing can be
/// thrown: finalizing, aborting, freeing in a deinit, `report`, which names the failed call on stderr).
///
/// Errors are set to return (MPI_ERRORS_RETURN) so that a failed call becomes a thrown `CollectiveError` with
/// MPI's own message; the command line then ends the whole job with `MPICommunicator.abort`.
public final class MPICommunicator: Communicator {
  /// Bounds the waits of this communicator's collectives; the world's, shared by every communicator split from it.
  public let watchdog: Watchdog
  public let rank: Int
  public let size: Int
  public let hostCount: Int
  private let comm: MPI_Comm
  private let ownsComm: Bool
  private var pending: [(request: MPI_Request?, bytes: UnsafeMutableRawBufferPointer)] = []

  /// True when this process was started by mpirun/mpiexec (OpenMPI or PMIx sets these variables).
  public static var isLaunchedByMPI: Bool {
    let env = ProcessInfo.processInfo.environment
    return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_SIZE"] != nil
  }

  /// The process's MPI state: whether MPI is up, the world's side communicators, the ranks' hosts.
  struct WorldState {
    var initialized = false
    /// The world's duplicate that carries the watchdog's heartbeats.
    var heartbeats: MPI_Comm?
    /// The world's duplicate on which failing ranks meet (`failedTogether`), apart from any collective in flight.
    var failing: MPI_Comm?
    /// MPI's processor name of each world rank (empty before MPI starts).
    var hostNames: [String] = []
  }
  static let state = Locked(WorldState())
  static var initialized: Bool { state.current.initialized }

  /// MPI_COMM_WORLD, initialising MPI on first use.
  public static func world() throws -> MPICommunicator {
    if !initialized {
      try check(MPI_Init(nil, nil), "MPI_Init")
      state.withLock { $0.initialized = true }
      try check(MPI_Comm_set_errhandler(dpt_mpi_comm_world(), dpt_mpi_errors_return()), "MPI_Comm_set_errhandler")
      // The watchdog's heartbeats travel on a communicator of their own, never mixed with the collectives' traffic.
      var side: MPI_Comm? = nil
      try check(MPI_Comm_dup(dpt_mpi_comm_world(), &side), "MPI_Comm_dup")
      try check(MPI_Comm_set_errhandler(side, dpt_mpi_errors_return()), "MPI_Comm_set_errhandler")
      state.withLock { $0.heartbeats = side }
      var failures: MPI_Comm? = nil
      try check(MPI_Comm_dup(dpt_mpi_comm_world(), &failures), "MPI_Comm_dup")
      try check(MPI_Comm_set_errhandler(failures, dpt_mpi_errors_return()), "MPI_Comm_set_errhandler")
      state.withLock { $0.failing = failures }
    }
    let world = try MPICommunicator(comm: dpt_mpi_comm_world(), owned: false, watchdog: Watchdog())
    if hostNames.isEmpty {
      let names = try world.allGather(Array(processorName().utf8)).map { String(decoding: $0, as: UTF8.self) }
      state.withLock { $0.hostNames = names }
    }
    return world
  }

  /// The world's ranks on this host (a sweep's other groups share its memory too).
  public var processesOnHost: Int {
    let me = MPICommunicator.hostNames.indices.contains(MPICommunicator.worldRank) ? MPICommunicator.hostNames[MPICommunicator.worldRank] : ""
    return max(1, MPICommunicator.hostNames.filter { $0 == me }.count)
  }

  /// This process's rank in the world.
  static var worldRank: Int {
    var me: Int32 = 0
    report(MPI_Comm_rank(dpt_mpi_comm_world(), &me), "MPI_Comm_rank")
    return Int(me)
  }

  static var heartbeats: MPI_Comm? { state.current.heartbeats }
  static var failing: MPI_Comm? { state.current.failing }

  /// Whether every rank of the world reaches this call within `seconds`, each with an error of its own (the same
  /// step failing everywhere: a loss that diverged, a verdict every rank was told): then the job can end with one
  /// message and MPI_Finalize instead of MPI_Abort. False when some rank does not come (it failed alone, or waits
  /// in a collective the failed ranks left): the caller then aborts.
  public static func failedTogether(within seconds: Double) -> Bool {
    guard initialized, let failing else { return false }
    var request: MPI_Request? = nil
    guard MPI_Ibarrier(failing, &request) == MPI_SUCCESS else { return false }
    let end = now() + seconds
    while now() < end {
      var done: Int32 = 0
      guard MPI_Test(&request, &done, dpt_mpi_status_ignore()) == MPI_SUCCESS else { return false }
      if done != 0 { return true }
      _ = try? answerHeartbeats()
      usleep(1000)
    }
    return false
  }
  /// Each world rank's host (MPI's processor name).
  public static var hostNames: [String] { state.current.hostNames }

  /// MPI_Finalize, after every rank is done.
  public static func finalize() {
    if initialized {
      MPISharedMemory.freeReleased()
      report(MPI_Finalize(), "MPI_Finalize")
      state.withLock { $0.initialized = false }
    }
  }

  /// Ends every rank of the job: prints `message` on this rank's stderr, then MPI_Abort(MPI_COMM_WORLD).
  public static func abort(message: String, code: Int32 = 1) -> Never {
    if !message.isEmpty { FileHandle.standardError.write((message.hasSuffix("\n") ? message : message + "\n").data(using: .utf8)!) }
    if initialized { report(MPI_Abort(dpt_mpi_comm_world(), code), "MPI_Abort") }
    exit(code)
  }

  /// "Open MPI v4.1.4" (MPI_Get_library_version, which may be called before MPI starts, up to its first comma).
  public static var libraryVersion: String {
    var buffer = [CChar](repeating: 0, count: 8192)
    var length: Int32 = 0
    guard MPI_Get_library_version(&buffer, &length) == MPI_SUCCESS else { return "unknown" }
    let first = String(cString: buffer).split(separator: "\n").first ?? "unknown"
    return String(first.prefix { $0 != "," }).trimmingCharacters(in: .whitespaces)
  }

  /// The processor (host) name MPI reports for this rank.
  static func processorName() throws -> String {
    var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_PROCESSOR_NAME) + 1)
    var length: Int32 = 0
    try check(MPI_Get_processor_name(&buffer, &length), "MPI_Get_processor_name")
    return String(cString: buffer)
  }

  private init(comm: MPI_Comm, owned: Bool, watchdog: Watchdog) throws {
    self.watchdog = watchdog
    var r: Int32 = 0, s: Int32 = 0
    try MPICommunicator.check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank")
    try MPICommunicator.check(MPI_Comm_size(comm, &s), "MPI_Comm_size")
    self.comm = comm
    self.ownsComm = owned
    self.rank = Int(r)
    self.size = Int(s)
    // The ranks that share memory with this one (MPI_COMM_TYPE_SHARED: one host); each host's first rank counts it.
    var local: MPI_Comm? = nil
    try MPICommunicator.check(MPI_Comm_split_type(comm, dpt_mpi_comm_type_shared(), r, dpt_mpi_info_null(), &local),
                              "MPI_Comm_split_type")
    var localRank: Int32 = 0
    try MPICommunicator.check(MPI_Comm_rank(local, &localRank), "MPI_Comm_rank")
    try MPICommunicator.check(MPI_Comm_free(&local), "MPI_Comm_free")
    var leaders: Int32 = localRank == 0 ? 1 : 0
    try MPICommunicator.check(MPI_Allreduce(dpt_mpi_in_place(), &leaders, 1, dpt_mpi_int32(), dpt_mpi_sum(), comm),
                              "MPI_Allreduce")
    self.hostCount = Int(leaders)
  }

  deinit {
    try? completeSends()
    if ownsComm && MPICommunicator.initialized {
      var c: MPI_Comm? = comm
      MPICommunicator.report(MPI_Comm_free(&c), "MPI_Comm_free")
    }
  }

  static func check(_ code: Int32, _ call: String) throws {
    guard code != MPI_SUCCESS else { return }
    var buffer = [CChar](repeating: 0, count: Int(dpt_mpi_max_error_string()) + 1)
    var length: Int32 = 0
    MPI_Error_string(code, &buffer, &length)
    throw CollectiveError("\(call) failed: \(String(cString: buffer))")
  }

  /// `check` where nothing can be thrown: a failed call is named on stderr, and the caller goes on.
  static func report(_ code: Int32, _ call: String) {
    do { try check(code, call) } catch { FileHandle.standardError.write(Data("warning: \(error)\n".utf8)) }
  }

  private static func datatype(_ e: ElementType) -> MPI_Datatype {
    switch e {
    case .float32: dpt_mpi_float()
    case .float64: dpt_mpi_double()
    case .int32: dpt_mpi_int32()
    case .int64: dpt_mpi_int64()
    }
  }

  private static func op(_ op: ReduceOp) -> MPI_Op {
    switch op {
    case .sum: dpt_mpi_sum()
    case .max: dpt_mpi_max()
    case .min: dpt_mpi_min()
    }
  }

  // Blocking collectives: MPI's blocking call, or (with the watchdog armed) its non-blocking twin, polled.

  /// Runs one blocking collective: `blocking` as it is, or with the watchdog armed `start` and a polled wait.
  private func collective(_ name: String, blocking: () -> Int32, start: (inout MPI_Request?) -> Int32) throws {
    guard watchdog.timeout != nil else { return try MPICommunicator.check(blocking(), "MPI_" + name) }
    var request: MPI_Request? = nil
    try MPICommunicator.check(start(&request), "MPI_I" + name.lowercased())
    try MPICommunicator.wait(&request, "MPI_I" + name.lowercased(), watchdog: watchdog)
  }

  public func allReduce<E: Reducible>(_ buffer: UnsafeMutableBufferPointer<E>, _ op: ReduceOp) throws {
    guard size > 1, buffer.count > 0 else { return }
    let n = Int32(buffer.count), type = MPICommunicator.datatype(E.elementType), o = MPICommunicator.op(op)
    try collective("Allreduce", blocking: { MPI_Allreduce(dpt_mpi_in_place(), buffer.baseAddress, n, type, o, comm) },
                   start: { MPI_Iallreduce(dpt_mpi_in_place(), buffer.baseAddress, n, type, o, comm, &$0) })
  }

  public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
    guard size > 1, buffer.count > 0 else { return }
    let n = Int32(buffer.count), r = Int32(root)
    try collective("Bcast", blocking: { MPI_Bcast(buffer.baseAddress, n, dpt_mpi_byte(), r, comm) },
                   start: { MPI_Ibcast(buffer.baseAddress, n, dpt_mpi_byte(), r, comm, &$0) })
  }

  public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
    // Every buffer stays pinned (with...Pointer) until the collective completes: a non-blocking one writes later.
    var counts = [Int32](repeating: 0, count: size)
    var mine = [Int32(bytes.count)]
    try mine.withUnsafeMutableBufferPointer { m in
      try counts.withUnsafeMutableBufferPointer { c in
        try collective("Allgather", blocking: { MPI_Allgather(m.baseAddress, 1, dpt_mpi_int32(), c.baseAddress, 1, dpt_mpi_int32(), comm) },
                       start: { MPI_Iallgather(m.baseAddress, 1, dpt_mpi_int32(), c.baseAddress, 1, dpt_mpi_int32(), comm, &$0) })
      }
    }
    var displacements = [Int32](repeating: 0, count: size)
    for r in 1..<max(size, 1) { displacements[r] = displacements[r - 1] + counts[r - 1] }
    var all = [UInt8](repeating: 0, count: Int(counts.reduce(0, +)))
    let n = mine[0]
    try bytes.withUnsafeBytes { send in
      try all.withUnsafeMutableBytes { a in
        try counts.withUnsafeBufferPointer { c in
          try displacements.withUnsafeBufferPointer { d in
            try collective(
              "Allgatherv",
              blocking: { MPI_Allgatherv(send.baseAddress, n, dpt_mpi_byte(), a.baseAddress, c.baseAddress, d.baseAddress, dpt_mpi_byte(), comm) },
              start: { MPI_Iallgatherv(send.baseAddress, n, dpt_mpi_byte(), a.baseAddress, c.baseAddress, d.baseAddress, dpt_mpi_byte(), comm, &$0) })
          }
        }
      }
    }
    return (0..<size).map { r in Array(all[Int(displacements[r])..<Int(displacements[r] + counts[r])]) }
  }

  public func barrier() throws {
    try collective("Barrier", blocking: { MPI_Barrier(comm) }, start: { MPI_Ibarrier(comm, &$0) })
  }

  // MARK: The watchdog's waits (see `Watchdog`)

  static func now() -> Double { ProcessInfo.processInfo.systemUptime }

  /// Waits for `request`: MPI_Wait, or with the watchdog armed a loop of MPI_Test that answers heartbeats, backs off
  /// to short sleeps after 10 ms, and gives up after the timeout (or soon after the job began to end).
  static func wait(_ request: inout MPI_Request?, _ call: String, watchdog: Watchdog) throws {
    guard let timeout = watchdog.timeout else {
      return try check(MPI_Wait(&request, dpt_mpi_status_ignore()), "MPI_Wait (\(call))")
    }
    var start = now()
    var lastAnswer = start, lastPoll = start, endingSince: Double? = nil, spins = 0
    while true {
      var done: Int32 = 0
      try check(MPI_Test(&request, &done, dpt_mpi_status_ignore()), "MPI_Test (\(call))")
      if done != 0 { return }
      spins += 1
      guard spins % 64 == 0 else { continue }
      let t = now()
      // A gap of seconds between two polls means this process was stopped (SIGSTOP, swapped out) and woken again:
      // the time it was away is not the others' silence, so its wait starts over.
      if t - lastPoll > 1 { start = t }
      lastPoll = t
      Watchdog.noteActivity()
      if t - lastAnswer > 0.05 {
        try answerHeartbeats()
        lastAnswer = t
      }
      if watchdog.giveUp() {
        endingSince = endingSince ?? t
        if t - endingSince! > 0.5 { throw try stall(reason: .interrupted, waited: t - start, grace: 0.3) }
      }
      if t - start > timeout { throw try stall(reason: .timeout, waited: t - start, grace: min(watchdog.grace, timeout / 4)) }
      if t - start > 0.01 { usleep(20) }
    }
  }

  static let ping: Int32 = 1, pong: Int32 = 2

  /// Answers every heartbeat that has arrived (a ping gets a pong back); returns the ranks heard from.
  @discardableResult
  static func answerHeartbeats() throws -> Set<Int> {
    guard let side = heartbeats else { return [] }
    var heard: Set<Int> = []
    while true {
      var flag: Int32 = 0
      var status = MPI_Status()
      try check(MPI_Iprobe(dpt_mpi_any_source(), dpt_mpi_any_tag(), side, &flag, &status), "MPI_Iprobe")
      guard flag != 0 else { return heard }
      let source = dpt_mpi_source(&status), tag = dpt_mpi_tag(&status)
      var byte: UInt8 = 0
      try check(MPI_Recv(&byte, 1, dpt_mpi_byte(), source, tag, side, dpt_mpi_status_ignore()), "MPI_Recv")
      heard.insert(Int(source))
      if tag == ping { try post(pong, to: source) }
    }
  }

  /// A one-byte heartbeat, never waited for (a stopped rank may never take it).
  static func post(_ tag: Int32, to rank: Int32) throws {
    let byte = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)  // kept: MPI owns it until the job ends
    byte.pointee = 0
    var request: MPI_Request? = nil
    try check(MPI_Isend(byte, 1, dpt_mpi_byte(), rank, tag, heartbeats, &request), "MPI_Isend")
    try check(MPI_Request_free(&request), "MPI_Request_free")
  }

  /// Pings every other rank and listens for `grace` seconds: the ranks not heard from stopped answering.
  static func stall(reason: CollectiveStall.Reason, waited: Double, grace: Double) throws -> CollectiveStall {
    var me: Int32 = 0, n: Int32 = 0
    try check(MPI_Comm_rank(dpt_mpi_comm_world(), &me), "MPI_Comm_rank")
    try check(MPI_Comm_size(dpt_mpi_comm_world(), &n), "MPI_Comm_size")
    for r in 0..<n where r != me { try post(ping, to: r) }
    var heard: Set<Int> = [Int(me)]
    let end = now() + grace
    while now() < end && heard.count < Int(n) {
      heard.formUnion(try answerHeartbeats())
      usleep(1000)
    }
    let silent = (0..<Int(n)).filter { !heard.contains($0) }
    return CollectiveStall(silentRanks: silent, hosts: silent.map { $0 < hostNames.count ? hostNames[$0] : "?" },
                           waited: waited, reason: reason, reporter: heard.min()!)
  }

  public func split(color: Int, key: Int) throws -> any Communicator {
    var newComm: MPI_Comm? = nil
    try MPICommunicator.check(MPI_Comm_split(comm, Int32(color), Int32(key), &newComm), "MPI_Comm_split")
    try MPICommunicator.check(MPI_Comm_set_errhandler(newComm, dpt_mpi_errors_return()), "MPI_Comm_set_errhandler")
    return try MPICommunicator(comm: newComm!, owned: true, watchdog: watchdog)
  }

  /// Non-blocking send: the bytes are copied and the call returns at once; completed sends are released on later
  /// calls, and all are completed before the communicator goes away.
  public func send(_ bytes: [UInt8], to destination: Int, tag: Int) throws {
    try releaseCompletedSends()
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
    bytes.withUnsafeBytes { copy.copyMemory(from: $0) }
    var request: MPI_Request? = nil
    try MPICommunicator.check(
      MPI_Isend(copy.baseAddress, Int32(bytes.count), dpt_mpi_byte(), Int32(destination), Int32(tag), comm, &request),
      "MPI_Isend")
    pending.append((request, copy))
  }

  public func receive(from source: Int?, tag: Int) throws -> (bytes: [UInt8], source: Int) {
    var status = MPI_Status()
    try MPICommunicator.check(
      MPI_Probe(Int32(source ?? Int(dpt_mpi_any_source())), Int32(tag), comm, &status), "MPI_Probe")
    var count: Int32 = 0
    try MPICommunicator.check(MPI_Get_count(&status, dpt_mpi_byte(), &count), "MPI_Get_count")
    let from = dpt_mpi_source(&status)
    var bytes = [UInt8](repeating: 0, count: Int(count))
    try MPICommunicator.check(
      MPI_Recv(&bytes, count, dpt_mpi_byte(), from, Int32(tag), comm, dpt_mpi_status_ignore()), "MPI_Recv")
    return (bytes, Int(from))
  }

  public func hasMessage(from source: Int?, tag: Int) throws -> Bool {
    var flag: Int32 = 0
    var status = MPI_Status()
    try MPICommunicator.check(
      MPI_Iprobe(Int32(source ?? Int(dpt_mpi_any_source())), Int32(tag), comm, &flag, &status), "MPI_Iprobe")
    return flag != 0
  }

  private func releaseCompletedSends() throws {
    var i = 0
    while i < pending.count {
      var done: Int32 = 0
      try MPICommunicator.check(MPI_Test(&pending[i].request, &done, dpt_mpi_status_ignore()), "MPI_Test")
      if done != 0 {
        pending[i].bytes.deallocate()
        pending.remove(at: i)
      } else {
        i += 1
      }
    }
  }

  /// Waits for every send this rank started.
  public func completeSends() throws {
    for i in pending.indices {
      try MPICommunicator.check(MPI_Wait(&pending[i].request, dpt_mpi_status_ignore()), "MPI_Wait")
      pending[i].bytes.deallocate()
    }
    pending.removeAll()
  }

  // MARK: Shared memory

  public func splitShared() throws -> any Communicator {
    var local: MPI_Comm? = nil
    try MPICommunicator.check(MPI_Comm_split_type(comm, dpt_mpi_comm_type_shared(), Int32(rank), dpt_mpi_info_null(), &local),
                              "MPI_Comm_split_type")
    try MPICommunicator.check(MPI_Comm_set_errhandler(local, dpt_mpi_errors_return()), "MPI_Comm_set_errhandler")
    return try MPICommunicator(comm: local!, owned: true, watchdog: watchdog)
  }

  /// MPI_Win_allocate_shared: rank 0 allocates all of it, the others map rank 0's segment.
  public func allocateShared(bytes: Int) throws -> SharedMemory {
    MPISharedMemory.freeReleased()
    var base: UnsafeMutableRawPointer? = nil
    var win: MPI_Win? = dpt_mpi_win_null()
    try MPICommunicator.check(
      MPI_Win_allocate_shared(MPI_Aint(rank == 0 ? max(bytes, 1) : 0), 1, dpt_mpi_info_null(), comm, &base, &win),
      "MPI_Win_allocate_shared")
    var size: MPI_Aint = 0
    var unit: Int32 = 0
    try MPICommunicator.check(MPI_Win_shared_query(win, 0, &size, &unit, &base), "MPI_Win_shared_query")
    guard let base, Int(size) >= bytes else { throw CollectiveError("MPI_Win_shared_query: rank 0's segment is missing") }
    if rank == 0 { base.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }
    try barrier()
    return MPISharedMemory(base: base, bytes: bytes, window: win)
  }

  // MARK: Non-blocking collectives

  public func startAllReduce<E: Reducible>(_ buffer: UnsafeMutableBufferPointer<E>, _ op: ReduceOp) throws -> any CollectiveRequest {
    guard size > 1, buffer.count > 0 else { return CompletedRequest() }
    let r = MPIRequest(watchdog: watchdog)
    try MPICommunicator.check(
      MPI_Iallreduce(dpt_mpi_in_place(), buffer.baseAddress, Int32(buffer.count), MPICommunicator.datatype(E.elementType),
                     MPICommunicator.op(op), comm, &r.request),
      "MPI_Iallreduce")
    return r
  }

  public func startAllToAll(send: UnsafeRawPointer, sendCounts: [Int], receive: UnsafeMutableRawPointer,
                            receiveCounts: [Int]) throws -> any CollectiveRequest {
    precondition(sendCounts.count == size && receiveCounts.count == size, "all-to-all needs one count per rank")
    let r = MPIRequest(watchdog: watchdog)
    let sc = r.keep(sendCounts), sd = r.keep(blockOffsets(sendCounts))
    let rc = r.keep(receiveCounts), rd = r.keep(blockOffsets(receiveCounts))
    try MPICommunicator.check(
      MPI_Ialltoallv(send, sc, sd, dpt_mpi_byte(), receive, rc, rd, dpt_mpi_byte(), comm, &r.request), "MPI_Ialltoallv")
    return r
  }

  public func startAllGather(_ buffer: UnsafeMutableRawPointer, counts: [Int]) throws -> any CollectiveRequest {
    precondition(counts.count == size, "all-gather needs one count per rank")
    guard size > 1 else { return CompletedRequest() }
    let r = MPIRequest(watchdog: watchdog)
    let c = r.keep(counts), d = r.keep(blockOffsets(counts))
    try MPICommunicator.check(
      MPI_Iallgatherv(dpt_mpi_in_place(), 0, dpt_mpi_byte(), buffer, c, d, dpt_mpi_byte(), comm, &r.request),
      "MPI_Iallgatherv")
    return r
  }
}
