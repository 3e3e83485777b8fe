import Foundation
import _CMPI

/// A shared window, freed (MPI_Win_free, collective) after the last reference goes; see `released`.
final class MPISharedMemory: SharedMemory {
  var window: MPI_Win?

  init(base: UnsafeMutableRawPointer, bytes: Int, window: MPI_Win?) {
    self.window = window
    super.init(base: base, bytes: bytes)
  }

  /// MPI_Win_free is collective: a window let go while an error unwinds one rank would hang it there. Released
  /// windows wait in `released` until every rank of their host is surely at the same point: the next shared
  /// allocation (collective over the same ranks, in a run or a sweep group) or MPI_Finalize.
  nonisolated(unsafe) static var released: [MPI_Win?] = []

  deinit { MPISharedMemory.released.append(window) }

  static func freeReleased() {
    for var w in released { MPICommunicator.report(MPI_Win_free(&w), "MPI_Win_free") }
    released.removeAll()
  }
}
