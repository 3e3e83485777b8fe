import Foundation
import Testing
import _Support

struct ELFBuildIDTests {
  /// A 64-bit ELF file with two notes in one PT_NOTE segment: another vendor's first, then GNU's build id.
  static func elf(id: [UInt8]) -> [UInt8] {
    func le(_ v: Int, _ bytes: Int) -> [UInt8] { (0..<bytes).map { UInt8((v >> (8 * $0)) & 0xFF) } }
    let other = le(4, 4) + le(4, 4) + le(1, 4) + Array("Xen\0".utf8) + [1, 2, 3, 4]
    let gnu = le(4, 4) + le(id.count, 4) + le(3, 4) + Array("GNU\0".utf8) + id + [UInt8](repeating: 0, count: (4 - id.count % 4) % 4)
    let notes = other + gnu
    var header = [UInt8](repeating: 0, count: 64)
    header.replaceSubrange(0..<6, with: [0x7F, 0x45, 0x4C, 0x46, 2, 1])
    header.replaceSubrange(32..<40, with: le(64, 8))  // e_phoff
    header.replaceSubrange(54..<56, with: le(56, 2))  // e_phentsize
    header.replaceSubrange(56..<58, with: le(2, 2))  // e_phnum
    var load = [UInt8](repeating: 0, count: 56)
    load.replaceSubrange(0..<4, with: le(1, 4))  // PT_LOAD: skipped
    var note = [UInt8](repeating: 0, count: 56)
    note.replaceSubrange(0..<4, with: le(4, 4))  // PT_NOTE
    note.replaceSubrange(8..<16, with: le(64 + 112, 8))
    note.replaceSubrange(32..<40, with: le(notes.count, 8))
    return header + load + note + notes
  }

  static func read(_ bytes: [UInt8]) -> String? {
    ELFBuildID.find { offset, count in offset + count <= bytes.count ? Array(bytes[offset..<offset + count]) : nil }
  }

  @Test func theBuildIDIsFoundPastOtherNotes() {
    let commit: [UInt8] = [0x4e, 0xbb, 0xc5, 0x02, 0xed, 0x2a, 0x87, 0x06, 0xec, 0x73, 0x53, 0xdf, 0x8f, 0x91, 0x1d, 0x1c, 0x0a, 0xf4, 0xce, 0x49]
    #expect(Self.read(Self.elf(id: commit)) == "4ebbc502ed2a8706ec7353df8f911d1c0af4ce49")
  }

  @Test func truncatedOrForeignFilesHaveNone() {
    let whole = Self.elf(id: [1, 2, 3, 4, 5, 6, 7, 8])
    #expect(Self.read(whole) == "0102030405060708")
    for cut in [0, 10, 63, 100, 180, whole.count - 3] { #expect(Self.read(Array(whole.prefix(cut))) == nil, "cut at \(cut)") }
    var big = whole
    big[5] = 2  // big-endian: not read
    #expect(Self.read(big) == nil)
    #expect(Self.read(Array("#!/bin/sh\necho\n".utf8) + [UInt8](repeating: 0, count: 64)) == nil)
  }

  /// The commit in the ids scripts/lib.sh writes, and none in the linker's own hashes.
  @Test func theCommitIsReadOnlyFromTheScriptsIDs() {
    let commit = "77e413c7c7c1d0b2a9e5f1c3b4a6d8e0f2a4c6e8"
    #expect(ELFBuildID.commit(in: "647074" + "00" + commit) == "77e413c7c7c1")
    #expect(ELFBuildID.commit(in: "647074" + "01" + commit) == "77e413c7c7c1+changes")
    #expect(ELFBuildID.commit(in: commit) == nil)  // 20 bytes: a content hash, not ours
    #expect(ELFBuildID.commit(in: "647075" + "00" + commit) == nil)
    #expect(ELFBuildID.commit(in: nil) == nil)
  }

  /// This test process's own build id, as binutils' readelf (which the toolchain's linker comes with) reads it.
  @Test func theRunningProgramsIDIsReadelfs() throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/readelf")
    p.arguments = ["-n", "/proc/\(ProcessInfo.processInfo.processIdentifier)/exe"]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    let line = try #require(text.split(separator: "\n").first { $0.contains("Build ID:") }, "the linker wrote a build id")
    #expect(ELFBuildID.ofThisProgram() == line.split(separator: " ").last.map(String.init))
  }
}
