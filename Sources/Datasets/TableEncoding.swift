import _Support

/// What becomes of a CSV's empty cells (`--missing`).
public enum MissingValues: String, Codable, Sendable, CaseIterable, Equatable {
  /// An empty cell is an error naming its line and column (the default).
  case error
  /// Rows with an empty cell are left out (and the run says how many).
  case drop
  /// A number column's gap takes the column's mean over the training rows; a text column's gap is no category (all its
  /// one-hot features 0). The means are saved with the model and fill the gaps of the files it later predicts.
  case mean
}

/// A feature column of a CSV as the file holds it, before encoding: saved with the model (`InputTransform`), so
/// that `predict` and `eval` encode a new file's rows as the training rows were.
public struct TableColumn: Codable, Equatable, Sendable {
  public var name: String
  /// A text column's categories, in the order of its one-hot features (sorted, as sklearn's OneHotEncoder sorts
  /// them); nil for a number column.
  public var categories: [String]?
  /// What an empty cell becomes: a number column's training mean, 0 for a text column (no category); nil when an
  /// empty cell is an error (the model was trained without --missing mean).
  public var fill: Double?

  public init(name: String, categories: [String]? = nil, fill: Double? = nil) {
    (self.name, self.categories, self.fill) = (name, categories, fill)
  }

  /// The model's features this column becomes: one, or one a category.
  public var width: Int { categories?.count ?? 1 }
  /// Their names: the column's, or "name=category".
  public var featureNames: [String] { categories.map { $0.map { "\(name)=\($0)" } } ?? [name] }
}

/// A CSV's rows as a model's features and labels: text columns become one-hot features (a label column of text
/// becomes class names), empty cells are handled by `MissingValues`. One encoder for training (`fit`), and for the
/// files a trained model later reads (`encode`), so a row becomes the same features in both.
public enum TableEncoding {
  /// The text of the cell at `k` (a number's shortest form when the cell is a number in a text column); nil when
  /// the cell is empty.
  static func cellText(_ table: NumericTable, _ k: Int) -> String? {
    if let t = table.text[k] { return t }
    return table.missing.contains(k) ? nil : NumberText.compact(table.values[k])
  }

  /// The columns `fit` sees: each feature column with its categories when it holds text (fills come after the split).
  static func columns(_ table: NumericTable, features d: Int) -> [TableColumn] {
    var text = [Bool](repeating: false, count: table.columns)
    for k in table.text.keys { text[k % table.columns] = true }
    return (0..<d).map { j in
      let name = table.header?[j] ?? "x\(j + 1)"
      guard text[j] else { return TableColumn(name: name) }
      let categories = Set((0..<table.rows).compactMap { cellText(table, $0 * table.columns + j) }).sorted()
      return TableColumn(name: name, categories: categories)
    }
  }

  /// The message for an empty cell that nothing fills.
  static func gap(_ table: NumericTable, _ k: Int, path: String, label: Bool) -> DataProblem {
    let (line, column) = table.place(k)
    return .malformed(label ? "\(path):\(line): the label column \(column) is empty: --missing drop leaves out rows with empty cells"
      : "\(path):\(line): column \(column) is empty: --missing drop leaves out rows with empty cells, --missing mean fills them (a number column's training mean)")
  }

  /// The features of `rows` (row indices of `table`), `source[i]` the table column of `columns[i]`. A gap takes the
  /// column's fill, or NaN (a number column) and no category (a text column) with `gapsToFill`, else is an error.
  static func features(_ table: NumericTable, rows: [Int], source: [Int], columns: [TableColumn], path: String,
                       gapsToFill: Bool) throws -> [Double] {
    let width = columns.reduce(0) { $0 + $1.width }, w = table.columns
    var x = [Double](repeating: 0, count: rows.count * width)
    let index: [[String: Int]] = columns.map { c in
      Dictionary(uniqueKeysWithValues: (c.categories ?? []).enumerated().map { ($1, $0) })
    }
    for (r, i) in rows.enumerated() {
      var o = r * width
      for (c, column) in columns.enumerated() {
        let k = i * w + source[c]
        if let categories = column.categories {
          if let t = cellText(table, k) {
            guard let at = index[c][t] else {
              let (line, name) = table.place(k)
              throw DataProblem.malformed("\(path):\(line): column \(name) holds \(quoted(t)), a category the model was not trained on (it knows \(InputTransform.list(categories)))")
            }
            x[o + at] = 1
          } else if column.fill == nil && !gapsToFill {
            throw gap(table, k, path: path, label: false)
          }
        } else if table.missing.contains(k) {
          guard let fill = column.fill ?? (gapsToFill ? .nan : nil) else { throw gap(table, k, path: path, label: false) }
          x[o] = fill
        } else if let t = table.text[k] {
          let (line, name) = table.place(k)
          throw DataProblem.malformed("\(path):\(line): column \(name) holds \(quoted(t)), but the model reads numbers there (it was trained on a number column)")
        } else {
          x[o] = table.values[k]
        }
        o += column.width
      }
    }
    return x
  }

  /// Class indices of `rows` from the label column `j`: by `classNames` when the labels are names, else the whole
  /// numbers 0, 1, ... .
  static func classIndices(_ table: NumericTable, rows: [Int], column j: Int, classNames: [String]?, path: String) throws -> [Int32] {
    let names = classNames.map { Dictionary(uniqueKeysWithValues: $0.enumerated().map { ($1, Int32($0)) }) }
    return try rows.map { i in
      let k = i * table.columns + j
      guard let t = cellText(table, k) else { throw gap(table, k, path: path, label: true) }
      if let names {
        guard let c = names[t] else {
          let (line, name) = table.place(k)
          throw DataProblem.malformed("\(path):\(line): the label column \(name) holds \(quoted(t)), a class the model was not trained on (it knows \(InputTransform.list(classNames!)))")
        }
        return c
      }
      let v = table.values[k]
      guard table.text[k] == nil, v >= 0, v < 1_000_000, v == v.rounded() else {
        let (line, name) = table.place(k)
        throw DataProblem.classLabel(path: path, row: line, column: name, value: v)
      }
      return Int32(v)
    }
  }

  /// Targets of `rows` from the columns `js` (numbers; a gap or a text is an error).
  static func targets(_ table: NumericTable, rows: [Int], columns js: [Int], path: String) throws -> [Double] {
    var y: [Double] = []
    y.reserveCapacity(rows.count * js.count)
    for i in rows {
      for j in js {
        let k = i * table.columns + j
        if let t = table.text[k] {
          let (line, name) = table.place(k)
          throw DataProblem.malformed("\(path):\(line): the target column \(name) holds \(quoted(t)); a regression target is a number (--target class reads a text column as class names)")
        }
        guard !table.missing.contains(k) else { throw gap(table, k, path: path, label: true) }
        y.append(table.values[k])
      }
    }
    return y
  }

  /// The rows kept: all, or (`drop`) those without an empty cell.
  static func keptRows(_ table: NumericTable, missing: MissingValues) -> [Int] {
    guard missing == .drop, !table.missing.isEmpty else { return Array(0..<table.rows) }
    var gap = [Bool](repeating: false, count: table.rows)
    for k in table.missing { gap[k / table.columns] = true }
    return (0..<table.rows).filter { !gap[$0] }
  }

  /// A table with text cells or gaps as a data set: the last column the class label (`classes`), or the last `k`
  /// the targets. Returns the columns to save with the model (nil for a table of numbers alone, whose transform is
  /// as before); the gaps of number columns are NaN until `imputed` fills them from the training rows.
  public static func fit(_ table: NumericTable, path: String, classes: Bool, targets k: Int, missing: MissingValues, lenient: Bool,
                         warnings: inout [DataWarning]) throws -> (data: Dataset, columns: [TableColumn])? {
    guard !table.isNumeric else { return nil }
    let k = classes ? 1 : k
    guard table.columns > k else { throw DataProblem.tooFewColumns(path: path, columns: table.columns, targets: k) }
    let d = table.columns - k
    let rows = keptRows(table, missing: missing)
    if rows.count < table.rows { warnings.append(.rowsDropped(path: path, dropped: table.rows - rows.count, rows: table.rows)) }
    guard !rows.isEmpty else {
      throw DataProblem.malformed("\(path): every one of its \(table.rows) rows has an empty cell, and --missing drop left none: fill the gaps, or use --missing mean")
    }
    var columns = columns(table, features: d)
    if missing == .mean { for c in columns.indices where columns[c].categories != nil { columns[c].fill = 0 } }
    let x = try features(table, rows: rows, source: Array(0..<d), columns: columns, path: path, gapsToFill: missing == .mean)
    let names = columns.flatMap(\.featureNames)
    let shape = [names.count]
    let labelName = table.header?[d] ?? (classes ? "class" : "y")
    if classes {
      let labelIsText = table.text.keys.contains { $0 % table.columns == d }
      let classNames = labelIsText ? Set(rows.compactMap { cellText(table, $0 * table.columns + d) }).sorted() : nil
      let labels = try classIndices(table, rows: rows, column: d, classNames: classNames, path: path)
      let count = try classNames?.count ?? (lenient ? Int(labels.max() ?? 0) + 1 : Catalog.classCount([labels], path: path, what: "the class column \(quoted(labelName))"))
      if classNames != nil, count < 2, !lenient {
        throw DataProblem.malformed("\(path): the class column \(quoted(labelName)) holds one class (\(classNames!.first ?? "")) in every row: classification needs at least 2")
      }
      return (Dataset(features: .reals(x), count: rows.count, sampleShape: shape, labels: labels, task: .classification, classCount: count,
                      featureNames: names, targetName: labelName, classNames: classNames ?? []), columns)
    }
    let y = try targets(table, rows: rows, columns: Array(d..<table.columns), path: path)
    let targetNames = table.header.map { Array($0.suffix(k)) } ?? (1...k).map { k == 1 ? "y" : "y\($0)" }
    return (Dataset(features: .reals(x), count: rows.count, sampleShape: shape, targets: y, task: .regression, featureNames: names,
                    targetName: targetNames.joined(separator: ",")), columns)
  }

  /// The rows of `table` (a file a trained model reads: `eval`, `predict`) encoded by the model's saved `columns`:
  /// found by name when `byName` and the file has a header, else by position (the features first). Returns the
  /// features, and the label's class indices (or the targets) when the file holds that column (nil otherwise).
  static func encode(_ table: NumericTable, path: String, columns: [TableColumn], byName: Bool, task: LearningTask,
                     classNames: [String], targetNames: [String]) throws -> (features: [Double], labels: [Double]?) {
    let rows = Array(0..<table.rows), d = columns.count
    let source: [Int], labelColumns: [Int]?
    if byName, let header = table.header {
      source = try columns.map { c in
        guard let j = header.firstIndex(of: c.name) else {
          throw DataProblem.malformed("\(path): no column named \(quoted(c.name)); the model reads the columns \(InputTransform.list(columns.map(\.name)))")
        }
        return j
      }
      let found = targetNames.map { header.firstIndex(of: $0) }
      labelColumns = found.allSatisfy { $0 != nil } ? found.map { $0! } : nil
    } else if table.columns == d {
      (source, labelColumns) = (Array(0..<d), nil)
    } else if table.columns == d + targetNames.count {
      (source, labelColumns) = (Array(0..<d), Array(d..<table.columns))
    } else {
      throw DataProblem.malformed("\(path): \(counted(table.columns, "column")) a row; the model reads \(counted(d, "column")) (with or without \(task == .classification ? "a class label" : counted(targetNames.count, "target")) after them)")
    }
    let x = try features(table, rows: rows, source: source, columns: columns, path: path, gapsToFill: false)
    guard let labelColumns else { return (x, nil) }
    if task == .classification {
      let named = classNames != (0..<classNames.count).map(String.init)
      return (x, try classIndices(table, rows: rows, column: labelColumns[0], classNames: named ? classNames : nil, path: path).map(Double.init))
    }
    return (x, try targets(table, rows: rows, columns: labelColumns, path: path))
  }
}

extension DataSplit {
  /// The gaps of number columns (NaN) filled with each column's mean over the training rows, and `columns` given
  /// those means as their fills (`--missing mean`); unchanged for other policies.
  func imputed(_ columns: [TableColumn], missing: MissingValues, path: String) throws -> DataSplit {
    var out = self
    out.columns = columns
    guard missing == .mean else { return out }
    var starts: [Int] = [], o = 0
    for c in columns { starts.append(o); o += c.width }
    guard case .reals(var train) = self.train.features else { return out }
    let d = o, n = self.train.count
    for (c, column) in columns.enumerated() where column.categories == nil {
      let j = starts[c]
      var sum = 0.0, count = 0
      for i in 0..<n where !train[i * d + j].isNaN { sum += train[i * d + j]; count += 1 }
      guard count > 0 else {
        throw DataProblem.malformed("\(path): column \(quoted(column.name)) is empty in every training row: there is no mean to fill it with; drop the column")
      }
      out.columns![c].fill = sum / Double(count)
    }
    func fill(_ x: inout [Double]) {
      for (c, column) in out.columns!.enumerated() where column.categories == nil {
        let j = starts[c], m = column.fill!
        for i in stride(from: j, to: x.count, by: d) where x[i].isNaN { x[i] = m }
      }
    }
    fill(&train)
    out.train.features = .reals(train)
    if case .reals(var test) = self.test.features { fill(&test); out.test.features = .reals(test) }
    return out
  }
}
