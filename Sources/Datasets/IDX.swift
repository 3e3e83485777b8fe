import _Support

/// The IDX format of MNIST: a 4-byte magic number (0, 0, type, number of dimensions), each dimension as a
/// big-endian UInt32, then the elements in row-major order. dpt reads unsigned bytes (type 0x08), the type of
/// every MNIST-format image and label file.
public struct IDXArray: Equatable {
  public var dimensions: [Int]
  public var bytes: [UInt8]

  public init(dimensions: [Int], bytes: [UInt8]) {
    self.dimensions = dimensions
    self.bytes = bytes
  }

  /// Parses an IDX file's bytes; `path` names the file in errors.
  public init(parsing data: [UInt8], path: String) throws {
    let (dims, header, expected) = try IDXArray.header(data, path: path)
    let actual = data.count - header
    guard actual >= expected else {
      throw DataProblem.malformed("\(path): truncated: the header declares \(dims.map(String.init).joined(separator: "x")) = \(expected) bytes of data but the file holds \(actual); download or copy it again")
    }
    guard actual == expected else {
      throw DataProblem.malformed("\(path): \(actual - expected) bytes after the \(expected) the header declares: not a valid IDX file")
    }
    self.dimensions = dims
    self.bytes = Array(data[header...])
  }

  /// The dimensions the header at the start of `data` declares, the header's length and the data's byte count.
  static func header(_ data: [UInt8], path: String) throws -> (dimensions: [Int], headerBytes: Int, dataBytes: Int) {
    guard data.count >= 4 else {
      throw DataProblem.malformed("\(path): \(data.count) bytes is too short for an IDX file (the file is truncated or empty)")
    }
    guard data[0] == 0, data[1] == 0 else {
      throw DataProblem.malformed("\(path): wrong IDX magic number \(hex(data[0..<4])) (expected 00 00 08 0N): not an MNIST-format file")
    }
    guard data[2] == 0x08 else {
      throw DataProblem.malformed("\(path): IDX element type 0x\(String(data[2], radix: 16)) is not supported (dpt reads unsigned bytes, type 0x08)")
    }
    let rank = Int(data[3])
    guard (1...4).contains(rank) else {
      throw DataProblem.malformed("\(path): IDX header declares \(rank) dimensions (expected 1 to 4)")
    }
    let header = 4 + 4 * rank
    guard data.count >= header else {
      throw DataProblem.malformed("\(path): truncated IDX header (\(data.count) bytes, needs \(header))")
    }
    var dims: [Int] = []
    for d in 0..<rank {
      let o = 4 + 4 * d
      dims.append(Int(data[o]) << 24 | Int(data[o + 1]) << 16 | Int(data[o + 2]) << 8 | Int(data[o + 3]))
    }
    // Four 32-bit dimensions can multiply past Int.max: checked, so a damaged header is an error, not a trap.
    var expected = 1
    for d in dims {
      let (product, overflow) = expected.multipliedReportingOverflow(by: d)
      guard !overflow, product <= MachineMemory.fileLimit else {
        throw DataProblem.malformed("\(path): the header declares \(dims.map(String.init).joined(separator: "x")) elements, more than dpt reads from one file (\(ByteCount.text(MachineMemory.fileLimit))): the file is damaged")
      }
      expected = product
    }
    return (dims, header, expected)
  }

  /// Reads an IDX file, raw or gzip-compressed. A compressed file is inflated to at most what its header declares:
  /// the header first, then exactly its data.
  public static func read(_ path: String) throws -> IDXArray {
    let raw = try FileBytes.raw(path)
    guard FileBytes.isGzip(raw) else { return try IDXArray(parsing: raw, path: path) }
    let head = try FileBytes.gunzip(raw, path: path, limit: 20, prefix: true)
    let (dims, header, expected) = try IDXArray.header(head, path: path)
    let declared = dims.map(String.init).joined(separator: "x")
    let bytes = try FileBytes.gunzip(raw, path: path, limit: header + expected,
                                     tooLong: "inflates to more than the \(header + expected) bytes its IDX header declares (\(declared)): not a valid IDX file")
    return try IDXArray(parsing: bytes, path: path)
  }

  /// The file's bytes in IDX format (header + data), for writing test files.
  public var encoded: [UInt8] {
    var out: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
    for d in dimensions { out += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
    return out + bytes
  }
}

private func hex(_ b: ArraySlice<UInt8>) -> String {
  b.map { String(format2($0)) }.joined(separator: " ")
}

private func format2(_ v: UInt8) -> String {
  let s = String(v, radix: 16)
  return s.count == 1 ? "0" + s : s
}
