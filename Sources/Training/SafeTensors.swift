import Foundation

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
    return (0..<8).map { UInt8((length >> (8 * UInt64($0))) & 0xFF) } + header + data
  }
}
