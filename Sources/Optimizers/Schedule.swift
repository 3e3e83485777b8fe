import RealModule

/// A learning rate per optimizer step: a base schedule (constant, step, cosine) after an optional linear warmup.
///
/// - constant: lr
/// - step(every: E, gamma: g): lr g^floor(epoch / E)
/// - cosine(minimum: m): m + (lr - m) (1 + cos(pi t / T)) / 2 over the steps after the warmup
/// - warmup W epochs: the first W epochs' steps ramp linearly from lr / (warmup steps) to the schedule's value (large
///   global batches on many ranks need it: the linear scaling rule raises lr, and early steps diverge without it).
public struct LearningRateSchedule: Equatable, Sendable, Codable, CustomStringConvertible {
  public enum Kind: Equatable, Sendable {
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

extension LearningRateSchedule.Kind: Codable {
  /// Encoded as `--lr-schedule` and its flags spell it: "constant", "step(every=10, gamma=0.5)" (--lr-step-epochs,
  /// --lr-gamma), "cosine(minimum=0.001)" (--lr-min); the keyed form of earlier versions (`{"constant": {}}`) is read
  /// too.
  public var spelling: String {
    switch self {
    case .constant: "constant"
    case .step(let e, let g): "step(every=\(e), gamma=\(g))"
    case .cosine(let m): "cosine(minimum=\(m))"
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(spelling)
  }

  public init(from decoder: any Decoder) throws {
    guard let text = try? decoder.singleValueContainer().decode(String.self) else {
      enum Earlier: Decodable { case constant, step(everyEpochs: Int, gamma: Double), cosine(minimum: Double) }
      switch try Earlier(from: decoder) {
      case .constant: self = .constant
      case .step(let e, let g): self = .step(everyEpochs: e, gamma: g)
      case .cosine(let m): self = .cosine(minimum: m)
      }
      return
    }
    // name or name(key=value, ...): the few words these three take.
    var name = Substring(text), values: [Substring: Substring] = [:]
    if let open = text.firstIndex(of: "("), text.hasSuffix(")") {
      name = text[..<open]
      for pair in text[text.index(after: open)..<text.index(before: text.endIndex)].split(separator: ",") {
        let kv = pair.split(separator: "=", maxSplits: 1).map { $0.drop { $0 == " " } }
        if kv.count == 2 { values[kv[0]] = kv[1] }
      }
    }
    switch (name, values["every"].flatMap { Int($0) }, values["gamma"].flatMap { Double($0) }, values["minimum"].flatMap { Double($0) }) {
    case ("constant", nil, nil, nil) where values.isEmpty: self = .constant
    case ("step", let e?, let g?, nil) where values.count == 2: self = .step(everyEpochs: e, gamma: g)
    case ("cosine", nil, nil, let m?) where values.count == 1: self = .cosine(minimum: m)
    default:
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown learning-rate schedule '\(text)'"))
    }
  }
}
