import TensorCore

/// Which parameters the weight decay applies to: every parameter (PyTorch's default), or all but the biases
/// (the convention of ridge regression, whose penalty leaves the intercept out).
public struct DecayMask: Equatable, Sendable {
  /// Ranges of the flat buffer that are decayed; the rest is not.
  public var decayed: [Range<Int>]
  public let count: Int

  public static func all(_ count: Int) -> DecayMask { DecayMask(decayed: [0..<count], count: count) }

  public init(decayed: [Range<Int>], count: Int) {
    self.decayed = decayed
    self.count = count
  }

  /// The buffer split into consecutive ranges, each with whether it decays.
  public var segments: [(range: Range<Int>, decays: Bool)] {
    var out: [(Range<Int>, Bool)] = []
    var at = 0
    for r in decayed.sorted(by: { $0.lowerBound < $1.lowerBound }) where !r.isEmpty {
      if r.lowerBound > at { out.append((at..<r.lowerBound, false)) }
      out.append((r, true))
      at = r.upperBound
    }
    if at < count { out.append((at..<count, false)) }
    return out
  }

  /// The segments cut to `range` (the empty ones left out).
  public func segments(within range: Range<Int>) -> [(range: Range<Int>, decays: Bool)] {
    segments.compactMap { s in
      let r = s.range.clamped(to: range)
      return r.isEmpty ? nil : (r, s.decays)
    }
  }

  /// Runs `body` on each segment within `range` with the decay that applies there (wd or 0).
  func forEachSegment(weightDecay wd: Double, within range: Range<Int>,
                      _ body: (_ offset: Int, _ count: Int, _ decay: Double) -> Void) {
    for (r, decays) in segments(within: range) { body(r.lowerBound, r.count, decays ? wd : 0) }
  }
}

/// p *= 1 - lr lambda over the decayed parameters within `range` (decoupled weight decay: SGDW, AdamW).
func applyDecoupledDecay<T: OptimizerKernels>(_ p: UnsafeMutableBufferPointer<T>, rate: Double, learningRate: Double,
                                             mask: DecayMask, range: Range<Int>) {
  guard rate > 0 else { return }
  mask.forEachSegment(weightDecay: rate, within: range) { o, n, lambda in
    if lambda > 0 { T.scal(n, T(1 - learningRate * lambda), Tensor.base(p) + o) }
  }
}

/// ", weight-decay=0.0005" and ", decoupled-weight-decay=0.01" when set: the decays of a summary (the L2 decay is
/// always shown, so that a run's header says what it used).
func decaySummary(_ weightDecay: Double, _ decoupled: Double) -> String {
  ", weight-decay=\(weightDecay)" + (decoupled > 0 ? ", decoupled-weight-decay=\(decoupled)" : "")
}

/// An optimizer's weight decays over the parameters `mask` names: L2 (wd p added to the gradient) and decoupled
/// (p *= 1 - lr lambda before the step: SGDW, AdamW). Every first-order optimizer holds one.
public struct WeightDecay: Equatable, Sendable {
  public var l2: Double
  public var decoupled: Double
  public var mask: DecayMask

  public init(l2: Double = 0, decoupled: Double = 0, mask: DecayMask) {
    precondition(l2 >= 0 && decoupled >= 0, "weight decay must be >= 0")
    self.l2 = l2
    self.decoupled = decoupled
    self.mask = mask
  }

  /// The decoupled shrink over the decayed parameters within `range`.
  func applyDecoupled<T: OptimizerKernels>(_ p: UnsafeMutableBufferPointer<T>, learningRate: Double, range: Range<Int>) {
    applyDecoupledDecay(p, rate: decoupled, learningRate: learningRate, mask: mask, range: range)
  }

  /// Runs `body` on each segment within `range` with the L2 decay that applies there (wd or 0).
  func forEachSegment(within range: Range<Int>, _ body: (_ offset: Int, _ count: Int, _ decay: Double) -> Void) {
    mask.forEachSegment(weightDecay: l2, within: range, body)
  }

  /// ", weight-decay=0.0005, decoupled-weight-decay=0.01" (see `decaySummary`).
  var summary: String { decaySummary(l2, decoupled) }
}
