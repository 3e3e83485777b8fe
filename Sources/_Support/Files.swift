import Foundation

/// A file or folder that could not be written, with the path and the reason in one line.
public struct FileError: Error, CustomStringConvertible {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// The file operations every module shares: whole-or-nothing writes, folders, paths.
public enum Files {
  /// `folder/name`.
  public static func join(_ folder: String, _ name: String) -> String { (folder as NSString).appendingPathComponent(name) }

  /// Creates `path` and its parents (nothing when it exists), or throws naming the folder and the reason.
  public static func createFolder(_ path: String) throws {
    do {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
      throw FileError("\(path): cannot create the folder (\(error.localizedDescription))")
    }
  }

  /// A new, empty file open for writing (an existing one is emptied).
  public static func create(_ path: String) throws -> FileHandle {
    guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
      throw FileError("\(path): cannot be written (check the folder's permissions and free space)")
    }
    return h
  }

  /// Writes a file whole or not at all: a temporary file in the same folder, fsync, then rename over the target.
  public static func writeAtomically(_ text: String, to path: String) throws {
    try writeAtomically(Data(text.utf8), to: path)
  }

  public static func writeAtomically(_ data: Data, to path: String) throws {
    let temporary = path + ".tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw FileError("\(path): cannot be written (\(String(cString: strerror(errno))))") }
    var ok = data.withUnsafeBytes { b -> Bool in
      var off = 0
      while off < b.count {
        let n = Foundation.write(fd, b.baseAddress! + off, b.count - off)
        if n <= 0 { return false }
        off += n
      }
      return true
    }
    ok = ok && fsync(fd) == 0
    close(fd)
    guard ok, rename(temporary, path) == 0 else {
      let reason = String(cString: strerror(errno))
      unlink(temporary)
      throw FileError("\(path): write failed (\(reason))")
    }
  }
}
