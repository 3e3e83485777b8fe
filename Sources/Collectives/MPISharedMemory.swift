import Foundation
import _Support
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
  static let released = Locked<[MPI_Win?]>([])

  deinit { MPISharedMemory.released.withLock { [window] in $0.append(window) } }

  static func freeReleased() {
    let windows = released.withLock { list in defer { list.removeAll() }; return list }
    for var w in windows { MPICommunicator.report(MPI_Win_free(&w), "MPI_Win_free") }
  }
}
