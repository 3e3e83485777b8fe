import Foundation

/// The GNU build id of the running program (its PT_NOTE of type NT_GNU_BUILD_ID), as hex; nil when it has none.
public enum ELFBuildID {
  /// The commit in a build id that dpt's scripts had the linker write (scripts/lib.sh: "dpt", a byte that is 1 for a
  /// tree with uncommitted changes, the commit's 20 bytes), as its first 12 hex digits, "+changes" appended when the
  /// tree had them; nil for any other id (the linker's own hash of a plain `swift build`).
  public static func commit(in id: String?) -> String? {
    guard let id, id.count == 48, id.hasPrefix("647074"), id.allSatisfy(\.isHexDigit) else { return nil }
    let changes = id.dropFirst(6).prefix(2), commit = id.dropFirst(8).prefix(12)
    return String(commit) + (changes == "01" ? "+changes" : "")
  }

  public static func ofThisProgram() -> String? {
    guard let file = FileHandle(forReadingAtPath: "/proc/self/exe") else { return nil }
    defer { try? file.close() }
    return find { offset, count in
      guard (try? file.seek(toOffset: UInt64(offset))) != nil, let data = try? file.read(upToCount: count), data.count == count else { return nil }
      return [UInt8](data)
    }
  }

  /// The build id of a 64-bit little-endian ELF file, read through `read(offset, count)`: its header, its program
  /// headers and its notes, nothing else.
  public static func find(read: (_ offset: Int, _ count: Int) -> [UInt8]?) -> String? {
    func int(_ b: [UInt8], _ at: Int, _ bytes: Int) -> Int { (0..<bytes).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) } }
    guard let header = read(0, 64), header.starts(with: [0x7F, 0x45, 0x4C, 0x46, 2, 1]) else { return nil }
    let phoff = int(header, 32, 8), phentsize = int(header, 54, 2), phnum = int(header, 56, 2)
    guard phentsize >= 56, phnum < 4096, let table = read(phoff, phentsize * phnum) else { return nil }
    for h in 0..<phnum where int(table, h * phentsize, 4) == 4 {  // PT_NOTE
      let offset = int(table, h * phentsize + 8, 8), size = int(table, h * phentsize + 32, 8)
      guard size <= 1 << 20, let notes = read(offset, size) else { continue }
      var at = 0
      while at + 12 <= notes.count {
        let namesz = int(notes, at, 4), descsz = int(notes, at + 4, 4), type = int(notes, at + 8, 4)
        let name = at + 12, desc = name + (namesz + 3) / 4 * 4
        guard desc + descsz <= notes.count else { break }
        if type == 3, namesz == 4, int(notes, name, 4) == 0x0055_4E47 {  // NT_GNU_BUILD_ID, "GNU\0"
          return notes[desc..<desc + descsz].map { String(format: "%02x", $0) }.joined()
        }
        at = desc + (descsz + 3) / 4 * 4
      }
    }
    return nil
  }
}
