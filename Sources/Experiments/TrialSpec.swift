import Training
import Collectives
import Datasets
import FileFormats
import Foundation
import _Support


/// What one trial of a sweep trains: its configuration (seed included) and its data (split by that seed).
public struct TrialSpec {
  public var config: TrainingConfig
  public var data: DataSplit
  /// What its checkpoints record as their configuration (config.json's content), for `dpt eval` and `dpt export`.
  public var record: JSON

  public init(config: TrainingConfig, data: DataSplit, record: JSON = .null) {
    self.config = config
    self.data = data
    self.record = record
  }
}
