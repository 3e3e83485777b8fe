import _Support
import TensorCore

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
      let column = data.featureNames.indices.contains(j) ? quoted(data.featureNames[j]) : "\(j + 1)"
      throw DataProblem.malformed("\(name): feature column \(column) holds values too large to standardise (its mean or standard deviation overflows): rescale the column, e.g. to other units")
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

extension DataSplit {
  /// Every set scaled with the training rows' statistics (tables only; images and other byte features are returned
  /// as they are, with nil).
  public func standardized() throws -> (split: DataSplit, scaling: Standardization?) {
    guard case .reals = train.features else { return (self, nil) }
    let s = try Standardization.fitting(train, name: name)
    return (scaled(by: s), s)
  }

  /// Every set scaled with the statistics `s` (a trained model's).
  public func scaled(by s: Standardization) -> DataSplit {
    var split = DataSplit(name: name, train: s.apply(train), test: s.apply(test), validation: validation.map(s.apply))
    split.header = header
    split.warnings = warnings
    split.origin = origin
    return split
  }
}
