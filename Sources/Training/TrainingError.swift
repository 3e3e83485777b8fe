import Collectives
import Datasets
import Foundation
import Layers
import Optimizers
import TensorCore

/// The loss became NaN or infinite. It is computed from all-reduced values, so every rank raises it at the same step.
public struct NonFiniteLoss: RaisedOnEveryRank, CustomStringConvertible {
  public var epoch: Int
  public var step: Int
  public var loss: Double
  public var learningRate: Double
  public var description: String {
    "the training loss became \(loss) at epoch \(epoch), step \(step) (learning rate \(learningRate))"
  }
}

/// The ranks agreed to stop after step `step` of epoch `epoch` (1-based; that step is done).
public struct StopRequested: Error {
  public var epoch: Int
  public var step: Int
}
