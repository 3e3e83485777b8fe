import Collectives
import Datasets
import Foundation
import TensorCore
import _Support

/// One rank's rows of the augmented design matrix [1 | X | Y], row-major: the intercept column (when the model has
/// one), the features, then the targets.
public struct DesignBlock {
  public var values: [Double]
  public let rows: Int
  public let features: Int
  public let outputs: Int
  public let intercept: Bool
  /// Names of the parameters (rows of theta): "intercept" (when fitted), then the features.
  public var names: [String]

  /// p: the intercept (when fitted) and one coefficient per feature.
  public var parameters: Int { (intercept ? 1 : 0) + features }
  public var width: Int { parameters + outputs }

  public init(rows: Int, features: Int, outputs: Int, intercept: Bool, values: [Double], names: [String]? = nil) {
    precondition(values.count == rows * ((intercept ? 1 : 0) + features + outputs), "design block shape")
    self.rows = rows
    self.features = features
    self.outputs = outputs
    self.intercept = intercept
    self.values = values
    self.names = names ?? ((intercept ? ["intercept"] : []) + (0..<features).map { "x\($0 + 1)" })
  }

  /// The rows `range` of a data set; targets are its values (regression) or one-hot rows (classification).
  public init(_ data: Dataset, rows range: Range<Int>, intercept: Bool) {
    let d = data.featureCount
    let k = data.task == .regression ? data.targetWidth : data.classCount
    let width = (intercept ? 1 : 0) + d + k
    var v = [Double](repeating: 0, count: range.count * width)
    let y: [Double] = range.isEmpty ? [] : data.targetValues(at: range, as: Double.self).scalars
    for (r, i) in range.enumerated() {
      var o = r * width
      if intercept { v[o] = 1; o += 1 }
      switch data.features {
      case .bytes(let b, let s): for j in 0..<d { v[o + j] = Double(b[i * d + j]) / s }
      case .reals(let x): for j in 0..<d { v[o + j] = x[i * d + j] }
      case .tokens(let t): for j in 0..<d { v[o + j] = Double(t[i * d + j]) }
      }
      for j in 0..<k { v[o + d + j] = y[r * k + j] }
    }
    let featureNames = data.featureNames.count == d ? data.featureNames : (0..<d).map { "x\($0 + 1)" }
    self.init(rows: range.count, features: d, outputs: k, intercept: intercept, values: v,
              names: (intercept ? ["intercept"] : []) + featureNames)
  }
}
