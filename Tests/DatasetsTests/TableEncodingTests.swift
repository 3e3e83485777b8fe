import Datasets
import Testing
import _TestSupport

/// A CSV's text columns and gaps (issue 32, item 2): categories as one-hot features, text labels as class names,
/// --missing error | drop | mean, and the saved columns encoding a later file as the training rows were.
@Suite struct TableEncodingTests {
  static let dir = TemporaryDirectory("dpt-encoding")
  static let text = """
    size,color,weight,grade
    1,red,10,good
    2,blue,,poor
    ,green,30,good
    4,red,40,fair
    5,blue,50,poor
    6,,60,fair
    7,green,70,good
    8,red,80,poor

    """

  func load(_ missing: MissingValues?, fraction: Double = 0) throws -> DataSplit {
    try Catalog.load(.csv(path: Self.dir.write("t.csv", Self.text), target: .infer, header: .auto, missing: missing), testFraction: fraction)
  }

  @Test func textColumnsBecomeOneHotFeaturesAndClassNames() throws {
    let s = try load(.drop)
    // Rows 2, 3 and 6 have a gap: left out, and said.
    #expect(s.train.count == 5 && s.warnings == [.rowsDropped(path: Self.dir.file("t.csv"), dropped: 3, rows: 8)])
    #expect(s.train.featureNames == ["size", "color=blue", "color=green", "color=red", "weight"])
    #expect(s.train.classNames == ["fair", "good", "poor"] && s.train.task == .classification && s.train.classCount == 3)
    // Row 1 (1, red, 10, good), row 4 (4, red, 40, fair), row 5 (5, blue, 50, poor).
    #expect(Array(s.train.featureValues.prefix(15)) == [1, 0, 0, 1, 10, 4, 0, 0, 1, 40, 5, 1, 0, 0, 50])
    #expect(Array(s.train.labels.prefix(3)) == [1, 0, 2])
    #expect(s.columns?.map(\.categories) == [nil, ["blue", "green", "red"], nil])
  }

  @Test func gapsAreAnErrorByDefaultAndMeansWithMean() throws {
    #expect(throws: DataProblem.malformed("\(Self.dir.file("t.csv")):3: column 'weight' is empty: --missing drop leaves out rows with empty cells, --missing mean fills them (a number column's training mean)")) {
      try load(nil)
    }
    let s = try load(.mean)
    let x = s.train.featureValues, d = 5
    // weight's mean over the training rows (every row here): (10 + 30 + 40 + 50 + 60 + 70 + 80) / 7 = 48.57...; size's 33 / 7.
    #expect(s.columns?.map(\.fill) == [33.0 / 7, 0, 340.0 / 7])
    #expect(x[1 * d + 4] == 340.0 / 7 && x[2 * d + 0] == 33.0 / 7)
    // Row 6's color is empty: no category.
    #expect(Array(x[5 * d + 1..<5 * d + 4]) == [0, 0, 0])
    // The means are the training rows' alone.
    let split = try load(.mean, fraction: 0.25)
    let train = split.train.featureValues
    let weights = (0..<split.train.count).map { train[$0 * d + 4] }
    #expect(split.columns![2].fill! != 340.0 / 7 || split.train.count == 8)
    #expect(weights.allSatisfy { !$0.isNaN } && split.test.featureValues.allSatisfy { !$0.isNaN })
  }

  @Test func aLaterFileIsEncodedByTheSavedColumns() throws {
    let s = try load(.mean)
    var t = InputTransform(fitted: s, standardization: nil)
    #expect(t.tableColumns == s.columns && t.featureCount == 5)
    // Columns by name in another order, gaps filled by the training means, the label when present.
    let new = try NumericTable(parsing: "grade,weight,color,size\npoor,,blue,3\ngood,20,,\n", path: "new.csv")
    let (x, y) = try t.columns(of: new, path: "new.csv")
    #expect(x == [3, 1, 0, 0, 340.0 / 7, 33.0 / 7, 0, 0, 0, 20] && y == [2, 1])
    for (text, message) in [("size,color,weight\n1,purple,2\n", "new.csv:2: column 'color' holds 'purple', a category the model was not trained on (it knows 'blue', 'green', 'red')"),
                            ("size,color,weight,grade\n1,red,2,great\n", "new.csv:2: the label column 'grade' holds 'great', a class the model was not trained on"),
                            ("size,color,weight\nbig,red,2\n", "new.csv:2: column 'size' holds 'big', but the model reads numbers there"),
                            ("size,color\n1,red\n", "new.csv: no column named 'weight'")] {
      do { _ = try t.columns(of: try NumericTable(parsing: text, path: "new.csv"), path: "new.csv"); Issue.record("accepted \(text)") } catch {
        #expect("\(error)".hasPrefix(message), "\(error)")
      }
    }
    // A model trained without --missing mean has no fills: a gap is an error naming it.
    t.tableColumns = t.tableColumns!.map { TableColumn(name: $0.name, categories: $0.categories) }
    #expect(throws: DataProblem.self) { try t.columns(of: try NumericTable(parsing: "size,color,weight\n1,red,\n", path: "new.csv"), path: "new.csv") }
    // The transform round-trips through its JSON (the checkpoint's and the export's).
    #expect(try InputTransform(json: t.json) == t)
  }

  /// eval on another file: its rows are encoded by the model's columns and classes, so a file that holds two of the
  /// three classes keeps each class's index ("poor" is class 2 whatever else the file holds).
  @Test func anotherFileIsEncodedByTheModelsClasses() throws {
    let t = InputTransform(fitted: try load(.mean), standardization: nil)
    let other = Self.dir.write("two.csv", "size,color,weight,grade\n1,red,5,poor\n2,blue,6,good\n3,,7,poor\n")
    let s = try Catalog.load(.csv(path: other, target: .classes, header: .auto, missing: .mean), testFraction: 0, encoding: t)
    #expect(s.train.classNames == ["fair", "good", "poor"] && s.train.classCount == 3 && s.train.labels == [2, 1, 2])
    #expect(Array(s.train.featureValues.suffix(5)) == [3, 0, 0, 0, 7] && s.columns == t.tableColumns)
  }

  /// A first row with a gap is data, not a header (only a text cell makes one); pandas' unnamed index column still
  /// leaves its header a header.
  @Test func anEmptyCellDoesNotMakeAHeader() throws {
    let t = try NumericTable(parsing: "1,,3\n4,5,6\n", path: "g.csv")
    #expect(t.header == nil && t.rows == 2 && t.missing == [1])
    #expect(try NumericTable(parsing: ",a,b\n0,1,2\n", path: "p.csv").header == ["", "a", "b"])
  }

  @Test func aTableOfNumbersIsEncodedAsBefore() throws {
    let s = try Catalog.load(.csv(path: Self.dir.write("n.csv", "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")), testFraction: 0)
    #expect(s.columns == nil && InputTransform(fitted: s, standardization: nil).tableColumns == nil)
  }
}
