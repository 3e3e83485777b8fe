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
  /// --trace's recording of the traced steps (every layer's values gathered to rank 0).
  public var trace = 0.0

  public init() {}

  public mutating func add(_ o: PhaseTimes) {
    data += o.data
    forward += o.forward
    loss += o.loss
    backward += o.backward
    exchange += o.exchange
    optimizer += o.optimizer
    statistics += o.statistics
    trace += o.trace
  }

  public var named: [(String, Double)] {
    [("data", data), ("forward", forward), ("loss", loss), ("backward", backward), ("exchange", exchange),
     ("optimizer", optimizer)] + (statistics > 0 ? [("statistics", statistics)] : []) + (trace > 0 ? [("trace", trace)] : [])
  }
}

/// Laps of a monotonic clock; with a timeline, each lap is also a span of it.
struct PhaseClock {
  private var last = WallClock.now()
  mutating func lap() -> Double {
    let now = WallClock.now()
    defer { last = now }
    return now - last
  }

  /// A lap that is also the span `name` of `timeline` (when there is one).
  mutating func lap(_ name: String, _ timeline: Timeline?) -> Double {
    let start = last
    let seconds = lap()
    timeline?.record(name, from: start, to: last)
    return seconds
  }
}

/// Spans of time on this rank, for `--timeline`: Chrome's trace format (Perfetto, chrome://tracing), one process
/// per rank. Times count from `origin`, taken by every rank at the same moment (right after a collective).
public final class Timeline: @unchecked Sendable {
  public struct Span: Sendable {
    public var name: String
    public var category: String
    public var start: Double
    public var end: Double
    /// The row it is drawn in: 0 the step's phases, 1 the exchange's buckets (which overlap the backward pass).
    public var track: Int = 0
  }
  public private(set) var spans: [Span] = []
  public let origin: Double

  public init(origin: Double = WallClock.now()) { self.origin = origin }

  public func record(_ name: String, category: String = "step", from start: Double, to end: Double = WallClock.now(),
                     track: Int = 0) {
    spans.append(Span(name: name, category: category, start: start, end: end, track: track))
  }

  /// Times `body` as the span `name`.
  public func measure<R>(_ name: String, category: String, _ body: () throws -> R) rethrows -> R {
    let start = WallClock.now()
    defer { record(name, category: category, from: start) }
    return try body()
  }

  /// This rank's spans as trace events ("X": complete events, microseconds from the origin) of process `pid`.
  public func events(pid: Int) -> [JSON] {
    spans.map { s in
      .object([("name", JSON(s.name)), ("cat", JSON(s.category)), ("ph", JSON("X")), ("pid", JSON(pid)), ("tid", JSON(s.track)),
               ("ts", JSON(((s.start - origin) * 1e6).rounded())), ("dur", JSON(max(0, (s.end - s.start) * 1e6).rounded()))])
    }
  }

  /// The trace file: every rank's events, each rank a process named "rank R on HOST".
  /// The trace's `otherData.writer`, by which a later run knows the file as a timeline dpt wrote.
  public static let writer = "dpt timeline"

  public static func traceJSON(events: [[JSON]], hosts: [String]) -> JSON {
    var all: [JSON] = []
    for (rank, e) in events.enumerated() {
      let host = hosts.indices.contains(rank) ? hosts[rank] : "?"
      all.append(.object([("name", JSON("process_name")), ("ph", JSON("M")), ("pid", JSON(rank)),
                          ("args", .object([("name", JSON("rank \(rank) on \(host)"))]))]))
      all.append(.object([("name", JSON("process_sort_index")), ("ph", JSON("M")), ("pid", JSON(rank)),
                          ("args", .object([("sort_index", JSON(rank))]))]))
      all += e
    }
    return .object([("otherData", .object([("writer", JSON(writer))])), ("traceEvents", .array(all)), ("displayTimeUnit", JSON("ms"))])
  }
}
