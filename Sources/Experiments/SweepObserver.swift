import Training
import Collectives
import Datasets
import FileFormats
import Foundation
import _Support

/// What world rank 0 is told while a sweep runs (to write files as results arrive).
public protocol SweepObserver: AnyObject {
  func trialStarted(_ trial: SweepTrial, group: Int, earlier: [EpochRecord])
  func epochFinished(_ trial: SweepTrial, metrics: EpochRecord)
  /// The trial's checkpoint after an epoch; `best`: also its best epoch's (early stopping keeps it).
  func checkpoint(_ trial: SweepTrial, bytes: [UInt8], best: Bool)
  func trialFinished(_ outcome: TrialOutcome)
  /// The searcher proposed a setting: the plan grew (its trials are queued), and the search's state moved.
  func planChanged(_ plan: SweepPlan, searcher: any Searcher)
  /// A trial's last checkpoint as written (for a trial that continues it: population-based training's segments);
  /// nil when there is none. An observer given a sweep whose trials continue others' must give them back.
  func checkpointBytes(of trial: SweepTrial) -> [UInt8]?
}

extension SweepObserver {
  public func planChanged(_ plan: SweepPlan, searcher: any Searcher) {}
  public func checkpointBytes(of trial: SweepTrial) -> [UInt8]? { nil }
}
