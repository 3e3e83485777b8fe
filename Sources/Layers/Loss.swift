import TensorCore

/// How a batch's losses make the objective (PyTorch's `reduction`).
public enum LossReduction: String, Sendable, CaseIterable, Codable {
  /// The mean over the samples (and, for the regression losses, over each sample's outputs): the default.
  case mean
  /// The sum over the samples and their outputs: a hand-out's loss of one example is then taken as written.
  case sum
}

/// A loss over a batch: the sum of per-sample losses, and its gradient with respect to the prediction.
///
/// Losses return sums, not means: a data-parallel step adds the sums of all ranks and divides once by the true
/// global batch size, so N ranks take exactly the step one rank takes on the whole batch. The regression losses are
/// means over a sample's C outputs (as PyTorch's), so that C does not change the scale of the step.
///
/// | loss | per-sample loss, prediction p (C values) | d loss / d p_j |
/// |---|---|---|
/// | crossEntropy | -log softmax(p)_y = log sum_k e^{p_k} - p_y (p are logits, class y) | softmax(p)_j - [j = y] |
/// | nll | -log p_y (p are probabilities, e.g. after a softmax layer) | -[j = y] / p_y |
/// | hinge(m) | sum_{j != y} max(0, m + p_j - p_y) (the course's; C times PyTorch's MultiMarginLoss) | [m + p_j - p_y > 0] for j != y; -(number of those) for y |
/// | hinge(m, mean) | (1/C) sum_{j != y} max(0, m + p_j - p_y) (`torch.nn.MultiMarginLoss(margin=m)`) | the above / C |
/// | mse (L2) | (1/C) sum_j (p_j - t_j)^2 | (2/C) (p_j - t_j) |
/// | half-mse | (1/C) sum_j (1/2) (p_j - t_j)^2 (the hand-outs' 0.5 (y - t)^2) | (1/C) (p_j - t_j) |
/// | l1 | (1/C) sum_j \|p_j - t_j\| | sign(p_j - t_j) / C (0 where equal) |
/// | huber(d) | (1/C) sum_j h(p_j - t_j), h(e) = e^2/2 if \|e\| <= d else d (\|e\| - d/2) | h'(e) / C: e, or d sign(e) |
/// | cosine | 1 - p.t / (\|p\| \|t\|) | -(t_j / (\|p\| \|t\|) - cos p_j / \|p\|^2) |
public enum Loss: Equatable, Sendable, CustomStringConvertible {
  case crossEntropy
  case nll
  /// The multiclass hinge; `mean` divides by the class count C, as PyTorch's MultiMarginLoss does.
  case hinge(margin: Double, mean: Bool = false)
  case mse
  /// Half the squared error, the hand-outs' 0.5 (y - t)^2: their learning rates apply as written.
  case halfMSE
  case l1
  case huber(delta: Double)
  case cosine

  /// The names `--loss` takes.
  public static let names = ["cross-entropy", "nll", "hinge", "mse", "half-mse", "l1", "huber", "cosine"]

  /// The loss named `name` ("l2" is mse), with the hinge's margin and Huber's delta.
  public static func named(_ name: String, margin: Double = 1, delta: Double = 1, hingeMean: Bool = false) -> Loss? {
    switch name {
    case "cross-entropy", "crossentropy", "ce": .crossEntropy
    case "nll": .nll
    case "hinge": .hinge(margin: margin, mean: hingeMean)
    case "mse", "l2": .mse
    case "half-mse", "half_mse": .halfMSE
    case "l1": .l1
    case "huber": .huber(delta: delta)
    case "cosine": .cosine
    default: nil
    }
  }

  public var name: String {
    switch self {
    case .crossEntropy: "cross-entropy"
    case .nll: "nll"
    case .hinge: "hinge"
    case .mse: "mse"
    case .halfMSE: "half-mse"
    case .l1: "l1"
    case .huber: "huber"
    case .cosine: "cosine"
    }
  }

  public var description: String {
    switch self {
    case .hinge(let m, let mean): "hinge(margin=\(m)\(mean ? ", mean over classes" : ""))"
    case .huber(let d): "huber(delta=\(d))"
    default: name
    }
  }

  /// Whether targets are class indices (else real-valued targets of the prediction's shape).
  public var takesClasses: Bool {
    switch self {
    case .crossEntropy, .nll, .hinge: true
    case .mse, .halfMSE, .l1, .huber, .cosine: false
    }
  }

  /// Whether the per-sample loss is a mean over the sample's C outputs (the regression losses but cosine): a sum
  /// reduction, as PyTorch's, then sums over the outputs too.
  public var averagesOutputs: Bool {
    switch self {
    case .mse, .halfMSE, .l1, .huber: true
    case .crossEntropy, .nll, .hinge, .cosine: false
    }
  }
}

/// What a loss compares the prediction with.
public enum Targets<T: Scalar> {
  /// One class index per sample.
  case classes([Int32])
  /// One target row per sample, shaped like the prediction.
  case values(Tensor<T>)
}

/// The loss of a batch: `sum` over samples, and `gradient` = d(sum)/d(prediction) when it was asked for.
public struct LossValue<T: Scalar> {
  public var sum: Double
  public var gradient: Tensor<T>?
}

extension Loss {
  /// Evaluates the loss of `prediction` (B, C), or (B, T, C) for a sequence (every position a row of its own, with
  /// its own class: B*T classes), against `targets`; with `gradient: true` also d(sum)/d(prediction).
  public func evaluate<T: LayerKernels>(_ prediction: Tensor<T>, _ targets: Targets<T>, gradient: Bool = true)
    -> LossValue<T>
  {
    let cols = prediction.shape.last!, rows = prediction.count / cols
    var g: Tensor<T>? = gradient ? Tensor(zeros: prediction.shape) : nil
    let sum: Double = prediction.withUnsafeBufferPointer { pb in
      let p = Tensor.base(pb)
      func run(_ gp: UnsafeMutablePointer<T>?) -> Double {
        switch targets {
        case .classes(let y):
          precondition(takesClasses, "\(name) takes target values, not classes")
          precondition(y.count == rows, "\(y.count) labels for \(rows) predictions")
          return y.withUnsafeBufferPointer { y in
            T.loss(self, prediction: p, classes: y.baseAddress, targets: nil, rows: rows, cols: cols, gradient: gp)
          }
        case .values(let t):
          precondition(!takesClasses, "\(name) takes classes, not target values")
          precondition(t.shape == prediction.shape, "targets \(t.shape) for predictions \(prediction.shape)")
          return t.withUnsafeBufferPointer { t in
            T.loss(self, prediction: p, classes: nil, targets: Tensor.base(t), rows: rows, cols: cols, gradient: gp)
          }
        }
      }
      if g == nil { return run(nil) }
      return g!.withUnsafeMutableBufferPointer { run(Tensor.base($0)) }
    }
    return LossValue(sum: sum, gradient: g)
  }
}

extension Loss: Codable {
  /// Encoded as `--loss` spells it, with its settings as arguments: "cross-entropy", "hinge(margin=1.0, mean=true)",
  /// "huber(delta=0.5)"; the keyed form of earlier versions (`{"mse": {}}`) is read too.
  public var spelling: String {
    switch self {
    case .hinge(let m, let mean): LayerText.call("hinge", ["margin=\(m)"] + (mean ? ["mean=true"] : []))
    case .huber(let d): LayerText.call("huber", ["delta=\(d)"])
    default: name
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(spelling)
  }

  public init(from decoder: any Decoder) throws {
    guard let text = try? decoder.singleValueContainer().decode(String.self) else {
      enum Earlier: Decodable { case crossEntropy, nll, hinge(margin: Double, mean: Bool?), mse, halfMSE, l1, huber(delta: Double), cosine }
      switch try Earlier(from: decoder) {
      case .crossEntropy: self = .crossEntropy
      case .nll: self = .nll
      case .hinge(let m, let mean): self = .hinge(margin: m, mean: mean ?? false)
      case .mse: self = .mse
      case .halfMSE: self = .halfMSE
      case .l1: self = .l1
      case .huber(let d): self = .huber(delta: d)
      case .cosine: self = .cosine
      }
      return
    }
    let bad = DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown loss '\(text)'"))
    guard let call = try? LayerArguments(call: text), call.positional.isEmpty else { throw bad }
    let k = Dictionary(call.keywords.map { ($0.key, $0.value) }) { a, _ in a }
    guard Set(k.keys).isSubset(of: ["margin", "mean", "delta"]),
          let loss = Loss.named(call.name, margin: k["margin"].flatMap(Double.init) ?? 1, delta: k["delta"].flatMap(Double.init) ?? 1,
                                hingeMean: k["mean"] == "true")
    else { throw bad }
    self = loss
  }
}
