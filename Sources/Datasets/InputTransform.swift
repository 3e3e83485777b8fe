import Foundation
import _Support

/// What turns a data file's raw values into a model's inputs, and its outputs back into names: fitted once on the
/// training rows, saved with the model (the checkpoint, the safetensors metadata of `dpt export`, the first module of
/// `dpt export --pytorch`), and applied unchanged wherever the model later reads rows (`eval`, `predict`), so that a
/// row's prediction never depends on the other rows of the file it arrives in.
///
/// A feature x_j of a table becomes (x_j - mean_j) / std_j (standardised) or stays x_j; an image's byte b becomes
/// b / 255.
public struct InputTransform: Codable, Equatable, Sendable {
  /// How raw feature values become the model's inputs.
  public enum Scaling: Codable, Equatable, Sendable {
    /// The values as given.
    case none
    /// (x_j - mean_j) / std_j, with the training rows' statistics.
    case standardize(Standardization)
    /// x / divisor (image bytes: 255).
    case divide(Double)
  }

  public var scaling: Scaling
  /// One sample's shape as the model reads it ([d] for a table, [1, 28, 28] for MNIST).
  public var sampleShape: [Int]
  /// The feature columns in the model's order: a table's header names (`namedColumns`), else x1, x2, ... .
  public var featureNames: [String]
  /// Whether `featureNames` are a header's names, by which a new file's columns are found.
  public var namedColumns: Bool
  public var task: LearningTask
  /// Class k's name (classification): the label value k as written, "0", "1", ... .
  public var classNames: [String]
  /// The label column's name (classification), or the target columns' names (regression).
  public var targetNames: [String]
  /// A text model's vocabulary, its characters in the order of their ids (the inputs are ids of it, and so are the
  /// classes); nil for tables and images.
  public var vocabulary: [String]?
  /// A sequence model's outputs a sample: one class (the next character) at each of its positions; nil for one.
  public var positions: Int?
  /// A CSV's feature columns before encoding, when some held text (categories, one-hot features) or gaps (filled by
  /// `--missing mean`'s training means): a new file's rows are encoded by them (`TableEncoding`); nil for a table of
  /// numbers alone, whose features are its columns.
  public var tableColumns: [TableColumn]?

  public init(scaling: Scaling, sampleShape: [Int], featureNames: [String], namedColumns: Bool, task: LearningTask,
              classNames: [String], targetNames: [String]) {
    self.scaling = scaling
    self.sampleShape = sampleShape
    self.featureNames = featureNames
    self.namedColumns = namedColumns
    self.task = task
    self.classNames = classNames
    self.targetNames = targetNames
  }

  /// The transform of `data`'s training rows: its standardisation `standardization` (nil: none, or image bytes).
  public init(fitted data: DataSplit, standardization: Standardization?) {
    let train = data.train
    let scaling: Scaling
    switch train.features {
    case .bytes(_, let divisor): scaling = .divide(divisor)
    case .reals: scaling = standardization.map(Scaling.standardize) ?? .none
    case .tokens: scaling = .none
    }
    var named = false
    if case .header? = data.header { named = true }
    let targets = train.task == .classification ? [train.targetName] : train.targetName.split(separator: ",").map(String.init)
    self.init(scaling: scaling, sampleShape: train.sampleShape, featureNames: train.featureNames, namedColumns: named,
              task: train.task, classNames: train.task == .classification
                ? (train.classNames.isEmpty ? (0..<train.classCount).map(String.init) : train.classNames) : [],
              targetNames: targets)
    if case .tokens = train.features {
      vocabulary = train.classNames
      positions = train.labelsPerSample
    }
    tableColumns = data.columns
  }

  /// Features per sample.
  public var featureCount: Int { sampleShape.reduce(1, *) }
  /// Outputs per sample that the data asks for: classes, or target columns.
  public var outputCount: Int { task == .classification ? classNames.count : targetNames.count }

  /// The standardisation, when the features are standardised.
  public var standardization: Standardization? {
    if case .standardize(let s) = scaling { return s }
    return nil
  }

  /// A model's input row from a raw one (a table's values as written, an image's bytes as numbers 0-255).
  public func apply(row x: [Double]) -> [Double] {
    switch scaling {
    case .none: x
    case .standardize(let s): s.apply(row: x)
    case .divide(let d): x.map { $0 / d }
    }
  }

  /// Its JSON form (config.json's and the checkpoint's "input_transform", the export's "dpt_input_transform").
  public var json: JSON {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    guard let bytes = try? encoder.encode(self), let j = try? JSON.parse(bytes: Array(bytes)) else { return .null }
    return j
  }

  /// From its JSON form; nil when `json` is absent (a model saved by an earlier dpt).
  public init?(json: JSON?) throws {
    guard let json, json != .null else { return nil }
    self = try JSONDecoder().decode(InputTransform.self, from: Data(json.serialized().utf8))
  }

  /// The features of a table's rows as the model was trained to read them, found in `table` (a file given to
  /// `predict` or `eval`): by the header's names when both have names, else by position (the features first). Also
  /// returns the labels or targets when the file holds them (nil when it holds features only).
  public func columns(of table: NumericTable, path: String) throws -> (features: [Double], labels: [Double]?) {
    if let tableColumns {
      return try TableEncoding.encode(table, path: path, columns: tableColumns, byName: namedColumns, task: task, classNames: classNames,
                                      targetNames: targetNames)
    }
    try table.requireNumbers(path: path, "the model was trained on numbers alone")
    let d = featureCount, n = table.rows, w = table.columns
    var featureColumns: [Int], labelColumns: [Int]?
    if namedColumns, let header = table.header {
      featureColumns = try featureNames.map { name in
        guard let j = header.firstIndex(of: name) else {
          throw DataProblem.malformed("\(path): no column named \(quoted(name)); the model reads the columns \(Self.list(featureNames))")
        }
        return j
      }
      let found = targetNames.map { header.firstIndex(of: $0) }
      labelColumns = found.allSatisfy { $0 != nil } ? found.map { $0! } : nil
    } else if w == d {
      (featureColumns, labelColumns) = (Array(0..<d), nil)
    } else if w == d + targetNames.count {
      (featureColumns, labelColumns) = (Array(0..<d), Array(d..<w))
    } else {
      let labels = task == .classification ? "a class label" : counted(targetNames.count, "target")
      throw DataProblem.malformed("\(path): \(counted(w, "column")) a row; the model reads \(counted(d, "feature")) (with or without \(labels) after them)\(namedColumns ? ": give the file a header with the columns \(Self.list(featureNames))" : "")")
    }
    var x = [Double](), y: [Double]? = labelColumns.map { _ in [] }
    x.reserveCapacity(n * d)
    for i in 0..<n {
      let row = table.values[i * w..<(i + 1) * w]
      for j in featureColumns { x.append(row[row.startIndex + j]) }
      if let labelColumns { for j in labelColumns { y!.append(row[row.startIndex + j]) } }
    }
    return (x, y)
  }

  public static func list(_ names: [String]) -> String {
    names.prefix(6).map { quoted($0) }.joined(separator: ", ") + (names.count > 6 ? ", ... (\(names.count) in all)" : "")
  }
}
