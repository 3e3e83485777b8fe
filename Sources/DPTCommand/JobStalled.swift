import Collectives
import FileFormats
import Foundation
import _Support

/// A collective that gave up (`CollectiveStall`), with where the run was: the reporting rank prints it, and the job
/// ends with MPI_Abort.
struct JobStalled: Error, CustomStringConvertible {
  var stall: CollectiveStall
  /// Where the run was (nil for a sweep, whose groups are at different places).
  var epoch: Int?
  var step: Int?
  var timeout: Double
  var checkpointDir: String?

  var description: String {
    var text = "Error: \(stall)" + (epoch.map { " at epoch \($0), step \(step ?? 0)" } ?? "")
    switch stall.reason {
    case .timeout: text += " (--stall-timeout \(String(format: "%g", timeout))); ending the job"
    case .interrupted: text += " while the job was being ended: the silent ranks exited or hang"
    }
    if let checkpointDir {
      // Only a checkpoint that is there can be resumed from: a run that stalled in its first epoch has none yet.
      text += FileManager.default.fileExists(atPath: Files.join(checkpointDir, Checkpoint.fileName))
        ? ". The last checkpoint in \(checkpointDir) is intact: resume with --resume \(checkpointDir)"
        : ". \(checkpointDir) holds no checkpoint yet (the first is written at the end of epoch 1 or after --checkpoint-every steps): start the run again"
    }
    return text
  }
}
