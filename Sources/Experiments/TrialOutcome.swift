import Training
import Collectives
import Datasets
import FileFormats
import Foundation
import _Support

/// What became of one trial.
public struct TrialOutcome: Sendable {
  public var trial: SweepTrial
  public var status: RunStatus
  /// One metrics row per completed epoch (the keys of metrics.jsonl), those of a resumed trial's earlier run included.
  public var epochs: [EpochRecord]
  /// Wall time of the trial, on its group's leader (its earlier run's included).
  public var seconds: Double
  /// The group that ran it (-1: kept from before a resume).
  public var group: Int
  /// A linear model fitted by MSE: the closed-form ridge solution of the same problem beside its fit
  /// (`ClosedFormComparison.json`), else nil.
  public var closedForm: JSON?
  /// How many times it was started: more than once when its job failed (a rank died, a stall) and a resume went on.
  public var tries = 1

  public init(trial: SweepTrial, status: RunStatus, epochs: [EpochRecord], seconds: Double, group: Int, closedForm: JSON? = nil) {
    self.trial = trial
    self.status = status
    self.epochs = epochs
    self.seconds = seconds
    self.group = group
    self.closedForm = closedForm
  }
}
