import Foundation
import _CZlib

/// Reading files that may be gzip-compressed.
public enum FileBytes {
  /// The bytes of `path`, inflated when the file starts with the gzip magic number (1f 8b). `whenMissing` is the
  /// advice when there is no such file.
  public static func read(_ path: String, whenMissing advice: String = "check the path, or run `dpt data fetch`") throws -> [UInt8] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw DataError("\(path): no such file (\(advice))")
    }
    guard !isDirectory.boolValue else { throw DataError("\(path): is a folder, not a file") }
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw DataError("\(path): cannot be read (\(String(cString: strerror(errno))))") }
    defer { close(fd) }
    var raw = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
      let n = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
      if n < 0 { throw DataError("\(path): read failed (\(String(cString: strerror(errno))))") }
      if n == 0 { break }
      raw.append(contentsOf: chunk[0..<n])
    }
    if raw.count >= 2 && raw[0] == 0x1F && raw[1] == 0x8B { return try gunzip(raw, path: path) }
    return raw
  }

  /// Inflates a gzip stream with zlib (concatenated members included).
  public static func gunzip(_ input: [UInt8], path: String) throws -> [UInt8] {
    var output = [UInt8]()
    output.reserveCapacity(input.count * 4)
    var stream = z_stream()
    guard dpt_inflate_init_gzip(&stream) == Z_OK else { throw DataError("\(path): zlib could not start inflating") }
    defer { inflateEnd(&stream) }
    // The output chunk grows with the input: small files do not pay for a megabyte of zeroing per call.
    let chunk = min(1 << 20, max(1 << 12, input.count * 8))
    var buffer = [UInt8](repeating: 0, count: chunk)
    try input.withUnsafeBufferPointer { inBuf in
      stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
      stream.avail_in = uInt(inBuf.count)
      while true {
        let status: Int32 = buffer.withUnsafeMutableBufferPointer { out in
          stream.next_out = out.baseAddress
          stream.avail_out = uInt(chunk)
          return inflate(&stream, Z_NO_FLUSH)
        }
        let produced = chunk - Int(stream.avail_out)
        output.append(contentsOf: buffer[0..<produced])
        switch status {
        case Z_STREAM_END:
          if stream.avail_in == 0 { return }
          // Another gzip member follows (files made by `cat a.gz b.gz`).
          guard inflateReset(&stream) == Z_OK else { throw DataError("\(path): zlib reset failed") }
        case Z_OK:
          if stream.avail_in == 0 && produced == 0 {
            throw DataError("\(path): the gzip stream is truncated (download or copy the file again)")
          }
        case Z_BUF_ERROR:
          if stream.avail_in == 0 {
            throw DataError("\(path): the gzip stream is truncated (download or copy the file again)")
          }
        default:
          let reason = stream.msg.map { String(cString: $0) } ?? "error \(status)"
          throw DataError("\(path): not a valid gzip file (\(reason)); replace it with a good copy")
        }
      }
    }
    return output
  }
}
