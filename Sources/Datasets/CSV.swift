/// A numeric table read from CSV: an optional header row, then rows of numbers, all of the same length.
public struct NumericTable: Equatable {
  public var header: [String]?
  public var columns: Int
  /// Row-major values, rows x columns.
  public var values: [Double]
  public var rows: Int { columns == 0 ? 0 : values.count / columns }

  public init(header: [String]?, columns: Int, values: [Double]) {
    self.header = header
    self.columns = columns
    self.values = values
  }

  /// Parses CSV text. The first row is a header when any of its cells is not a number. Blank lines are skipped;
  /// a comma separates cells (a tab or semicolon when the first row holds one and no comma).
  public init(parsing text: String, path: String) throws {
    var lines: [(number: Int, text: Substring)] = []
    var number = 0
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
      number += 1
      let t = line.hasSuffix("\r") ? line.dropLast() : line
      if t.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
      lines.append((number, t))
    }
    guard let first = lines.first else { throw DataError("\(path): the file is empty (expected rows of numbers)") }
    let separator: Character = first.text.contains(",") ? "," : first.text.contains("\t") ? "\t" : first.text.contains(";") ? ";" : ","
    func cells(_ s: Substring) -> [Substring] {
      s.split(separator: separator, omittingEmptySubsequences: false).map { $0.trimmingSpaces }
    }
    var header: [String]? = nil
    var body = lines[...]
    let firstCells = cells(first.text)
    if firstCells.contains(where: { Double($0) == nil }) {
      header = firstCells.map { String($0) }
      body = body.dropFirst()
    }
    guard !body.isEmpty else { throw DataError("\(path): the file has a header but no rows of numbers") }
    let columns = header?.count ?? firstCells.count
    var values: [Double] = []
    values.reserveCapacity(body.count * columns)
    for (lineNumber, line) in body {
      let row = cells(line)
      guard row.count == columns else {
        throw DataError("\(path):\(lineNumber): \(row.count) cells where the \(header == nil ? "first row has" : "header names") \(columns): every row needs the same number of columns")
      }
      for (c, cell) in row.enumerated() {
        guard let v = Double(cell) else {
          throw DataError("\(path):\(lineNumber): column \(c + 1): '\(cell.prefix(40))' is not a number (every cell after the header must be numeric)")
        }
        guard v.isFinite else {
          throw DataError("\(path):\(lineNumber): column \(c + 1): '\(cell)' is not finite (remove or impute NaN and inf values)")
        }
        values.append(v)
      }
    }
    self.init(header: header, columns: columns, values: values)
  }

  /// Reads a CSV file, raw or gzip-compressed.
  public static func read(_ path: String) throws -> NumericTable {
    let bytes = try FileBytes.read(path)
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw DataError("\(path): not UTF-8 text (is it a CSV file?)")
    }
    return try NumericTable(parsing: text, path: path)
  }
}

extension Substring {
  fileprivate var trimmingSpaces: Substring {
    var s = self
    while let f = s.first, f == " " || f == "\t" || f == "\"" { s = s.dropFirst() }
    while let l = s.last, l == " " || l == "\t" || l == "\"" { s = s.dropLast() }
    return s
  }
}
