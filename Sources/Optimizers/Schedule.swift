import RealModule

/// A learning rate per optimizer step: a base schedule (constant, step, cosine) after an optional linear warmup.
///
/// - constant: lr
/// - step(every: E, gamma: g): lr g^floor(epoch / E)
/// - cosine(minimum: m): m + (lr - m) (1 + cos(pi t / T)) / 2 over the steps after the warmup
/// - warmup W epochs: the first W epochs' steps ramp linearly from lr / (warmup steps) to the schedule's value (large
///   global batches on many ranks need it: the linear scaling rule raises lr, and early steps diverge without it).
public struct LearningRateSchedule: Equatable, Sendable, Codable, CustomStringConvertible {
  public enum Kind: Equatable, Sendable, Codable {
    case constant
    case step(everyEpochs: Int, gamma: Double)
    case cosine(minimum: Double)
  }

  public var kind: Kind
  public var warmupEpochs: Double

  public init(_ kind: Kind = .constant, warmupEpochs: Double = 0) {
    self.kind = kind
    self.warmupEpochs = warmupEpochs
  }

  /// The learning rate of optimizer step `step` (0-based), with `stepsPerEpoch` steps per epoch and `totalSteps`.
  public func rate(base: Double, step: Int, stepsPerEpoch: Int, totalSteps: Int) -> Double {
    // Clamped: epochs times steps of any size stays a step count (callers check the range; a library user may not).
    let warmupSteps = Int(min(max((warmupEpochs * Double(stepsPerEpoch)).rounded(), 0), Double(Int32.max)))
    var lr: Double
    switch kind {
    case .constant:
      lr = base
    case .step(let every, let gamma):
      lr = base * Double.pow(gamma, Double(step / max(stepsPerEpoch, 1) / max(every, 1)))
    case .cosine(let minimum):
      let span = max(totalSteps - warmupSteps, 1)
      let t = Double(min(max(step - warmupSteps, 0), span))
      lr = minimum + (base - minimum) * (1 + Double.cos(Double.pi * t / Double(span))) / 2
    }
    if step < warmupSteps { lr *= Double(step + 1) / Double(warmupSteps) }
    return lr
  }

  public var description: String {
    var s: String
    switch kind {
    case .constant: s = "constant"
    case .step(let e, let g): s = "step(every \(e) epochs, gamma \(g))"
    case .cosine(let m): s = "cosine(to \(m))"
    }
    if warmupEpochs > 0 { s += " after \(warmupEpochs) warmup epochs" }
    return s
  }
}
