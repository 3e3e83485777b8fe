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
  /// How many times it was started before (sweep.json counts them).
  public var tries = 0

  public init(status: RunStatus?, epochs: [EpochRecord], checkpoint: [UInt8]?, seconds: Double, closedForm: JSON? = nil, tries: Int = 0) {
    self.tries = tries
    self.status = status
    self.epochs = epochs
    self.checkpoint = checkpoint
    self.seconds = seconds
    self.closedForm = closedForm
  }
}
