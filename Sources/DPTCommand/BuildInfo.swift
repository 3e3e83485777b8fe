import Collectives
import Foundation
import TensorCore
import _Support

/// What `dpt --version` prints: dpt's version and the commit it was built from, and the OpenBLAS and OpenMPI it runs
/// with, with the BLAS kernel and why.
///
/// The commit is the binary's GNU build id: Package.swift links dpt with `--build-id=0x<commit>` from
/// `Context.gitInformation` (and says so with `DPT_BUILD_ID_IS_COMMIT`), so the id travels with the binary into a
/// package or a node without the source or git. A tree with uncommitted changes adds "+changes"
/// (`DPT_UNCOMMITTED_CHANGES`). A build outside git has no commit to name. SwiftPM evaluates the manifest again only
/// when it or the environment changes, so the scripts put the checkout's state in the environment (`DPT_GIT_STATE`,
/// scripts/lib.sh); a plain `swift build` after a commit that changed no source may keep the commit it linked before.
enum BuildInfo {
  /// dpt's release, as the Debian package names it (scripts/package).
  static let version = "0.9.0"

  /// The commit dpt was built from ("3c68c9c"), "+changes" appended for a tree with uncommitted changes; nil outside git.
  static var commit: String? {
    #if DPT_BUILD_ID_IS_COMMIT
    guard let id = ELFBuildID.ofThisProgram() else { return nil }
    #if DPT_UNCOMMITTED_CHANGES
    return String(id.prefix(12)) + "+changes"
    #else
    return String(id.prefix(12))
    #endif
    #else
    return nil
    #endif
  }

  /// "dpt 0.9.0 (commit 3c68c9c4b1a2)" and the libraries, one per line.
  static var text: String {
    """
    dpt \(version) (\(commit.map { "commit \($0)" } ?? "built outside a git checkout: no commit"))
    blas: \(BLASKernelChoice.summary)
    mpi: \(MPICommunicator.libraryVersion)
    """
  }
}
