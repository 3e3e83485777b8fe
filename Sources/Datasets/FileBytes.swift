import Foundation
import _CZlib
import _Support

/// Reading data files that may be gzip-compressed, never without bounds: a file is read only when it is a regular file
/// (or a pipe) no larger than `MachineMemory.fileLimit`, and a gzip stream is inflated only up to a stated number of
/// bytes, so a small file that inflates to gigabytes is an error, not an out-of-memory abort.
public enum FileBytes {
  /// The bytes of `path`, inflated (to at most `limit` bytes) when the file starts with the gzip magic number (1f 8b).
  /// `whenMissing` is the advice when there is no such file.
  public static func read(_ path: String, whenMissing advice: String = "check the path",
                          limit: Int = MachineMemory.fileLimit) throws -> [UInt8] {
    let raw = try raw(path, whenMissing: advice)
    if isGzip(raw) { return try gunzip(raw, path: path, limit: limit) }
    return raw
  }

  /// The file's bytes as they are on disk (no inflation).
  public static func raw(_ path: String, whenMissing advice: String = "check the path") throws -> [UInt8] {
    do { return try Files.read(path, limit: MachineMemory.fileLimit, missing: advice) } catch let e as FileError {
      throw DataProblem.malformed(e.description)
    }
  }

  public static func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B }

  /// Inflates a gzip stream with zlib (concatenated members included). More than `limit` bytes of output is an error
  /// naming the limit; with `prefix`, inflation simply stops after `limit` bytes (to read a header first).
  public static func gunzip(_ input: [UInt8], path: String, limit: Int = MachineMemory.fileLimit, prefix: Bool = false,
                            tooLong: String? = nil) throws -> [UInt8] {
    try inflate(input, path: path, limit: limit, prefix: prefix, tooLong: tooLong, format: .gzip)
  }

  /// What `inflate` reads: a gzip (or zlib) stream, or a zip member's raw deflate.
  public enum Compression: String, Sendable { case gzip, deflate }

  /// Inflates `input` with zlib, to at most `limit` bytes (see `gunzip`).
  public static func inflate(_ input: [UInt8], path: String, limit: Int = MachineMemory.fileLimit, prefix: Bool = false,
                             tooLong: String? = nil, format: Compression) throws -> [UInt8] {
    var output = [UInt8]()
    output.reserveCapacity(min(limit, input.count * 4))
    var stream = z_stream()
    let started = format == .gzip ? dpt_inflate_init_gzip(&stream) : dpt_inflate_init_raw(&stream)
    guard started == Z_OK else { throw DataProblem.malformed("\(path): zlib could not start inflating") }
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
          return _CZlib.inflate(&stream, Z_NO_FLUSH)
        }
        let produced = chunk - Int(stream.avail_out)
        if output.count + produced > limit {
          if prefix {
            output.append(contentsOf: buffer[0..<(limit - output.count)])
            return
          }
          throw DataProblem.malformed(tooLong.map { "\(path): \($0)" }
            ?? "\(path): the \(format) stream inflates to more than \(ByteCount.text(limit)) (half this machine's memory, the most dpt reads from one file)")
        }
        output.append(contentsOf: buffer[0..<produced])
        switch status {
        case Z_STREAM_END:
          if stream.avail_in == 0 || format == .deflate { return }
          // Another gzip member follows (files made by `cat a.gz b.gz`).
          guard inflateReset(&stream) == Z_OK else { throw DataProblem.malformed("\(path): zlib reset failed") }
        case Z_OK:
          if stream.avail_in == 0 && produced == 0 {
            if prefix { return }
            throw DataProblem.malformed("\(path): the \(format) stream is truncated (download or copy the file again)")
          }
        case Z_BUF_ERROR:
          if stream.avail_in == 0 {
            if prefix { return }
            throw DataProblem.malformed("\(path): the \(format) stream is truncated (download or copy the file again)")
          }
        default:
          let reason = stream.msg.map { String(cString: $0) } ?? "error \(status)"
          throw DataProblem.malformed("\(path): not a valid \(format) stream (\(reason)); replace it with a good copy")
        }
      }
    }
    return output
  }
}
