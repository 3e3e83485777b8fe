import Training
import Collectives
import Datasets
import FileFormats
import Foundation
import _Support

/// Where a trial stood when a sweep was interrupted (`dpt sweep --resume`): a final status keeps it as it is; else
/// it continues from its checkpoint (nil: from the start).
public struct TrialProgress: Sendable {
  public var status: RunStatus?
  public var epochs: [EpochRecord]
  public var checkpoint: [UInt8]?
  public var seconds: Double
  public var closedForm: JSON?

  public init(status: RunStatus?, epochs: [EpochRecord], checkpoint: [UInt8]?, seconds: Double, closedForm: JSON? = nil) {
    self.status = status
    self.epochs = epochs
    self.checkpoint = checkpoint
    self.seconds = seconds
    self.closedForm = closedForm
  }
}
