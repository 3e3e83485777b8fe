import Foundation
import Testing
import _Support
import _TestSupport

/// dpt owns only what it wrote: the manifest, the lock, replace and resume, and the checks that change nothing.
@Suite struct OutputFolderTests {
  func manifest(_ folder: String) throws -> JSON {
    try JSON.parse(try String(contentsOfFile: Files.join(folder, OutputFolder.manifestName), encoding: .utf8))
  }

  @Test func aFreshRunCreatesItsFolderAndRemovesItWhenItWritesNothing() throws {
    let dir = TemporaryDirectory("dpt-owned")
    let path = dir.file("a/b/run")
    do {
      let f = try OutputFolder(path, command: "test", claim: .fresh)
      #expect(FileManager.default.fileExists(atPath: path), "created to hold the lock")
      f.release()
    }
    #expect(!FileManager.default.fileExists(atPath: dir.file("a")), "a run that wrote nothing leaves nothing")
    let f = try OutputFolder(path, command: "test", claim: .fresh)
    try f.write("config.json", "{}")
    f.release()
    #expect(TemporaryDirectory.list(path) == [".dpt-run.json", "config.json"])
    #expect(try manifest(path)["files"]?.array == [JSON("config.json")])
  }

  /// The issue's reproduction: --overwrite of a folder holding someone's project removes nothing of it.
  @Test func replacingRemovesOnlyListedFiles() throws {
    let dir = TemporaryDirectory("dpt-owned")
    let h = dir.file("H")
    try FileManager.default.createDirectory(atPath: h + "/projectA/src", withIntermediateDirectories: true)
    dir.write("H/projectA/config.json", "{}")
    dir.write("H/projectA/src/main.c", "work")
    #expect(throws: OutputProblem.foreignFiles(path: h, names: ["projectA"])) {
      try OutputFolder(h, command: "test", claim: .replace)
    }
    #expect(FileManager.default.fileExists(atPath: h + "/projectA/src/main.c"))
    // A run of dpt's, then a user's file beside it, then another run replacing the first.
    let run = dir.file("run")
    let first = try OutputFolder(run, command: "test", claim: .fresh)
    try first.write("metrics.jsonl", "1\n")
    try first.write("old-only.svg", "<svg/>")
    try first.subfolder("01_setting").write("metrics.jsonl", "1\n")
    first.release()
    dir.write("run/notes.md", "mine")
    dir.write("run/01_setting/mine.txt", "mine too")
    #expect(throws: OutputProblem.self) { try OutputFolder(run, command: "test", claim: .fresh) }
    let second = try OutputFolder(run, command: "test", claim: .replace, willWrite: ["metrics.jsonl"])
    #expect(TemporaryDirectory.list(run).contains("old-only.svg"), "nothing is removed before the first write")
    try second.write("metrics.jsonl", "2\n")
    second.release()
    #expect(TemporaryDirectory.list(run) == [".dpt-run.json", "01_setting", "metrics.jsonl", "notes.md"])
    #expect(TemporaryDirectory.list(run + "/01_setting") == ["mine.txt"], "the user's file keeps its folder")
    #expect(try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8) == "2\n")
    // A file the new run would write that no run listed is never replaced, even with replace.
    dir.write("run/report.html", "the user's")
    #expect(throws: OutputProblem.foreignFiles(path: run, names: ["report.html"])) {
      try OutputFolder(run, command: "test", claim: .replace, willWrite: ["report.html"])
    }
  }

  @Test func resumeContinuesOnlyItsOwnRun() throws {
    let dir = TemporaryDirectory("dpt-owned")
    let run = dir.file("run")
    let first = try OutputFolder(run, command: "test", claim: .fresh, runID: "one")
    try first.write("metrics.jsonl", "1\n")
    first.release()
    #expect(throws: OutputProblem.self) { try OutputFolder(run, command: "test", claim: .resume(runID: "two")) }
    let again = try OutputFolder(run, command: "test", claim: .resume(runID: "one"))
    try again.write("metrics.csv", "x\n")
    again.release()
    #expect(try manifest(run)["files"]?.array == [JSON("metrics.jsonl"), JSON("metrics.csv")])
  }

  @Test func aSecondClaimWhileTheFirstLivesIsRefusedNamingIt() throws {
    let dir = TemporaryDirectory("dpt-owned")
    let first = try OutputFolder(dir.file("run"), command: "dpt train", claim: .fresh)
    try first.write("config.json", "{}")
    do {
      _ = try OutputFolder(dir.file("run"), command: "dpt train", claim: .replace)
      Issue.record("a locked folder was claimed twice")
    } catch OutputProblem.inUse(_, let pid, let host, _) {
      #expect(pid == Int(getpid()) && host == ProcessInfo.processInfo.hostName)
    }
    first.release()
    _ = try OutputFolder(dir.file("run"), command: "dpt train", claim: .replace)
  }

  /// A crafted manifest cannot make dpt delete outside its folder; stale temporary files of listed names go.
  @Test func manifestsAreCheckedAndStaleTemporaryFilesRemoved() throws {
    let dir = TemporaryDirectory("dpt-owned")
    dir.write("victim.txt", "keep")
    try FileManager.default.createDirectory(atPath: dir.file("run"), withIntermediateDirectories: true)
    dir.write("run/.dpt-run.json", #"{"format":"dpt output folder","run_id":"x","files":["../victim.txt"],"folders":[]}"#)
    #expect(throws: OutputProblem.self) { try OutputFolder(dir.file("run"), command: "test", claim: .replace) }
    #expect(FileManager.default.fileExists(atPath: dir.file("victim.txt")))
    dir.write("run/.dpt-run.json", #"{"format":"dpt output folder","run_id":"x","files":["checkpoint.dptc"],"folders":[]}"#)
    dir.write("run/checkpoint.dptc", "old")
    dir.write("run/checkpoint.dptc.tmp-999999", "half a checkpoint")
    let f = try OutputFolder(dir.file("run"), command: "test", claim: .resume(runID: "x"))
    try f.write("checkpoint.dptc", "new")
    f.release()
    #expect(TemporaryDirectory.list(dir.file("run")) == [".dpt-run.json", "checkpoint.dptc"])
  }

  @Test func pathsWithoutFoundationsPathMethods() {
    #expect(Files.parent("Z") == "." && Files.parent("/Z") == "/" && Files.parent("a/b/") == "a" && Files.parent("a/b") == "a")
    #expect(Files.join("a", "b") == "a/b" && Files.join("a/", "b") == "a/b" && Files.join("", "b") == "b")
    #expect(Files.lastComponent("a/b/") == "b" && Files.lastComponent("Z") == "Z")
    let dir = TemporaryDirectory("dpt-paths")
    #expect(Files.resolved(dir.file("x/y")) == Files.join(Files.resolved(dir.path), "x/y"))
  }
}

/// Every number and container read from a file is bounded before it is used.
@Suite struct JSONLimitTests {
  @Test func deepNestingIsAnErrorNotAStackOverflow() {
    for open in ["[", "{\"a\":"] {
      let text = String(repeating: open, count: 100_000)
      #expect(throws: JSON.ParseError.self) { try JSON.parse(text) }
    }
    #expect((try? JSON.parse(String(repeating: "[", count: 60) + String(repeating: "]", count: 60))) != nil)
  }

  @Test func integersAreExactOrNil() throws {
    #expect(try JSON.parse("42").int == 42)
    #expect(try JSON.parse("1e300").int == nil && JSON.parse("-40.5").int == nil && JSON.parse("9223372036854774784").int == nil)
    #expect(try JSON.parse("-40").int == -40)
  }

  /// Seeded mutations of a real header: parsed or rejected with ParseError, never a crash.
  @Test func fuzzedTextIsParsedOrRejected() {
    let seed = Array(#"{"format":"dpt checkpoint","epoch":3,"sections":[{"name":"parameters","bytes":40}],"config":{"hidden":[16,8],"x":"a\u00e9\n"}}"#.utf8)
    var mutator = Mutator(seed: 18, alphabet: Array("{}[]\":,0123456789-.eE\\u ".utf8))
    let r = Fuzzing.run(rounds: 20_000, input: { _ in mutator.mutate(seed) }, read: { _ = try JSON.parse(bytes: $0) },
                        isClean: { $0 is JSON.ParseError })
    #expect(r.unexpected.isEmpty)
    #expect(r.read > 0 && r.rejected > 0)
  }
}
