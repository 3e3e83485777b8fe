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
  /// Sums over the global batch inside the forward and backward passes (BatchNorm's all-reduces, with the waits
  /// for slower ranks they absorb); not counted in forward or backward.
  public var statistics = 0.0

  public init() {}

  public mutating func add(_ o: PhaseTimes) {
    data += o.data
    forward += o.forward
    loss += o.loss
    backward += o.backward
    exchange += o.exchange
    optimizer += o.optimizer
    statistics += o.statistics
  }

  public var named: [(String, Double)] {
    [("data", data), ("forward", forward), ("loss", loss), ("backward", backward), ("exchange", exchange),
     ("optimizer", optimizer)] + (statistics > 0 ? [("statistics", statistics)] : [])
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
