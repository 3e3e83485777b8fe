import Foundation
import Layers
import TensorCore
import _Support

/// The safetensors format (Hugging Face's): an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the raw little-endian data. numpy, PyTorch and JAX read it directly.
public enum SafeTensors {
  /// The checkpoint's parameters as safetensors. With `pytorchLayout` the tensors take PyTorch's layout and names, so
  /// a `torch.nn.Sequential` of the same layers loads them with `load_state_dict`: dense weights transposed to
  /// (outputs, inputs), PReLU's slopes named "weight". Otherwise dpt's own: dense weights (inputs, outputs).
  public static func encode(_ c: Checkpoint, pytorchLayout: Bool) throws -> [UInt8] {
    guard let raw = c.section("parameters") else { throw CheckpointError("the checkpoint holds no parameters") }
    guard !c.tensors.isEmpty else { throw CheckpointError("the checkpoint names no tensors (written by an older dpt)") }
    let size = c.scalarBytes
    var entries: [(String, JSON)] = [("__metadata__", .object([
      ("format", JSON("pt")), ("source", JSON("dpt")), ("network", JSON(c.network)), ("dataset", JSON(c.dataset)),
      ("epoch", JSON(String(c.epoch))), ("layout", JSON(pytorchLayout ? "pytorch" : "dpt")),
    ]))]
    var data: [UInt8] = []
    var at = 0
    for t in c.tensors {
      let count = t.shape.reduce(1, *)
      guard at + count * size <= raw.count else { throw CheckpointError("the checkpoint's tensors exceed its parameters") }
      var bytes = Array(raw[at * 1..<(at + count * size)])
      var shape = t.shape
      var name = t.name
      if pytorchLayout && t.layer == "dense" && t.name.hasSuffix(".weight") && shape.count == 2 {
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
      if pytorchLayout && t.layer == "prelu" && t.name.hasSuffix(".slope") { name = String(t.name.dropLast(5)) + "weight" }
      entries.append((name, .object([("dtype", JSON(size == 4 ? "F32" : "F64")), ("shape", .array(shape.map { JSON($0) })),
                                     ("data_offsets", .array([JSON(data.count), JSON(data.count + bytes.count)]))])))
      data += bytes
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

  /// Parses the 8-byte header length, the JSON header and the byte ranges it names; `path` names the file in errors.
  public init(decoding bytes: [UInt8], path: String) throws {
    func bad(_ why: String) -> CheckpointError { CheckpointError("\(path): not a safetensors file (\(why))") }
    guard bytes.count >= 8 else { throw bad("\(bytes.count) bytes") }
    let length = LittleEndian.read(UInt64.self, bytes, at: 0)
    guard length <= UInt64(bytes.count - 8) else { throw bad("its header claims \(length) bytes of \(bytes.count - 8)") }
    let end = 8 + Int(length)
    guard let header = try? JSON.parse(String(decoding: bytes[8..<end], as: UTF8.self)), case .object(let fields) = header
    else { throw bad("the header is not a JSON object") }
    var located: [(start: Int, name: String, entry: Entry)] = []
    for (name, value) in fields where name != "__metadata__" {
      guard let dtype = value["dtype"]?.string, let shape = value["shape"]?.array?.compactMap({ $0.double.map(Int.init) }),
            let offsets = value["data_offsets"]?.array?.compactMap({ $0.double.map(Int.init) }), offsets.count == 2,
            offsets[0] >= 0, offsets[0] <= offsets[1], end + offsets[1] <= bytes.count
      else { throw bad("tensor '\(name)' has no valid dtype, shape and data_offsets") }
      located.append((offsets[0], name, Entry(dtype: dtype, shape: shape, bytes: bytes[(end + offsets[0])..<(end + offsets[1])])))
    }
    for l in located.sorted(by: { $0.start < $1.start }) {
      names.append(l.name)
      entries[l.name] = l.entry
    }
  }

  /// A tensor's values (F32 or F64), in its row-major order.
  public func values(_ name: String, path: String) throws -> [Double] {
    guard let e = entries[name] else { throw CheckpointError("\(path): no tensor '\(name)'") }
    let count = e.shape.reduce(1, *)
    let size = e.dtype == "F32" ? 4 : e.dtype == "F64" ? 8 : 0
    guard size > 0 else { throw CheckpointError("\(path): tensor '\(name)' is \(e.dtype); dpt reads F32 and F64 (convert with tensor.float())") }
    guard e.bytes.count == count * size else {
      throw CheckpointError("\(path): tensor '\(name)' holds \(e.bytes.count) bytes for shape \(e.shape) of \(e.dtype)")
    }
    return Array(e.bytes).withUnsafeBytes { raw in
      size == 4 ? (0..<count).map { Double(Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian)) }
                : (0..<count).map { Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian) }
    }
  }
}

extension SafeTensors {
  /// The flat parameter buffer of `network` from a file in dpt's export layout (`dpt export`: PyTorch's state_dict
  /// names and shapes; dense weights (outputs, inputs), PReLU's slopes "N.weight"). Like PyTorch's
  /// `load_state_dict(strict=True)`: every parameter must be there with its shape, and nothing else.
  public static func parameters<T: LayerKernels>(for network: Network<T>, from file: SafeTensorsFile, path: String) throws -> [T] {
    var p = [T](repeating: 0, count: network.parameterCount)
    var expected: Set<String> = []
    for named in network.namedParameters {
      let index = Int(named.name.prefix { $0 != "." })!
      let kind = String(describing: type(of: network.layers[index])).prefix { $0 != "<" }.lowercased()
      var name = named.name, shape = named.spec.shape
      let transposed = kind == "dense" && name.hasSuffix(".weight") && shape.count == 2
      if transposed { shape = [shape[1], shape[0]] }
      if kind == "prelu" && name.hasSuffix(".slope") { name = String(name.dropLast(5)) + "weight" }
      expected.insert(name)
      guard let e = file.entries[name] else {
        throw WeightsProblem.missingTensor(path: path, name: name, shape: shape, available: file.names)
      }
      guard e.shape == shape else {
        throw WeightsProblem.tensorShape(path: path, name: name, found: e.shape, expected: shape, transposed: transposed)
      }
      let v = try file.values(name, path: path)
      if transposed {
        let (outputs, inputs) = (shape[0], shape[1])
        for i in 0..<inputs { for j in 0..<outputs { p[named.range.lowerBound + i * outputs + j] = T(v[j * inputs + i]) } }
      } else {
        for (k, x) in v.enumerated() { p[named.range.lowerBound + k] = T(x) }
      }
    }
    if let extra = file.names.first(where: { !expected.contains($0) }) {
      throw CheckpointError("\(path): tensor '\(extra)' is not a parameter of this model (\(network.summary))")
    }
    return p
  }
}
