import Collectives
import Foundation

/// A collective that gave up (`CollectiveStall`), with where the run was: the reporting rank prints it, and the job
/// ends with MPI_Abort.
struct JobStalled: Error, CustomStringConvertible {
  var stall: CollectiveStall
  var epoch: Int
  var step: Int
  var timeout: Double
  var checkpointDir: String?

  var description: String {
    var text = "Error: \(stall) at epoch \(epoch), step \(step)"
    switch stall.reason {
    case .timeout: text += " (--stall-timeout \(String(format: "%g", timeout))); ending the job"
    case .interrupted: text += " while the job was being ended: the silent ranks exited or hang"
    }
    if let checkpointDir { text += ". The last checkpoint in \(checkpointDir) is intact: resume with --resume \(checkpointDir)" }
    return text
  }
}
