import TensorCore

/// What a data set asks a model to predict.
public enum Task: String, Sendable, Codable {
  /// One class index per sample.
  case classification
  /// One or more real values per sample.
  case regression
}

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
  }

  public var features: Features
  public let count: Int
  /// One sample's feature shape: [1, 28, 28] for images, [d] for tables.
  public let sampleShape: [Int]
  /// Class index of each sample (classification), else empty.
  public var labels: [Int32]
  /// Target values, count x targetWidth (regression), else empty.
  public var targets: [Double]
  public let task: Task
  /// Number of classes (classification), else 0.
  public let classCount: Int
  /// Column names of the features (tables with a header), else empty.
  public var featureNames: [String]
  public var targetName: String

  public var featureCount: Int { sampleShape.reduce(1, *) }
  public var targetWidth: Int { task == .regression ? (count == 0 ? 1 : targets.count / count) : 1 }

  public init(features: Features, count: Int, sampleShape: [Int], labels: [Int32] = [], targets: [Double] = [],
              task: Task, classCount: Int = 0, featureNames: [String] = [], targetName: String = "target") {
    let d = sampleShape.reduce(1, *)
    switch features {
    case .bytes(let b, _): precondition(b.count == count * d, "\(b.count) feature bytes for \(count) x \(d)")
    case .reals(let r): precondition(r.count == count * d, "\(r.count) feature values for \(count) x \(d)")
    }
    precondition(task == .classification ? labels.count == count : targets.count % max(count, 1) == 0,
                 "targets do not match \(count) samples")
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
    }
    let w = targetWidth
    return Dataset(
      features: f, count: indices.count, sampleShape: sampleShape,
      labels: task == .classification ? indices.map { labels[$0] } : [],
      targets: task == .regression ? indices.flatMap { targets[$0 * w..<($0 + 1) * w] } : [],
      task: task, classCount: classCount, featureNames: featureNames, targetName: targetName)
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
      }
    }
  }

  /// Class labels of the samples at `indices`.
  public func labels<C: Collection<Int>>(at indices: C) -> [Int32] { indices.map { labels[$0] } }

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
      var out = Tensor<T>(zeros: [indices.count, classCount])
      for (row, i) in indices.enumerated() { out.scalars[row * classCount + Int(labels[i])] = 1 }
      return out
    }
  }

  /// The real-valued features (tables) or the bytes times their scale (images), row-major.
  public var featureValues: [Double] {
    switch features {
    case .bytes(let b, let s): b.map { Double($0) / s }
    case .reals(let r): r
    }
  }
}

/// A data set's training and test parts (the test part may be empty: corn trains on all 10 rows), and a
/// validation part held out of the training rows when asked for (sweeps choose settings by it).
public struct DataSplit: Sendable {
  public var name: String
  public var train: Dataset
  public var test: Dataset
  public var validation: Dataset?

  public init(name: String, train: Dataset, test: Dataset, validation: Dataset? = nil) {
    self.name = name
    self.train = train
    self.test = test
    self.validation = validation
  }

  /// Holds `fraction` of the training rows out as the validation set, chosen by `seed` (the test set is untouched).
  public func holdingOutValidation(fraction: Double, seed: UInt64) throws -> DataSplit {
    guard fraction > 0 else { return self }
    guard fraction < 1 else { throw DataError("--val-fraction \(fraction): must be at least 0 and below 1") }
    let n = Int((Double(train.count) * fraction).rounded())
    guard n >= 1, train.count - n >= 1 else {
      throw DataError("\(name): --val-fraction \(fraction) of \(train.count) training rows leaves \(n == 0 ? "no validation row" : "no training row"): change --val-fraction")
    }
    var rng = RandomSource(seed: seed, stream: 0x7A11_DA7E)
    let order = rng.permutation(train.count)
    return DataSplit(name: name, train: train.subset(order[n...]), test: test, validation: train.subset(order[..<n]))
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

public struct Standardization: Equatable, Sendable, Codable {
  public var mean: [Double]
  public var std: [Double]

  /// Statistics of a real-valued data set's features (a constant column gets std 1: it is only centred).
  public init(fitting data: Dataset) {
    let d = data.featureCount, n = Double(max(data.count, 1))
    let x = data.featureValues
    var mean = [Double](repeating: 0, count: d), sq = [Double](repeating: 0, count: d)
    for i in 0..<data.count { for j in 0..<d { mean[j] += x[i * d + j] } }
    for j in 0..<d { mean[j] /= n }
    for i in 0..<data.count { for j in 0..<d { let c = x[i * d + j] - mean[j]; sq[j] += c * c } }
    self.mean = mean
    self.std = sq.map { let s = ($0 / n).squareRoot(); return s > 0 ? s : 1 }
  }

  /// The statistics of `data`'s features, or an error naming the first column whose mean or spread is not a finite
  /// number (values near Double's limit, such as 1e308, overflow the sums).
  public static func fitting(_ data: Dataset, name: String) throws -> Standardization {
    let s = Standardization(fitting: data)
    if let j = s.mean.indices.first(where: { !s.mean[$0].isFinite || !s.std[$0].isFinite }) {
      let column = data.featureNames.indices.contains(j) ? "'\(data.featureNames[j])'" : "\(j + 1)"
      throw DataError("\(name): feature column \(column) holds values too large to standardise (its mean or standard deviation overflows): rescale the column, e.g. to other units")
    }
    return s
  }

  public init(mean: [Double], std: [Double]) {
    self.mean = mean
    self.std = std
  }

  public func apply(_ data: Dataset) -> Dataset {
    var out = data
    let d = data.featureCount
    var x = data.featureValues
    for i in 0..<data.count { for j in 0..<d { x[i * d + j] = (x[i * d + j] - mean[j]) / std[j] } }
    out.features = .reals(x)
    return out
  }

  public func apply(row x: [Double]) -> [Double] {
    zip(x.indices, x).map { j, v in (v - mean[j]) / std[j] }
  }
}
