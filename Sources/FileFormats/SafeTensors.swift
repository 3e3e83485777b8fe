import Foundation
import Layers
import TensorCore
import _Support

/// The safetensors format (Hugging Face's): an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the raw little-endian data. numpy, PyTorch and JAX read it directly.
public enum SafeTensors {
  /// The checkpoint's parameters as safetensors. With `pytorchLayout` the tensors take PyTorch's layout and names, so
  /// a `torch.nn.Sequential` of the same layers loads them with `load_state_dict`: each tensor as its layer's
  /// `ParameterSpec` says (dense weights transposed to (outputs, inputs), PReLU's slopes named "weight"). Otherwise
  /// dpt's own: dense weights (inputs, outputs).
  public static func encode(_ c: Checkpoint, pytorchLayout: Bool) throws -> [UInt8] {
    guard let raw = c.section("parameters") else { throw WeightsProblem.malformed("the checkpoint holds no parameters") }
    guard !c.tensors.isEmpty else { throw WeightsProblem.malformed("the checkpoint names no tensors (written by an older dpt)") }
    let size = c.scalarBytes
    var entries: [(String, JSON)] = [("__metadata__", .object([
      ("format", JSON("pt")), ("source", JSON("dpt")), ("network", JSON(c.network)), ("dataset", JSON(c.dataset)),
      ("epoch", JSON(String(c.epoch))), ("layout", JSON(pytorchLayout ? "pytorch" : "dpt")),
    ] + (c.config["input_transform"].flatMap { $0 == .null ? nil : [("dpt_input_transform", JSON($0.serialized()))] } ?? [])))]
    var data: [UInt8] = []
    func add(_ name: String, dtype: String, shape: [Int], _ bytes: [UInt8]) {
      entries.append((name, .object([("dtype", JSON(dtype)), ("shape", .array(shape.map { JSON($0) })),
                                     ("data_offsets", .array([JSON(data.count), JSON(data.count + bytes.count)]))])))
      data += bytes
    }
    var at = 0
    for t in c.tensors {
      let count = t.shape.reduce(1, *)
      guard at + count * size <= raw.count else { throw WeightsProblem.malformed("the checkpoint's tensors exceed its parameters") }
      var bytes = Array(raw[at..<(at + count * size)])
      var shape = t.shape
      var name = t.name
      if pytorchLayout && t.transposed {
        // (in, out) row-major -> (out, in) row-major.
        let (rows, cols) = (shape[0], shape[1])
        var transposed = [UInt8](repeating: 0, count: bytes.count)
        for i in 0..<rows {
          for j in 0..<cols {
            let from = (i * cols + j) * size, to = (j * rows + i) * size
            for k in 0..<size { transposed[to + k] = bytes[from + k] }
          }
        }
        bytes = transposed
        shape = [cols, rows]
      }
      if pytorchLayout { name = t.pytorchName }
      add(name, dtype: size == 4 ? "F32" : "F64", shape: shape, bytes)
      at += count * size
    }
    // Buffers: BatchNorm's running statistics as floats, its count of batches as PyTorch's int64.
    let state = c.section("buffers") ?? []
    at = 0
    for t in c.bufferTensors {
      let count = t.shape.reduce(1, *)
      guard at + count * size <= state.count else { throw WeightsProblem.malformed("the checkpoint's buffers exceed their section") }
      let bytes = Array(state[at..<(at + count * size)])
      if t.name.hasSuffix(".num_batches_tracked") {
        let values = bytes.withUnsafeBytes { raw in
          (0..<count).map { Int64(size == 4 ? Double(Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
                                            : Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))) }
        }
        add(t.name, dtype: "I64", shape: t.shape, values.flatMap { LittleEndian.bytes(UInt64(bitPattern: $0)) })
      } else {
        add(t.name, dtype: size == 4 ? "F32" : "F64", shape: t.shape, bytes)
      }
      at += count * size
    }
    var header = Array(JSON.object(entries).serialized().utf8)
    while (8 + header.count) % 8 != 0 { header.append(0x20) }  // pad with spaces: the data starts 8-byte aligned
    let length = UInt64(header.count)
    return LittleEndian.bytes(length) + header + data
  }
}

/// A safetensors file read back: each tensor's dtype, shape and bytes.
public struct SafeTensorsFile {
  public struct Entry {
    public var dtype: String
    public var shape: [Int]
    public var bytes: ArraySlice<UInt8>
  }

  /// The tensors in the order of their data.
  public private(set) var names: [String] = []
  public private(set) var entries: [String: Entry] = [:]
  /// The header's `__metadata__` (text keys and values; dpt's export writes "dpt_input_transform" there).
  public private(set) var metadata: [String: String] = [:]

  /// Tensors held in memory (float64), as a file of them would be read: for loading a state_dict a program has.
  public init(tensors: [(name: String, shape: [Int], values: [Double])]) {
    for t in tensors {
      precondition(t.shape.reduce(1, *) == t.values.count, "tensor '\(t.name)': \(t.values.count) values for shape \(t.shape)")
      names.append(t.name)
      entries[t.name] = Entry(dtype: "F64", shape: t.shape,
                              bytes: ArraySlice(t.values.flatMap { LittleEndian.bytes($0.bitPattern) }))
    }
  }

  /// Bytes per element of each dtype the format defines.
  public static let dtypeSizes: [String: Int] = [
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
  ]
  /// The format's limit on the header (the reference implementation's MAX_HEADER_SIZE).
  public static let maximumHeaderBytes = 100_000_000

  /// Parses the 8-byte header length, the JSON header and the byte ranges it names; `path` names the file in errors.
  /// The rules of the reference implementation (which PyTorch's safetensors uses) are enforced: a header of at most
  /// 100 MB that is a JSON object, known dtypes, unique names, and byte ranges that tile the data exactly, in order,
  /// with no gap or overlap, each the size its shape and dtype give.
  public init(decoding bytes: [UInt8], path: String) throws {
    func bad(_ why: String) -> WeightsProblem { WeightsProblem.malformed("\(path): not a safetensors file (\(why))") }
    guard bytes.count >= 8 else { throw bad("\(bytes.count) bytes") }
    // torch.save writes a zip archive (PyTorch 1.6 and later) or a pickle, whose first bytes read as an absurd length.
    if bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) || (bytes[0] == 0x80 && (2...5).contains(bytes[1])) {
      throw WeightsProblem.malformed("\(path): a PyTorch file written by torch.save (a \(bytes[0] == 0x80 ? "pickle" : "zip archive")), not safetensors: save the weights with safetensors.torch.save_file(model.state_dict(), \"model.safetensors\")")
    }
    let length = LittleEndian.read(UInt64.self, bytes, at: 0)
    guard length <= UInt64(SafeTensorsFile.maximumHeaderBytes) else { throw bad("its header claims \(length) bytes, more than the format's 100 MB") }
    guard length <= UInt64(bytes.count - 8) else { throw bad("its header claims \(length) bytes of \(bytes.count - 8)") }
    let end = 8 + Int(length)
    guard length >= 2, bytes[8] == UInt8(ascii: "{") else { throw bad("the header is not a JSON object") }
    let header: JSON
    do { header = try JSON.parse(bytes: bytes[8..<end]) } catch { throw bad("the header is not JSON: \(error)") }
    guard case .object(let fields) = header else { throw bad("the header is not a JSON object") }
    var seen = Set<String>()
    var located: [(start: Int, end: Int, name: String, entry: Entry)] = []
    let data = bytes.count - end
    for (name, value) in fields {
      guard seen.insert(name).inserted else { throw bad("the name '\(name)' appears twice") }
      if name == "__metadata__" {
        guard case .object(let pairs) = value, let texts = Optional(pairs.compactMap { k, v in v.string.map { (k, $0) } }),
              texts.count == pairs.count else { throw bad("__metadata__ is not an object of strings") }
        metadata = Dictionary(texts, uniquingKeysWith: { a, _ in a })
        continue
      }
      guard let dtype = value["dtype"]?.string, let shapeList = value["shape"]?.array,
            let offsetList = value["data_offsets"]?.array, offsetList.count == 2 else {
        throw bad("tensor '\(name)' has no dtype, shape and data_offsets")
      }
      guard let size = SafeTensorsFile.dtypeSizes[dtype] else { throw bad("tensor '\(name)' has the unknown dtype '\(dtype)'") }
      let shape = shapeList.compactMap(\.int), offsets = offsetList.compactMap(\.int)
      guard shape.count == shapeList.count, shape.allSatisfy({ $0 >= 0 }), offsets.count == 2,
            offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= data else {
        throw bad("tensor '\(name)' has a shape or data_offsets outside the file")
      }
      var count = size
      for d in shape {
        let (p, overflow) = count.multipliedReportingOverflow(by: d)
        guard !overflow, p <= data else { throw bad("tensor '\(name)' of shape \(shape) is larger than the file") }
        count = p
      }
      guard count == offsets[1] - offsets[0] else {
        throw bad("tensor '\(name)' spans \(offsets[1] - offsets[0]) bytes; its shape \(shape) of \(dtype) needs \(count)")
      }
      located.append((offsets[0], offsets[1], name, Entry(dtype: dtype, shape: shape, bytes: bytes[(end + offsets[0])..<(end + offsets[1])])))
    }
    var expected = 0
    for l in located.sorted(by: { ($0.start, $0.end) < ($1.start, $1.end) }) {
      guard l.start == expected else {
        throw bad(l.start < expected ? "tensor '\(l.name)' overlaps the one before it" : "a gap of \(l.start - expected) bytes before tensor '\(l.name)'")
      }
      expected = l.end
      names.append(l.name)
      entries[l.name] = l.entry
    }
    guard expected == data else { throw bad("\(data - expected) bytes after the last tensor") }
  }

  /// A tensor's values (F32 or F64), in its row-major order.
  public func values(_ name: String, path: String) throws -> [Double] {
    guard let e = entries[name] else { throw WeightsProblem.malformed("\(path): no tensor '\(name)'") }
    guard ["F32", "F64", "I64"].contains(e.dtype) else {
      throw WeightsProblem.malformed("\(path): tensor '\(name)' is \(e.dtype); dpt reads F32, F64 and I64 (convert with tensor.float())")
    }
    let size = SafeTensorsFile.dtypeSizes[e.dtype]!, count = e.bytes.count / size
    return Array(e.bytes).withUnsafeBytes { raw in
      switch e.dtype {
      case "F32": (0..<count).map { Double(Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian)) }
      case "F64": (0..<count).map { Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian) }
      default: (0..<count).map { Double(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
      }
    }
  }
}

extension SafeTensors {
  /// The flat parameter buffer of `network` from a file in dpt's export layout (`dpt export`: PyTorch's state_dict
  /// names and shapes; dense weights (outputs, inputs), PReLU's slopes "N.weight"). Like PyTorch's
  /// `load_state_dict(strict=True)`: every parameter must be there with its shape, and nothing else.
  public static func parameters<T: LayerKernels>(for network: Network<T>, from file: SafeTensorsFile, path: String) throws -> [T] {
    try state(for: network, from: file, path: path).parameters
  }

  /// The parameters and the buffers (BatchNorm's running statistics and count) of `network` from a file in dpt's
  /// export layout, strictly: every tensor must be there with its shape, and nothing else.
  public static func state<T: LayerKernels>(for network: Network<T>, from file: SafeTensorsFile, path: String) throws
    -> (parameters: [T], buffers: [T])
  {
    var p = [T](repeating: 0, count: network.parameterCount)
    var b = [T](repeating: 0, count: network.bufferCount)
    var expected: Set<String> = []
    func read(_ name: String, shape: [Int], range: Range<Int>, transposed: Bool, into out: inout [T]) throws {
      expected.insert(name)
      guard let e = file.entries[name] else {
        throw WeightsProblem.missingTensor(path: path, name: name, shape: shape, available: file.names)
      }
      guard e.shape == shape else {
        throw WeightsProblem.tensorShape(path: path, name: name, found: e.shape, expected: shape, transposed: transposed)
      }
      let v = try file.values(name, path: path)
      // A weight that is not a number would make the first loss NaN, and the message would blame the step size.
      if let bad = v.firstIndex(where: { !$0.isFinite || !T($0).isFinite }) {
        let count = v.filter { !$0.isFinite || !T($0).isFinite }.count
        throw WeightsProblem.malformed("\(path): tensor '\(name)' holds \(count) value\(count == 1 ? "" : "s") that \(count == 1 ? "is" : "are") not a finite \(T.self) (the first, at \(bad), is \(v[bad])): save finite weights")
      }
      if transposed {
        let (outputs, inputs) = (shape[0], shape[1])
        for i in 0..<inputs { for j in 0..<outputs { out[range.lowerBound + i * outputs + j] = T(v[j * inputs + i]) } }
      } else {
        for (k, x) in v.enumerated() { out[range.lowerBound + k] = T(x) }
      }
    }
    for named in network.namedParameters {
      try read(named.spec.pytorchName, shape: named.spec.pytorchShape, range: named.range, transposed: named.spec.transposed, into: &p)
    }
    for named in network.namedBuffers {
      try read(named.spec.pytorchName, shape: named.spec.shape, range: named.range, transposed: false, into: &b)
    }
    if let extra = file.names.first(where: { !expected.contains($0) }) {
      throw WeightsProblem.malformed("\(path): tensor '\(extra)' is not a parameter or buffer of this model (\(network.summary))")
    }
    return (p, b)
  }
}
