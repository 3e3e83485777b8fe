import TensorCore

/// Samples held in memory: features (pixels as bytes, or real values) and targets (class indices or values).
///
/// Pixels stay bytes until a batch is gathered (x / 255 then), so the 60,000 Fashion-MNIST images take 47 MB per
/// rank rather than 188 MB as Float.
public struct Dataset: Sendable {
  public enum Features: Sendable {
    /// Bytes 0-255 (images), read as byte / divisor (x / 255, rounded once, as numpy and PyTorch compute it).
    case bytes([UInt8], divisor: Double)
    /// Real values (CSV).
    case reals([Double])
    /// Token ids of a vocabulary (text): the model's embedding reads them; they are never scaled.
    case tokens([Int32])
  }

  public var features: Features
  public let count: Int
  /// One sample's feature shape: [1, 28, 28] for images, [d] for tables.
  public let sampleShape: [Int]
  /// Class index of each sample (classification), else empty; `labelsPerSample` of them a sample for a sequence (the
  /// next character at each of a text window's positions).
  public var labels: [Int32]
  public let labelsPerSample: Int
  /// The classes' names when they are not "0", "1", ...: a text's vocabulary (its characters).
  public var classNames: [String]
  /// Target values, count x targetWidth (regression), else empty.
  public var targets: [Double]
  public let task: LearningTask
  /// Number of classes (classification), else 0.
  public let classCount: Int
  /// Column names of the features (tables with a header), else empty.
  public var featureNames: [String]
  public var targetName: String

  public var featureCount: Int { sampleShape.reduce(1, *) }
  public var targetWidth: Int { task == .regression ? (count == 0 ? 1 : targets.count / count) : 1 }

  public init(features: Features, count: Int, sampleShape: [Int], labels: [Int32] = [], targets: [Double] = [],
              task: LearningTask, classCount: Int = 0, featureNames: [String] = [], targetName: String = "target",
              labelsPerSample: Int = 1, classNames: [String] = []) {
    let d = sampleShape.reduce(1, *)
    switch features {
    case .bytes(let b, _): precondition(b.count == count * d, "\(b.count) feature bytes for \(count) x \(d)")
    case .reals(let r): precondition(r.count == count * d, "\(r.count) feature values for \(count) x \(d)")
    case .tokens(let t): precondition(t.count == count * d, "\(t.count) tokens for \(count) x \(d)")
    }
    precondition(task == .classification ? labels.count == count * labelsPerSample : targets.count % max(count, 1) == 0,
                 "targets do not match \(count) samples")
    precondition(classNames.isEmpty || classNames.count == classCount, "\(classNames.count) class names for \(classCount) classes")
    self.labelsPerSample = labelsPerSample
    self.classNames = classNames
    self.features = features
    self.count = count
    self.sampleShape = sampleShape
    self.labels = labels
    self.targets = targets
    self.task = task
    self.classCount = classCount
    self.featureNames = featureNames
    self.targetName = targetName
  }

  /// The samples at `indices`, in that order.
  public func subset<C: Collection<Int>>(_ indices: C) -> Dataset {
    let d = featureCount
    let f: Features
    switch features {
    case .bytes(let b, let s):
      var out = [UInt8](); out.reserveCapacity(indices.count * d)
      for i in indices { out.append(contentsOf: b[i * d..<(i + 1) * d]) }
      f = .bytes(out, divisor: s)
    case .reals(let r):
      var out = [Double](); out.reserveCapacity(indices.count * d)
      for i in indices { out.append(contentsOf: r[i * d..<(i + 1) * d]) }
      f = .reals(out)
    case .tokens(let t):
      var out = [Int32](); out.reserveCapacity(indices.count * d)
      for i in indices { out.append(contentsOf: t[i * d..<(i + 1) * d]) }
      f = .tokens(out)
    }
    let w = targetWidth
    return Dataset(
      features: f, count: indices.count, sampleShape: sampleShape,
      labels: task == .classification ? self.labels(at: indices) : [],
      targets: task == .regression ? indices.flatMap { targets[$0 * w..<($0 + 1) * w] } : [],
      task: task, classCount: classCount, featureNames: featureNames, targetName: targetName, labelsPerSample: labelsPerSample,
      classNames: classNames)
  }

  /// Features of the samples at `indices` as a batch (B, sampleShape...).
  public func features<T: Scalar, C: Collection<Int>>(at indices: C, as: T.Type = T.self) -> Tensor<T> {
    let d = featureCount
    return Tensor(shape: [indices.count] + sampleShape) { out in
      let o = Tensor.base(out)
      var row = 0
      switch features {
      case .bytes(let b, let s):
        let divisor = T(s)
        b.withUnsafeBufferPointer { b in
          for i in indices { T.convert(b.baseAddress! + i * d, dividedBy: divisor, into: o + row * d, count: d); row += 1 }
        }
      case .reals(let r):
        r.withUnsafeBufferPointer { r in
          for i in indices { T.convert(r.baseAddress! + i * d, into: o + row * d, count: d); row += 1 }
        }
      case .tokens(let t):
        for i in indices {
          for j in 0..<d { o[row * d + j] = T(Int(t[i * d + j])) }
          row += 1
        }
      }
    }
  }

  /// Class labels of the samples at `indices` (`labelsPerSample` a sample).
  public func labels<C: Collection<Int>>(at indices: C) -> [Int32] {
    let k = labelsPerSample
    return k == 1 ? indices.map { labels[$0] } : indices.flatMap { labels[$0 * k..<($0 + 1) * k] }
  }

  /// Targets of the samples at `indices`, (B, targetWidth): the values (regression) or one-hot rows of the labels
  /// (classification, for losses such as MSE that compare with values).
  public func targetValues<T: Scalar, C: Collection<Int>>(at indices: C, as: T.Type = T.self) -> Tensor<T> {
    switch task {
    case .regression:
      let w = targetWidth
      var out: [T] = []; out.reserveCapacity(indices.count * w)
      for i in indices { for j in 0..<w { out.append(T(targets[i * w + j])) } }
      return Tensor(shape: [indices.count, w], scalars: out)
    case .classification:
      let k = labelsPerSample
      var out = Tensor<T>(zeros: [indices.count] + (k > 1 ? [k] : []) + [classCount])
      for (row, label) in labels(at: indices).enumerated() { out.scalars[row * classCount + Int(label)] = 1 }
      return out
    }
  }

  /// The real-valued features (tables) or the bytes times their scale (images), row-major.
  public var featureValues: [Double] {
    switch features {
    case .bytes(let b, let s): b.map { Double($0) / s }
    case .reals(let r): r
    case .tokens(let t): t.map { Double($0) }
    }
  }
}

/// Per-feature standardisation x' = (x - mean) / std, with the statistics of the training rows.
extension Dataset {
  /// The first feature value whose magnitude exceeds `limit` (infinities included): (row, column, value).
  public func firstFeature(beyond limit: Double) -> (row: Int, column: Int, value: Double)? {
    guard case .reals(let x) = features else { return nil }
    let d = featureCount
    guard let k = x.firstIndex(where: { $0.magnitude > limit }) else { return nil }
    return (k / d, k % d, x[k])
  }
}

extension Dataset {
  /// Rows held in memory with class labels 0 ..< classes (the largest label + 1 when not given).
  public static func table(features rows: [[Double]], labels: [Int], classes: Int? = nil, names: [String] = []) -> Dataset {
    precondition(rows.count == labels.count, "\(rows.count) rows for \(labels.count) labels")
    let d = rows.first?.count ?? 0
    precondition(rows.allSatisfy { $0.count == d }, "every row needs \(d) features")
    precondition(labels.allSatisfy { $0 >= 0 }, "labels are 0, 1, 2, ...")
    return Dataset(features: .reals(rows.flatMap { $0 }), count: rows.count, sampleShape: [d], labels: labels.map { Int32($0) },
                   task: .classification, classCount: classes ?? ((labels.max() ?? 0) + 1),
                   featureNames: names.isEmpty ? (0..<d).map { "x\($0 + 1)" } : names)
  }

  /// Rows held in memory with real-valued targets (one row of targets per sample).
  public static func table(features rows: [[Double]], targets: [[Double]], names: [String] = []) -> Dataset {
    precondition(rows.count == targets.count, "\(rows.count) rows for \(targets.count) targets")
    let d = rows.first?.count ?? 0, k = targets.first?.count ?? 1
    precondition(rows.allSatisfy { $0.count == d } && targets.allSatisfy { $0.count == k }, "rows of one width")
    return Dataset(features: .reals(rows.flatMap { $0 }), count: rows.count, sampleShape: [d], targets: targets.flatMap { $0 },
                   task: .regression, featureNames: names.isEmpty ? (0..<d).map { "x\($0 + 1)" } : names)
  }
}
