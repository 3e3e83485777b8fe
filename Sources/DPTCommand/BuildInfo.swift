import Collectives
import Foundation
import TensorCore
import _Support

/// What `dpt --version` prints: dpt's version and the commit it was built from, and the OpenBLAS and OpenMPI it runs
/// with, with the BLAS kernel and why.
///
/// The commit is in the binary's GNU build id: the scripts that build dpt (scripts/lib.sh) have the linker write
/// "dpt", a byte that is 1 for a tree with uncommitted changes, and the commit's 20 bytes. It travels with the binary
/// into a package and onto nodes without the source or git. A build by plain `swift build` has the linker's own id,
/// and names no commit rather than a wrong one.
enum BuildInfo {
  /// dpt's release, as the Debian package names it (scripts/package).
  static let version = "0.9.0"

  /// The commit dpt was built from ("3c68c9c4b1a2"), "+changes" appended for a tree with uncommitted changes; nil
  /// when the build recorded none.
  static var commit: String? { ELFBuildID.commit(in: ELFBuildID.ofThisProgram()) }

  /// "dpt 0.9.0 (commit 3c68c9c4b1a2)" and the libraries, one per line.
  static var text: String {
    """
    dpt \(version) (\(commit.map { "commit \($0)" } ?? "no commit recorded: built by plain swift build, not by the scripts"))
    blas: \(BLASKernelChoice.summary)
    mpi: \(MPICommunicator.libraryVersion)
    """
  }
}
