import _Support
import Foundation

/// A table read from CSV: an optional header row, then rows of cells, all of the same length. A cell is a number,
/// a text (a category: `TableEncoding` makes one-hot features or class names of a text column) or empty (a gap:
/// `--missing` says what becomes of it).
public struct NumericTable: Equatable {
  public var header: [String]?
  public var columns: Int
  /// Row-major values, rows x columns; NaN where a cell is text or empty.
  public var values: [Double]
  /// The cells that are not numbers, by their place in `values` (row * columns + column), trimmed.
  public var text: [Int: String] = [:]
  /// The empty cells (and "nan", as pandas writes a gap), by their place in `values`.
  public var missing: Set<Int> = []
  /// The file's line number of each row (for messages; 1-based, the header's line counted).
  public var lines: [Int] = []
  public var rows: Int { columns == 0 ? 0 : values.count / columns }

  public init(header: [String]?, columns: Int, values: [Double]) {
    self.header = header
    self.columns = columns
    self.values = values
    self.lines = (0..<(columns == 0 ? 0 : values.count / columns)).map { $0 + 1 + (header == nil ? 0 : 1) }
  }

  /// Whether every cell is a number.
  public var isNumeric: Bool { text.isEmpty && missing.isEmpty }

  /// The line and the column's name (or number) of the cell at `k` in `values`.
  public func place(_ k: Int) -> (line: Int, column: String) {
    let j = k % columns
    return (lines.indices.contains(k / columns) ? lines[k / columns] : k / columns + 1, header.map { quoted($0[j]) } ?? "\(j + 1)")
  }

  /// Throws, naming the first cell that is text or empty, for readers that take numbers only (`what` says what the
  /// file holds, e.g. "every cell after the header must be numeric").
  public func requireNumbers(path: String, _ what: String = "every cell after the header must be numeric") throws {
    guard let k = (Array(text.keys) + Array(missing)).min() else { return }
    let line = lines.indices.contains(k / columns) ? lines[k / columns] : k / columns + 1
    guard let cell = text[k] else {
      throw DataProblem.malformed("\(path):\(line): column \(k % columns + 1) is empty or NaN (\(what))")
    }
    throw DataProblem.malformed("\(path):\(line): column \(k % columns + 1): \(quoted(cell)) is not a number (\(what))")
  }

  public init(parsing text: String, path: String, header: CSVHeader = .auto) throws {
    try self.init(parsing: Array(text.utf8), path: path, header: header)
  }

  /// Parses CSV bytes. The first row is a header when `header` says so; with `.auto`, when one of its cells is text
  /// (neither a number nor empty). A UTF-8 byte-order mark is skipped. Lines end in \n or \r\n; blank lines are skipped; a comma separates
  /// cells (a tab or semicolon when the first row holds one and no comma); spaces and double quotes around a cell are
  /// ignored. Numbers are read by strtod in the C locale.
  public init(parsing bytes: [UInt8], path: String, header headerRow: CSVHeader = .auto) throws {
    var lines: [(number: Int, range: Range<Int>)] = []
    // A byte-order mark (spreadsheets write one) is not part of the first cell.
    var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    var number = 0
    while start <= bytes.count {
      let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
      number += 1
      var stop = end
      if stop > start && bytes[stop - 1] == 0x0D { stop -= 1 }
      if bytes[start..<stop].contains(where: { $0 != 0x20 && $0 != 0x09 }) { lines.append((number, start..<stop)) }
      start = end + 1
    }
    guard let first = lines.first else { throw DataProblem.malformed("\(path): the file is empty (expected rows of numbers)") }
    let firstLine = bytes[first.range]
    let separator: UInt8 = firstLine.contains(0x2C) ? 0x2C : firstLine.contains(0x09) ? 0x09 : firstLine.contains(0x3B) ? 0x3B : 0x2C

    // One copy of the text with a NUL after every cell, for strtod.
    var scratch = [CChar](repeating: 0, count: 64)
    func cells(_ r: Range<Int>) -> [Range<Int>] {
      var out: [Range<Int>] = []
      var s = r.lowerBound
      for i in r where bytes[i] == separator {
        out.append(trim(s..<i))
        s = i + 1
      }
      out.append(trim(s..<r.upperBound))
      return out
    }
    func trim(_ r: Range<Int>) -> Range<Int> {
      var (a, b) = (r.lowerBound, r.upperBound)
      while a < b, [0x20, 0x09, 0x22].contains(bytes[a]) { a += 1 }
      while b > a, [0x20, 0x09, 0x22].contains(bytes[b - 1]) { b -= 1 }
      return a..<b
    }
    func parseNumber(_ r: Range<Int>) -> Double? {
      guard !r.isEmpty else { return nil }
      if scratch.count < r.count + 1 { scratch = [CChar](repeating: 0, count: r.count + 1) }
      return scratch.withUnsafeMutableBufferPointer { s -> Double? in
        for (k, i) in r.enumerated() { s[k] = CChar(bitPattern: bytes[i]) }
        s[r.count] = 0
        var end: UnsafeMutablePointer<CChar>? = nil
        let v = strtod(s.baseAddress!, &end)
        return end == s.baseAddress! + r.count ? v : nil
      }
    }
    func text(_ r: Range<Int>) -> String { String(decoding: bytes[r], as: UTF8.self) }

    var header: [String]? = nil
    var body = lines[...]
    let firstCells = cells(first.range)
    // An empty first cell (a gap, or pandas' unnamed index column) says nothing; a text cell makes a header.
    let numeric = !firstCells.contains(where: { !$0.isEmpty && parseNumber($0) == nil })
    if headerRow == .present || (headerRow == .auto && !numeric) {
      header = firstCells.map(text)
      body = body.dropFirst()
    }
    guard !body.isEmpty else { throw DataProblem.malformed("\(path): the file has a header but no rows of numbers") }
    let columns = firstCells.count
    var values: [Double] = [], textCells: [Int: String] = [:], gaps = Set<Int>(), lineNumbers: [Int] = []
    values.reserveCapacity(body.count * columns)
    lineNumbers.reserveCapacity(body.count)
    for (lineNumber, line) in body {
      lineNumbers.append(lineNumber)
      let row = cells(line)
      guard row.count == columns else {
        throw DataProblem.malformed("\(path):\(lineNumber): \(row.count) cells where the \(header == nil ? "first row has" : "header names") \(columns): every row needs the same number of columns")
      }
      for (c, cell) in row.enumerated() {
        guard let v = parseNumber(cell) else {
          // Text (a category), or an empty cell (a gap).
          if cell.isEmpty { gaps.insert(values.count) } else { textCells[values.count] = text(cell) }
          values.append(.nan)
          continue
        }
        if v.isNaN {
          gaps.insert(values.count)
          values.append(.nan)
          continue
        }
        guard v.isFinite else {
          throw DataProblem.malformed("\(path):\(lineNumber): column \(c + 1): \(quoted(text(cell))) is not finite (remove or replace the infinite values)")
        }
        values.append(v)
      }
    }
    self.init(header: header, columns: columns, values: values)
    (self.text, self.missing, self.lines) = (textCells, gaps, lineNumbers)
  }

  /// Reads a CSV file, raw or gzip-compressed.
  public static func read(_ path: String, header: CSVHeader = .auto) throws -> NumericTable {
    try NumericTable(parsing: try FileBytes.read(path), path: path, header: header)
  }
}

/// Whether a CSV's first row names the columns.
public enum CSVHeader: String, Equatable, Sendable, CaseIterable, Codable {
  /// A header when a cell of the first row is text (neither a number nor empty).
  case auto
  /// The first row is a header, even when its cells are numbers ("1,2,3,4").
  case present = "yes"
  /// The first row is data.
  case absent = "no"
}
