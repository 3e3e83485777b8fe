import _CZlib
import _Support

/// One numpy array from a .npy file (format versions 1, 2 and 3): its shape, its element type and its values in C
/// (row-major) order.
///
/// The header is read strictly: the magic string and version, then exactly the dict numpy writes, `{'descr': ...,
/// 'fortran_order': ..., 'shape': (...), }`, with a plain numeric dtype (little-endian or one byte: float 32/64,
/// signed and unsigned integers of 1-8 bytes, bool). The data must be exactly the shape's size: a truncated file,
/// trailing bytes, a big-endian or structured dtype and a pickled object array (`allow_pickle`) are errors naming the
/// file. A Fortran-order array is reordered to C order.
public struct NumpyArray: Equatable, Sendable {
  public enum Element: String, Equatable, Sendable, CaseIterable {
    case float32 = "f4", float64 = "f8", int8 = "i1", int16 = "i2", int32 = "i4", int64 = "i8"
    case uint8 = "u1", uint16 = "u2", uint32 = "u4", uint64 = "u8", bool = "b1"

    public var size: Int { Int(rawValue.dropFirst())! }
    public var isInteger: Bool { self != .float32 && self != .float64 }
  }

  public var shape: [Int]
  public var element: Element
  /// The elements' little-endian bytes, C order.
  public var data: [UInt8]
  public var count: Int { shape.reduce(1, *) }

  public init(shape: [Int], element: Element, data: [UInt8]) {
    precondition(data.count == shape.reduce(1, *) * element.size, "\(data.count) bytes for \(shape) of \(element)")
    (self.shape, self.element, self.data) = (shape, element, data)
  }

  /// Element `i` (C order) as a Double.
  @inline(__always)
  public func value(_ i: Int) -> Double {
    let o = i * element.size
    switch element {
    case .float32: return Double(Float(bitPattern: LittleEndian.read(UInt32.self, data, at: o)))
    case .float64: return Double(bitPattern: LittleEndian.read(UInt64.self, data, at: o))
    case .int8: return Double(Int8(bitPattern: data[o]))
    case .uint8, .bool: return Double(data[o])
    case .int16: return Double(Int16(bitPattern: LittleEndian.read(UInt16.self, data, at: o)))
    case .uint16: return Double(LittleEndian.read(UInt16.self, data, at: o))
    case .int32: return Double(Int32(bitPattern: LittleEndian.read(UInt32.self, data, at: o)))
    case .uint32: return Double(LittleEndian.read(UInt32.self, data, at: o))
    case .int64: return Double(Int64(bitPattern: LittleEndian.read(UInt64.self, data, at: o)))
    case .uint64: return Double(LittleEndian.read(UInt64.self, data, at: o))
    }
  }

  /// Every element as a Double, C order.
  public var doubles: [Double] { (0..<count).map(value) }

  /// Parses a .npy file's bytes; `path` names it in errors.
  public init(parsing bytes: [UInt8], path: String) throws {
    func bad(_ why: String) -> DataProblem { .malformed("\(path): \(why)") }
    let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
      throw bad("not a .npy file (it does not start with \\x93NUMPY); save the array with numpy.save")
    }
    let major = bytes[6]
    guard (1...3).contains(major), bytes[7] == 0 else { throw bad(".npy format version \(major).\(bytes[7]) is not one numpy writes (1.0, 2.0, 3.0)") }
    let lengthBytes = major == 1 ? 2 : 4
    guard bytes.count >= 8 + lengthBytes else { throw bad("truncated .npy header") }
    let headerLength = major == 1 ? Int(LittleEndian.read(UInt16.self, bytes, at: 8)) : Int(LittleEndian.read(UInt32.self, bytes, at: 8))
    let start = 8 + lengthBytes
    guard headerLength <= bytes.count - start else {
      throw bad("truncated: the header claims \(headerLength) bytes but the file holds \(bytes.count - start) after it")
    }
    let header = try NumpyHeader(Array(bytes[start..<start + headerLength]), path: path)
    var expected = header.element.size
    for d in header.shape {
      let (p, overflow) = expected.multipliedReportingOverflow(by: d)
      guard !overflow, p <= MachineMemory.fileLimit else { throw bad("the header's shape \(header.shape) is larger than dpt reads from one file: the file is damaged") }
      expected = p
    }
    let actual = bytes.count - start - headerLength
    guard actual == expected else {
      throw bad("the header declares \(Self.describe(header.shape)) \(header.element) = \(expected) bytes of data, but the file holds \(actual)\(actual < expected ? " (truncated: save or copy it again)" : "")")
    }
    var data = Array(bytes[(start + headerLength)...])
    if header.fortranOrder && header.shape.count > 1 { data = Self.cOrder(data, shape: header.shape, size: header.element.size) }
    self.init(shape: header.shape, element: header.element, data: data)
  }

  /// Fortran-order bytes (first index fastest) in C order (last index fastest).
  static func cOrder(_ f: [UInt8], shape: [Int], size: Int) -> [UInt8] {
    let n = shape.reduce(1, *), r = shape.count
    var out = [UInt8](repeating: 0, count: f.count)
    var index = [Int](repeating: 0, count: r)  // C-order counter
    var fStrides = [Int](repeating: 1, count: r)
    for k in 1..<r { fStrides[k] = fStrides[k - 1] * shape[k - 1] }
    for c in 0..<n {
      var fi = 0
      for k in 0..<r { fi += index[k] * fStrides[k] }
      for b in 0..<size { out[c * size + b] = f[fi * size + b] }
      var k = r - 1
      while k >= 0 { index[k] += 1; if index[k] < shape[k] { break }; index[k] = 0; k -= 1 }
    }
    return out
  }

  static func describe(_ shape: [Int]) -> String { "(" + shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? ",)" : ")") }

  /// Reads a .npy file.
  public static func read(_ path: String) throws -> NumpyArray {
    try NumpyArray(parsing: try FileBytes.raw(path), path: path)
  }
}

/// The dict of a .npy header, parsed as numpy writes it and nothing more.
struct NumpyHeader {
  var element: NumpyArray.Element
  var fortranOrder: Bool
  var shape: [Int]

  init(_ bytes: [UInt8], path: String) throws {
    func bad(_ why: String) -> DataProblem { .malformed("\(path): its .npy header \(why)") }
    var i = 0
    func skipSpaces() { while i < bytes.count, bytes[i] == 0x20 { i += 1 } }
    func expect(_ c: Character) throws {
      skipSpaces()
      guard i < bytes.count, bytes[i] == c.asciiValue! else { throw bad("is not numpy's dict (expected '\(c)' at byte \(i))") }
      i += 1
    }
    func string() throws -> String {
      skipSpaces()
      guard i < bytes.count, bytes[i] == 0x27 else { throw bad("is not numpy's dict (expected a quoted string at byte \(i))") }
      i += 1
      let s = i
      while i < bytes.count, bytes[i] != 0x27 { i += 1 }
      guard i < bytes.count else { throw bad("has an unterminated string") }
      defer { i += 1 }
      return String(decoding: bytes[s..<i], as: UTF8.self)
    }
    func word() -> String {
      skipSpaces()
      let s = i
      while i < bytes.count, (bytes[i] >= 0x41 && bytes[i] <= 0x5A) || (bytes[i] >= 0x61 && bytes[i] <= 0x7A) { i += 1 }
      return String(decoding: bytes[s..<i], as: UTF8.self)
    }
    func integer() throws -> Int {
      skipSpaces()
      let s = i
      while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
      guard i > s, i - s <= 18, let v = Int(String(decoding: bytes[s..<i], as: UTF8.self)) else { throw bad("has a dimension that is not a whole number") }
      return v
    }
    var descr: String?, fortran: Bool?, shape: [Int]?
    try expect("{")
    while true {
      skipSpaces()
      if i < bytes.count, bytes[i] == 0x7D { i += 1; break }  // '}' after a trailing comma
      let key = try string()
      try expect(":")
      switch key {
      case "descr":
        skipSpaces()
        guard i < bytes.count, bytes[i] == 0x27 else { throw bad("describes a structured dtype (fields): save a plain numeric array") }
        descr = try string()
      case "fortran_order":
        let w = word()
        guard w == "True" || w == "False" else { throw bad("has fortran_order \(quoted(w)), not True or False") }
        fortran = w == "True"
      case "shape":
        try expect("(")
        var dims: [Int] = []
        skipSpaces()
        while i < bytes.count, bytes[i] != 0x29 {
          dims.append(try integer())
          skipSpaces()
          if i < bytes.count, bytes[i] == 0x2C { i += 1; skipSpaces() }
        }
        try expect(")")
        shape = dims
      default: throw bad("has the key \(quoted(key)); numpy writes only descr, fortran_order and shape")
      }
      skipSpaces()
      if i < bytes.count, bytes[i] == 0x2C { i += 1; continue }
      try expect("}")
      break
    }
    guard bytes[i...].allSatisfy({ $0 == 0x20 || $0 == 0x0A }) else { throw bad("has text after its dict") }
    guard let descr, let fortran, let shape else { throw bad("lacks \(descr == nil ? "descr" : fortran == nil ? "fortran_order" : "shape")") }
    let order = descr.first, code = String(descr.dropFirst())
    if code.hasPrefix("O") {
      throw DataProblem.malformed("\(path): an array of Python objects (dtype object): dpt never unpickles; save a numeric array (x.astype(numpy.float32))")
    }
    guard let element = NumpyArray.Element(rawValue: code), order == "<" || order == "|" || order == "=" || (order == ">" && element.size == 1) else {
      throw DataProblem.malformed("\(path): dtype \(quoted(descr)) is not one dpt reads: little-endian float32/float64, int8-int64, uint8-uint64 or bool (numpy: x.astype('<f4'))")
    }
    (self.element, self.fortranOrder, self.shape) = (element, fortran, shape)
  }
}

/// The arrays of a .npz file (numpy.savez and savez_compressed: a zip archive of .npy files, stored or deflated),
/// by name without ".npy". The archive's central directory is read first and every size checked against the file
/// and the memory limit before anything is inflated; each member's CRC-32 is checked.
public enum NumpyArchive {
  public static func read(_ path: String) throws -> [String: NumpyArray] {
    try parse(try FileBytes.raw(path), path: path)
  }

  public static func parse(_ bytes: [UInt8], path: String) throws -> [String: NumpyArray] {
    func bad(_ why: String) -> DataProblem { .malformed("\(path): \(why)") }
    func u16(_ o: Int) -> Int { Int(LittleEndian.read(UInt16.self, bytes, at: o)) }
    func u32(_ o: Int) -> Int { Int(LittleEndian.read(UInt32.self, bytes, at: o)) }
    func u64(_ o: Int) throws -> Int {
      let v = LittleEndian.read(UInt64.self, bytes, at: o)
      guard v <= UInt64(MachineMemory.fileLimit) else { throw bad("a zip64 field is larger than the file: the archive is damaged") }
      return Int(v)
    }
    guard bytes.count >= 22, bytes.starts(with: [0x50, 0x4B]) else {
      throw bad("not an .npz file (not a zip archive); save the arrays with numpy.savez")
    }
    // The end of central directory record: its signature in the last 22 + 65,535 bytes (the longest comment).
    var end = -1
    for o in stride(from: bytes.count - 22, through: max(0, bytes.count - 22 - 65_535), by: -1)
    where bytes[o] == 0x50 && bytes[o + 1] == 0x4B && bytes[o + 2] == 0x05 && bytes[o + 3] == 0x06 {
      end = o
      break
    }
    guard end >= 0 else { throw bad("no zip directory at its end (truncated: save or copy it again)") }
    var entries = u16(end + 10), directorySize = u32(end + 12), directory = u32(end + 16)
    if entries == 0xFFFF || directorySize == 0xFFFF_FFFF || directory == 0xFFFF_FFFF {
      // zip64: the locator just before points at the zip64 end record.
      guard end >= 20, u32(end - 20) == 0x0706_4B50 else { throw bad("a zip64 archive without its locator: the archive is damaged") }
      let record = try u64(end - 12)
      guard record <= bytes.count - 56, u32(record) == 0x0606_4B50 else { throw bad("its zip64 end record is missing: the archive is damaged") }
      (entries, directorySize, directory) = (try u64(record + 32), try u64(record + 40), try u64(record + 48))
    }
    guard directory <= bytes.count, directorySize <= bytes.count - directory, entries <= directorySize / 46 else {
      throw bad("its zip directory lies outside the file: the archive is damaged")
    }
    var arrays: [String: NumpyArray] = [:]
    var o = directory
    for _ in 0..<entries {
      guard o <= bytes.count - 46, u32(o) == 0x0201_4B50 else { throw bad("a damaged zip directory entry at byte \(o)") }
      let flags = u16(o + 8), method = u16(o + 10), crc = UInt32(u32(o + 16))
      var compressed = u32(o + 20), size = u32(o + 24), local = u32(o + 42)
      let nameLength = u16(o + 28), extraLength = u16(o + 30), commentLength = u16(o + 32)
      guard o + 46 + nameLength + extraLength + commentLength <= bytes.count else { throw bad("a damaged zip directory entry at byte \(o)") }
      let name = String(decoding: bytes[o + 46..<o + 46 + nameLength], as: UTF8.self)
      // zip64 sizes and offset, in this order, for each field that is 0xFFFFFFFF.
      var e = o + 46 + nameLength
      while e + 4 <= o + 46 + nameLength + extraLength {
        let id = u16(e), length = u16(e + 2)
        if id == 1 {
          var f = e + 4
          if size == 0xFFFF_FFFF, f + 8 <= e + 4 + length { size = try u64(f); f += 8 }
          if compressed == 0xFFFF_FFFF, f + 8 <= e + 4 + length { compressed = try u64(f); f += 8 }
          if local == 0xFFFF_FFFF, f + 8 <= e + 4 + length { local = try u64(f) }
        }
        e += 4 + length
      }
      o += 46 + nameLength + extraLength + commentLength
      guard flags & 1 == 0 else { throw bad("\(quoted(name)) is encrypted: dpt reads numpy.savez's plain archives") }
      guard method == 0 || method == 8 else { throw bad("\(quoted(name)) is compressed by zip method \(method); numpy writes stored (0) or deflated (8)") }
      guard local <= bytes.count - 30, u32(local) == 0x0403_4B50 else { throw bad("\(quoted(name)): its data lies outside the file: the archive is damaged") }
      let start = local + 30 + u16(local + 26) + u16(local + 28)
      guard start <= bytes.count, compressed <= bytes.count - start else {
        throw bad("\(quoted(name)) is truncated (\(compressed) bytes declared): save or copy the file again")
      }
      guard size <= MachineMemory.fileLimit else { throw bad("\(quoted(name)) inflates to more than dpt reads from one file") }
      let member = "\(path) (\(name))"
      let raw = Array(bytes[start..<start + compressed])
      let npy = method == 0 ? raw : try FileBytes.inflate(raw, path: member, limit: size, format: .deflate)
      guard npy.count == size else { throw bad("\(quoted(name)) holds \(npy.count) bytes, not the \(size) its directory declares: the archive is damaged") }
      let check = npy.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
      guard check == crc else { throw bad("\(quoted(name)) fails its CRC-32 check: the archive is damaged") }
      guard name.hasSuffix(".npy") else { continue }  // numpy writes only .npy members; anything else is not an array
      arrays[String(name.dropLast(4))] = try NumpyArray(parsing: npy, path: member)
    }
    return arrays
  }
}

/// Data sets from numpy arrays: `npz:FILE` (arrays `x` and `y`, split by --test-fraction, or Keras's `x_train`,
/// `y_train`, `x_test`, `y_test`, its own split) and `npy:X.npy,Y.npy`.
///
/// A sample keeps its array's shape: (N, d) rows are tables, (N, H, W) one-channel images (read as (N, 1, H, W), as
/// the IDX files are), (N, C, H, W) images with channels first. uint8 images are pixel bytes (divided by 255, as
/// the IDX sets are); every other array is real values. Integer labels are classes 0 ... C - 1 (every class present);
/// float labels are targets, (N,) or (N, K). `--target` overrides that inference as it does for a CSV.
public enum ArrayData {
  /// The arrays of a source (npz or npy), read once.
  public static func arrays(_ source: DatasetSource) throws -> [String: NumpyArray] {
    switch source {
    case .npz(let path, _): return try NumpyArchive.read(path)
    case .npy(let x, let y, _): return ["x": try NumpyArray.read(x), "y": try NumpyArray.read(y)]
    default: preconditionFailure("\(source) is not made of numpy arrays")
    }
  }

  /// The features' and labels' arrays: (train x, train y) and, for Keras's four arrays, (test x, test y).
  static func pairs(_ arrays: [String: NumpyArray], path: String)
    throws -> (train: (x: NumpyArray, y: NumpyArray), test: (x: NumpyArray, y: NumpyArray)?)
  {
    if let x = arrays["x_train"], let y = arrays["y_train"] {
      guard let tx = arrays["x_test"], let ty = arrays["y_test"] else {
        throw DataProblem.malformed("\(path): holds x_train and y_train but not x_test and y_test: save all four (Keras's layout), or x and y to split by --test-fraction")
      }
      return ((x, y), (tx, ty))
    }
    guard let x = arrays["x"], let y = arrays["y"] else {
      throw DataProblem.malformed("\(path): holds the arrays \(arrays.keys.sorted().map { quoted($0) }.joined(separator: ", ")); dpt reads x and y (numpy.savez(FILE, x=features, y=labels)), or Keras's x_train, y_train, x_test, y_test")
    }
    return ((x, y), nil)
  }

  /// Class labels when the labels are integers (or booleans), else real targets of the labels' width.
  public static func inferTarget(_ arrays: [String: NumpyArray], path: String) throws -> (target: CSVTarget, note: CSVInference) {
    let y = try pairs(arrays, path: path).train.y
    if y.element.isInteger { return (.classes, .arrayClasses(path: path, element: y.element.rawValue)) }
    return (.values(y.shape.count > 1 ? y.shape[1] : 1), .arrayValues(path: path, element: y.element.rawValue))
  }

  /// The split: Keras's own test arrays, or `fraction` of x and y held out by `seed`.
  public static func split(_ arrays: [String: NumpyArray], target: CSVTarget, path: String, name: String, testFraction: Double?,
                    defaultFraction: Double, seed: UInt64) throws -> DataSplit {
    let (train, test) = try pairs(arrays, path: path)
    let classes = target == .infer ? try inferTarget(arrays, path: path).target == .classes : target == .classes
    if let test {
      if let f = testFraction, f != 0 {
        throw DataProblem.malformed("\(path): holds its own test arrays (x_test, y_test); --test-fraction \(f) applies to x and y: drop it")
      }
      let labels = classes ? [try labelValues(train.y, path: path, name: "y_train"), try labelValues(test.y, path: path, name: "y_test")] : []
      let count = classes ? try Catalog.classCount(labels.map { $0.map(Int32.init) }, path: path, what: "the labels y_train and y_test") : 0
      let a = try dataset(train.x, train.y, classes: classes ? count : nil, path: path, names: ("x_train", "y_train"))
      let b = try dataset(test.x, test.y, classes: classes ? count : nil, path: path, names: ("x_test", "y_test"))
      guard a.sampleShape == b.sampleShape, a.targetWidth == b.targetWidth else {
        throw DataProblem.malformed("\(path): x_train's samples are \(a.sampleShape) but x_test's are \(b.sampleShape): save arrays of one shape")
      }
      return DataSplit(name: name, train: a, test: b)
    }
    let count = classes ? try Catalog.classCount([try labelValues(train.y, path: path, name: "y").map(Int32.init)], path: path, what: "the labels y") : 0
    let data = try dataset(train.x, train.y, classes: classes ? count : nil, path: path, names: ("x", "y"))
    return try Catalog.split(data, name: name, testFraction: testFraction ?? defaultFraction, seed: seed)
  }

  /// Labels as whole numbers 0 ... 999,999, one a sample ((N,) or (N, 1)).
  static func labelValues(_ y: NumpyArray, path: String, name: String) throws -> [Int] {
    guard y.shape.count == 1 || (y.shape.count == 2 && y.shape[1] == 1) else {
      throw DataProblem.malformed("\(path): \(name) has the shape \(NumpyArray.describe(y.shape)); class labels are one a sample, (N,): for one-hot rows save y.argmax(1)")
    }
    return try (0..<y.count).map { i in
      let v = y.value(i)
      guard v >= 0, v < 1_000_000, v == v.rounded() else {
        throw DataProblem.malformed("\(path): \(name)[\(i)] is \(NumberText.compact(v)); class labels are whole numbers 0, 1, 2, ... (--target value to regress on them)")
      }
      return Int(v)
    }
  }

  /// One sample's shape in an array of samples x: (N, d) rows, (N, H, W) as one channel, (N, C, H, W).
  public static func sampleShape(_ x: NumpyArray, path: String, name: String) throws -> [Int] {
    switch x.shape.count {
    case 1: return [1]
    case 2: return [x.shape[1]]
    case 3: return [1, x.shape[1], x.shape[2]]
    case 4: return Array(x.shape[1...])
    default:
      throw DataProblem.malformed("\(path): \(name) has \(x.shape.count) dimensions \(NumpyArray.describe(x.shape)); dpt reads rows (N, d) and images (N, H, W) or (N, C, H, W)")
    }
  }

  /// The rows `dpt predict` reads from arrays: x (or x_test), with y (or y_test) when there is one, raw (pixel bytes
  /// as 0-255), one row of the sample's values after another.
  public static func rowsToPredict(_ arrays: [String: NumpyArray], path: String)
    throws -> (values: [Double], sampleShape: [Int], labels: [Double]?, labelWidth: Int)
  {
    let (xName, yName) = arrays["x"] != nil ? ("x", "y") : ("x_test", "y_test")
    guard let x = arrays[xName] else {
      throw DataProblem.malformed("\(path): holds the arrays \(arrays.keys.sorted().map { quoted($0) }.joined(separator: ", ")); predict reads x (or x_test), with y (or y_test) when it is there")
    }
    let y = arrays[yName]
    if let y, y.shape.first != x.shape.first {
      throw DataProblem.malformed("\(path): \(xName) holds \(x.shape.first ?? 0) samples but \(yName) holds \(y.shape.first ?? 0)")
    }
    let values = x.doubles
    if let bad = values.firstIndex(where: { !$0.isFinite }) {
      throw DataProblem.malformed("\(path): \(xName) holds \(values[bad]) at element \(bad): remove or impute NaN and inf values")
    }
    let n = max(x.shape.first ?? 1, 1)
    return (values, try sampleShape(x, path: path, name: xName), y?.doubles, y.map { $0.count / n } ?? 0)
  }

  /// One set of samples from its features x and labels y (`classes` nil: real targets).
  static func dataset(_ x: NumpyArray, _ y: NumpyArray, classes: Int?, path: String, names: (x: String, y: String)) throws -> Dataset {
    guard let n = x.shape.first, n > 0 else { throw DataProblem.malformed("\(path): \(names.x) holds no samples (its shape is \(NumpyArray.describe(x.shape)))") }
    guard y.shape.first == n else {
      throw DataProblem.malformed("\(path): \(names.x) holds \(n) samples but \(names.y) holds \(y.shape.first ?? 0): save the labels of the same samples")
    }
    let sample = try sampleShape(x, path: path, name: names.x)
    let d = sample.reduce(1, *)
    guard d > 0 else { throw DataProblem.malformed("\(path): \(names.x)'s samples are empty \(NumpyArray.describe(x.shape))") }
    let features: Dataset.Features
    if x.element == .uint8 && x.shape.count >= 3 {
      features = .bytes(x.data, divisor: 255)
    } else {
      let v = x.doubles
      if let bad = v.firstIndex(where: { !$0.isFinite }) {
        throw DataProblem.malformed("\(path): \(names.x) sample \(bad / d) holds \(v[bad]) at feature \(bad % d): remove or impute NaN and inf values")
      }
      features = .reals(v)
    }
    let featureNames = sample.count == 1 ? (1...d).map { "x\($0)" } : Catalog.pixelNames(d)
    if let classes {
      let labels = try labelValues(y, path: path, name: names.y).map(Int32.init)
      return Dataset(features: features, count: n, sampleShape: sample, labels: labels, task: .classification, classCount: classes,
                     featureNames: featureNames, targetName: names.y)
    }
    guard y.shape.count <= 2 else {
      throw DataProblem.malformed("\(path): \(names.y) has the shape \(NumpyArray.describe(y.shape)); targets are (N,) or (N, K)")
    }
    let k = y.shape.count == 2 ? y.shape[1] : 1
    let t = y.doubles
    if let bad = t.firstIndex(where: { !$0.isFinite }) {
      throw DataProblem.malformed("\(path): \(names.y) sample \(bad / k) holds \(t[bad]): remove or impute NaN and inf values")
    }
    return Dataset(features: features, count: n, sampleShape: sample, targets: t, task: .regression, featureNames: featureNames,
                   targetName: k == 1 ? names.y : (1...k).map { "\(names.y)\($0)" }.joined(separator: ","))
  }
}
