import Foundation
import _CMPI

/// An MPI request, with the count arrays MPI may read until the operation completes.
final class MPIRequest: CollectiveRequest {
  var request: MPI_Request? = nil
  private var done = false
  private var arrays: [UnsafeMutablePointer<Int32>] = []
  let watchdog: Watchdog

  init(watchdog: Watchdog) { self.watchdog = watchdog }

  /// A copy of `values` that lives as long as the request.
  func keep(_ values: [Int]) -> UnsafeMutablePointer<Int32> {
    let p = UnsafeMutablePointer<Int32>.allocate(capacity: max(values.count, 1))
    for (i, v) in values.enumerated() {
      precondition(v <= Int(Int32.max), "a block of \(v) bytes is too large for MPI's 32-bit counts")
      p[i] = Int32(v)
    }
    arrays.append(p)
    return p
  }

  func test() throws -> Bool {
    guard !done else { return true }
    var flag: Int32 = 0
    try MPICommunicator.check(MPI_Test(&request, &flag, dpt_mpi_status_ignore()), "MPI_Test")
    done = flag != 0
    return done
  }

  func wait() throws {
    guard !done else { return }
    try MPICommunicator.wait(&request, "a non-blocking collective", watchdog: watchdog)
    done = true
  }

  deinit {
    // An operation dropped before it completed (the job is ending on an error) keeps its arrays: MPI may still
    // read them.
    if done { for p in arrays { p.deallocate() } }
  }
}
