import Foundation

/// A file or folder that could not be read or written, with the path and the reason in one line.
public struct FileError: Error, CustomStringConvertible {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// A file's identity on this machine (device and inode): two paths name the same file exactly when these agree,
/// whatever links, `..` or bind mounts lie between them.
public struct FileIdentity: Hashable, Sendable {
  public var device: UInt64
  public var inode: UInt64

  /// The identity of the file `path` names (links followed); nil when there is none.
  public init?(_ path: String) {
    var s = stat()
    guard stat(path, &s) == 0 else { return nil }
    device = UInt64(s.st_dev)
    inode = UInt64(s.st_ino)
  }
}

/// The file operations every module shares: whole-or-nothing writes, bounded reads, folders, paths. Paths are handled
/// as text with '/' separators (no Foundation path object: NSString's path methods trap on some one-letter names).
public enum Files {
  /// `folder/name` ("name" when `folder` is empty).
  public static func join(_ folder: String, _ name: String) -> String {
    if folder.isEmpty { return name }
    if name.hasPrefix("/") { return name }
    return folder.hasSuffix("/") ? folder + name : folder + "/" + name
  }

  /// The folder that holds `path`: "." for a bare name, "/" for a name at the root; trailing slashes are ignored.
  public static func parent(_ path: String) -> String {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
    guard let slash = p.lastIndex(of: "/") else { return "." }
    let head = p[..<slash]
    return head.isEmpty ? "/" : String(head)
  }

  /// The last component of `path` (trailing slashes ignored).
  public static func lastComponent(_ path: String) -> String {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
    return String(p.split(separator: "/").last ?? p)
  }

  /// The absolute path with links resolved: the nearest existing ancestor through realpath, then the missing rest
  /// as given (so a folder that will be created compares equal to itself once it exists).
  public static func resolved(_ path: String) -> String {
    var missing: [String] = []
    var existing = path.isEmpty ? "." : path
    while true {
      if let r = realpath(existing, nil) {
        defer { free(r) }
        var out = String(cString: r)
        for m in missing.reversed() { out = join(out, m) }
        return out
      }
      let parent = parent(existing)
      if parent == existing { return path }
      missing.append(lastComponent(existing))
      existing = parent
    }
  }

  /// Creates `path` and its parents (nothing when it exists), or throws naming the folder and the reason.
  public static func createFolder(_ path: String) throws {
    do {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
      throw FileError("\(path): cannot create the folder (\(reason(errno)))")
    }
  }

  /// strerror's text, with the fix a user can make for the usual causes.
  public static func reason(_ code: Int32) -> String {
    let text = String(cString: strerror(code))
    switch code {
    case ENOSPC, EDQUOT: return "\(text): free some space or write elsewhere"
    case EACCES, EPERM, EROFS: return "\(text): check the folder's permissions"
    default: return text
    }
  }

  /// The temporary name a whole-or-nothing write uses for `path` before renaming it into place.
  public static func temporaryName(_ path: String) -> String { path + ".tmp-\(getpid())" }

  /// Whether `name` is the temporary file of a whole-or-nothing write of `target` (by any process).
  public static func isTemporary(_ name: String, of target: String) -> Bool {
    guard name.hasPrefix(target + ".tmp-") else { return false }
    let pid = name.dropFirst(target.count + 5)
    return !pid.isEmpty && pid.allSatisfy(\.isNumber)
  }

  /// Writes a file whole or not at all: a temporary file in the same folder, fsync, then rename over the target. A
  /// write that fails leaves the target as it was and no temporary file.
  public static func writeAtomically(_ text: String, to path: String) throws {
    try writeAtomically(Data(text.utf8), to: path)
  }

  public static func writeAtomically(_ data: Data, to path: String) throws {
    let temporary = temporaryName(path)
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileError("\(path): cannot be written (\(reason(errno)))") }
    var failure = writeAll(fd, data)
    if failure == 0 && fsync(fd) != 0 { failure = errno }
    if close(fd) != 0 && failure == 0 { failure = errno }
    if failure == 0 && rename(temporary, path) != 0 { failure = errno }
    guard failure == 0 else {
      unlink(temporary)
      throw FileError("\(path): write failed (\(reason(failure)))")
    }
  }

  /// The first `bytes` bytes of the regular file `path` (fewer when it is shorter).
  public static func head(_ path: String, bytes n: Int) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { throw FileError("\(path): cannot be read (\(reason(errno)))") }
    defer { close(fd) }
    var out = [UInt8](repeating: 0, count: n)
    var got = 0
    while got < n {
      let r = out.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress! + got, n - got) }
      if r < 0 && errno == EINTR { continue }
      if r <= 0 { break }
      got += r
    }
    return Array(out[0..<got])
  }

  /// What a single-file output's path names now.
  public enum OutputTarget: Equatable, Sendable {
    /// Nothing yet: a new file.
    case new
    /// A regular file (through a link: `path` is the file the link names), which a write replaces whole.
    case file(path: String)
    /// A character device (/dev/null, a terminal) or a FIFO (a pipe, /dev/stdout on a pipe), written through.
    case stream
    /// `-`: this process's standard output.
    case standardOutput
  }

  /// What `path` names, links followed; an error for what dpt never writes: a folder, a block device, a socket, a
  /// link to nothing.
  public static func outputTarget(_ path: String) throws -> OutputTarget {
    if path == "-" { return .standardOutput }
    var l = stat()
    guard lstat(path, &l) == 0 else {
      if errno == ENOENT { return .new }
      throw FileError("\(path): cannot be examined (\(reason(errno)))")
    }
    var s = stat()
    guard stat(path, &s) == 0 else {
      throw FileError("\(path) is a link to nothing (\(reason(errno))): remove the link or give another file")
    }
    switch s.st_mode & S_IFMT {
    case S_IFREG:
      // Through a link, the file it names is replaced and the link stays.
      return .file(path: (l.st_mode & S_IFMT) == S_IFLNK ? resolved(path) : path)
    case S_IFCHR, S_IFIFO: return .stream
    case S_IFDIR: throw FileError("\(path) is a folder: give a file name")
    default: throw FileError("\(path) is a block device or a socket: dpt writes files, character devices and pipes only")
    }
  }

  /// Writes a single-file output whole: a new or regular file by `writeAtomically` (through a link, to the file it
  /// names, which the link keeps naming); a character device or a pipe written through, never renamed over; `-` to
  /// standard output. A device that takes no bytes (/dev/full) is an error.
  public static func writeOutput(_ data: Data, to path: String) throws {
    switch try outputTarget(path) {
    case .new: try writeAtomically(data, to: path)
    case .file(let target): try writeAtomically(data, to: target)
    case .standardOutput:
      let failure = writeAll(STDOUT_FILENO, data)
      guard failure == 0 else { throw FileError("standard output: write failed (\(reason(failure)))") }
    case .stream:
      let fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY)
      guard fd >= 0 else { throw FileError("\(path): cannot be written (\(reason(errno)))") }
      var failure = writeAll(fd, data)
      if close(fd) != 0 && failure == 0 { failure = errno }
      guard failure == 0 else { throw FileError("\(path): write failed (\(reason(failure)))") }
    }
  }

  public static func writeOutput(_ text: String, to path: String) throws { try writeOutput(Data(text.utf8), to: path) }

  /// Writes all of `data` to `fd`; returns 0, or the errno of the write that failed (ENOSPC when none was set).
  static func writeAll(_ fd: Int32, _ data: Data) -> Int32 {
    data.withUnsafeBytes { b -> Int32 in
      var off = 0
      while off < b.count {
        let n = Foundation.write(fd, b.baseAddress! + off, b.count - off)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return n < 0 ? errno : ENOSPC }
        off += n
      }
      return 0
    }
  }

  /// The bytes of a regular file (or a pipe), at most `limit` of them: a device such as /dev/zero, or a file larger
  /// than the limit, is an error naming the file, before anything is read. `missing` is the advice when there is no
  /// such file.
  public static func read(_ path: String, limit: Int, missing advice: String, limitReason: String = "half this machine's memory") throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      let code = errno
      if code == ENOENT { throw FileError("\(path): no such file (\(advice))") }
      throw FileError("\(path): cannot be read (\(reason(code)))")
    }
    defer { close(fd) }
    var s = stat()
    guard fstat(fd, &s) == 0 else { throw FileError("\(path): cannot be read (\(reason(errno)))") }
    let kind = s.st_mode & S_IFMT
    if kind == S_IFDIR { throw FileError("\(path): is a folder, not a file") }
    guard kind == S_IFREG || kind == S_IFIFO else {
      throw FileError("\(path): is not a regular file (a device or socket): give a file")
    }
    if kind == S_IFREG && Int(s.st_size) > limit {
      throw FileError("\(path): \(ByteCount.text(Int(s.st_size))) is larger than dpt reads (\(ByteCount.text(limit)), \(limitReason))")
    }
    var bytes = [UInt8]()
    if kind == S_IFREG { bytes.reserveCapacity(Int(s.st_size)) }
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
      let n = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      if n < 0 { throw FileError("\(path): read failed (\(reason(errno)))") }
      if n == 0 { break }
      bytes.append(contentsOf: chunk[0..<n])
      if bytes.count > limit {
        throw FileError("\(path): holds more than dpt reads (\(ByteCount.text(limit)), \(limitReason))")
      }
    }
    return bytes
  }
}

/// A file opened for appending whole records: a record that cannot be written in full is cut off again, so the file
/// never ends in half a line (a full disk leaves the lines written before it).
public final class AppendFile {
  public let path: String
  private var fd: Int32
  private var length: off_t

  /// Opens `path` for appending (created when missing).
  public init(_ path: String) throws {
    self.path = path
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileError("\(path): cannot be written (\(Files.reason(errno)))") }
    length = lseek(fd, 0, SEEK_END)
  }

  deinit { close() }

  /// Appends `data` whole, or throws naming the file and leaves it as it was.
  public func append(_ data: Data) throws {
    guard fd >= 0 else { throw FileError("\(path): already closed") }
    let failure = Files.writeAll(fd, data)
    guard failure == 0 else {
      _ = ftruncate(fd, length)
      throw FileError("\(path): write failed (\(Files.reason(failure)))")
    }
    length += off_t(data.count)
  }

  public func close() {
    if fd >= 0 { _ = Foundation.close(fd) }
    fd = -1
  }
}

/// Sizes in bytes as people read them.
public enum ByteCount {
  /// "318 GB", "9.4 GB", "120 MB", "512 bytes" (powers of 1000).
  public static func text(_ n: Int) -> String { text(Double(n)) }

  public static func text(_ n: Double) -> String {
    for (unit, size) in [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)] where n >= size {
      let v = n / size
      return (v < 10 ? String(format: "%.1f", v) : String(format: "%.0f", v)) + " " + unit
    }
    return "\(Int(n)) bytes"
  }
}

/// The memory of this machine, as the kernel reports it.
public enum MachineMemory {
  /// Bytes a new allocation can take without swapping: MemAvailable of /proc/meminfo, lowered to the room left
  /// under a cgroup's memory limit when one is set; nil when neither can be read.
  public static var availableBytes: Double? {
    var available: Double?
    if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
      for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
        let parts = line.split(separator: " ")
        if parts.count >= 2, let kb = Double(parts[1]) { available = kb * 1024 }
      }
    }
    if let max = try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8),
       let limit = Double(max.trimmingCharacters(in: .whitespacesAndNewlines)),
       let used = (try? String(contentsOfFile: "/sys/fs/cgroup/memory.current", encoding: .utf8))
         .flatMap({ Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
      available = min(available ?? .infinity, limit - used)
    }
    return available
  }

  /// Physical memory in bytes.
  public static var physicalBytes: Double { Double(ProcessInfo.processInfo.physicalMemory) }

  /// The most a single input file may hold, read or inflated: half the physical memory.
  public static var fileLimit: Int { Int(min(physicalBytes / 2, Double(Int.max / 2))) }
}
