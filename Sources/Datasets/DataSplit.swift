import TensorCore

/// A data set's training and test parts (the test part may be empty: corn trains on all 10 rows), and a
/// validation part held out of the training rows when asked for (sweeps choose settings by it).
public struct DataSplit: Sendable {
  public var name: String
  public var train: Dataset
  public var test: Dataset
  public var validation: Dataset?
  /// For a CSV: whether its first row was read as column names.
  public var header: CSVHeaderNote?
  /// A CSV's feature columns as the file holds them, when some hold text (categories) or gaps (`TableEncoding`):
  /// saved with the model, so that later files are encoded as the training rows were.
  public var columns: [TableColumn]?
  /// What a lenient load accepted that a plain one refuses.
  public var warnings: [DataWarning] = []
  /// Where the rows came from, when dpt loaded them (`Catalog.load`); nil for rows a program made.
  public var origin: DataOrigin?

  /// `test` defaults to no rows (every row trains).
  public init(name: String, train: Dataset, test: Dataset? = nil, validation: Dataset? = nil) {
    self.name = name
    self.train = train
    self.test = test ?? train.subset([])
    self.validation = validation
  }

  /// Holds `fraction` of the training rows out as the validation set, chosen by `seed` (the test set is untouched).
  public func holdingOutValidation(fraction: Double, seed: UInt64) throws -> DataSplit {
    guard fraction > 0 else { return self }
    guard fraction < 1 else { throw DataProblem.validationFraction(fraction) }
    let n = Int((Double(train.count) * fraction).rounded())
    guard n >= 1, train.count - n >= 1 else {
      throw DataProblem.validationSplitEmpty(dataSet: name, fraction: fraction, trainingRows: train.count, heldOut: n)
    }
    var rng = RandomSource(seed: seed, stream: 0x7A11_DA7E)
    let order = rng.permutation(train.count)
    var split = DataSplit(name: name, train: train.subset(order[n...]), test: test, validation: train.subset(order[..<n]))
    split.header = header
    split.columns = columns
    split.warnings = warnings
    split.origin = origin
    split.origin?.validationFraction = fraction
    return split
  }
}

/// The data set a run loaded, as its records name it: the source, the test fraction asked for (nil: the data set's
/// default) and the validation fraction held out. With the seed, it is enough to load the same split again.
public struct DataOrigin: Equatable, Sendable, Codable {
  public var source: DatasetSource
  public var testFraction: Double?
  /// The fraction of the training rows held out for validation (with the seed), nil when none was.
  public var validationFraction: Double?

  public init(source: DatasetSource, testFraction: Double? = nil, validationFraction: Double? = nil) {
    self.source = source
    self.testFraction = testFraction
    self.validationFraction = validationFraction
  }
}
