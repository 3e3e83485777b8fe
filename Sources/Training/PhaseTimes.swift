import Collectives
import Datasets
import Foundation
import Layers
import Optimizers
import TensorCore
import _Support

/// Seconds this rank spent in each phase of the training steps.
public struct PhaseTimes: Sendable {
  /// Gathering and converting the batch.
  public var data = 0.0
  public var forward = 0.0
  public var loss = 0.0
  public var backward = 0.0
  /// The gradient exchange, including waiting for slower ranks (and, for overlapped buckets, the time the backward
  /// pass spends starting and testing them).
  public var exchange = 0.0
  public var optimizer = 0.0

  public init() {}

  public mutating func add(_ o: PhaseTimes) {
    data += o.data
    forward += o.forward
    loss += o.loss
    backward += o.backward
    exchange += o.exchange
    optimizer += o.optimizer
  }

  public var named: [(String, Double)] {
    [("data", data), ("forward", forward), ("loss", loss), ("backward", backward), ("exchange", exchange),
     ("optimizer", optimizer)]
  }
}

/// Laps of a monotonic clock.
struct PhaseClock {
  private var last = WallClock.now()
  mutating func lap() -> Double {
    let now = WallClock.now()
    defer { last = now }
    return now - last
  }
}
