import Foundation

/// Why a folder cannot take a run's results. The values are the user's paths; the command line adds the flag.
public enum OutputProblem: Error, CustomStringConvertible, Equatable {
  /// The path is a file.
  case notAFolder(path: String)
  /// The path is a symbolic link to nothing.
  case danglingLink(path: String, target: String)
  case cannotCreate(path: String, reason: String)
  case notWritable(path: String, reason: String)
  /// Another dpt process holds the folder's lock.
  case inUse(path: String, pid: Int?, host: String?, command: String?)
  /// The folder holds files no dpt run listed as its own (`names`, at most a few).
  case foreignFiles(path: String, names: [String])
  /// The folder holds another run's results (and the claim was not to replace them).
  case anotherRun(path: String, command: String?, started: String?)
  /// The folder's manifest cannot be read.
  case badManifest(path: String, reason: String)

  public var description: String {
    switch self {
    case .notAFolder(let p): "\(p) is a file, not a folder"
    case .danglingLink(let p, let t): "\(p) is a link to \(t), which does not exist"
    case .cannotCreate(let p, let r): "\(p): cannot create the folder (\(r))"
    case .notWritable(let p, let r): "\(p): cannot be written (\(r))"
    case .inUse(let p, let pid, let host, let command):
      "\(p) is in use by another run (\(command ?? "dpt")\(pid.map { ", pid \($0)" } ?? "")\(host.map { " on \($0)" } ?? ""))"
    case .foreignFiles(let p, let names):
      "\(p) holds files dpt did not write (\(names.joined(separator: ", ")))"
    case .anotherRun(let p, let command, let started):
      "\(p) already holds another run's results (\(command ?? "dpt")\(started.map { ", started \($0)" } ?? ""))"
    case .badManifest(let p, let r): "\(p)/\(OutputFolder.manifestName) is not a dpt manifest (\(r))"
    }
  }
}

/// A folder dpt writes a run's results into, which it owns file by file.
///
/// dpt deletes and replaces only what it wrote. Every output folder carries a manifest (`.dpt-run.json`: the run's
/// id, command, host and pid, and every file and sub-folder the run wrote), and a run holds an advisory lock (flock) on
/// the folder while it lives, so a second run into it is an error naming the first. Claiming a folder checks
/// everything and changes nothing (a missing folder is created to hold the lock, and removed again if the run writes
/// nothing); the first write begins the run: only then are the files of the run being replaced removed, exactly
/// those its manifest lists. A folder that exists without a manifest must be empty: dpt never writes among files it
/// did not write.
public final class OutputFolder {
  /// How a run takes a folder that already holds results.
  public enum Claim: Equatable, Sendable {
    /// A new run: the folder must be new, empty, or hold no run.
    case fresh
    /// `--overwrite`: another run's listed files are removed when this run first writes.
    case replace
    /// The run with this id continues (a resume): its files stay, the new ones join them.
    case resume(runID: String)
  }

  public static let manifestName = ".dpt-run.json"
  /// Who holds the lock (pid, host, command), for the message a second run gets; removed when the lock is released.
  public static let lockName = ".dpt-run.lock"

  public let path: String
  /// The run's id: new for a fresh run, the resumed run's for a resume.
  public let runID: String
  let command: String
  let claim: Claim
  /// The lock (an open descriptor of the folder), -1 once released.
  private var lock: Int32 = -1
  /// Folders this claim created (outermost first): removed again when the run writes nothing.
  private var created: [String] = []
  /// The manifest found when claiming (nil: none).
  let previous: Manifest?
  /// What this run's manifest lists.
  private var manifest: Manifest
  private var begun = false
  private var holdsLockFile = false
  private var parent: OutputFolder?
  private var children: [String: OutputFolder] = [:]

  /// The manifest's content.
  struct Manifest {
    var runID: String
    var command: String
    var host: String
    var pid: Int
    var started: String
    var files: [String]
    var folders: [String]

    var json: JSON {
      .object([("format", JSON("dpt output folder")), ("version", JSON(1)), ("run_id", JSON(runID)),
               ("command", JSON(command)), ("host", JSON(host)), ("pid", JSON(pid)), ("started", JSON(started)),
               ("files", .array(files.map { JSON($0) })), ("folders", .array(folders.map { JSON($0) }))])
    }

    /// Reads a manifest; every listed name must be a plain name inside the folder (no '/', no '..'): a crafted
    /// manifest cannot make dpt delete anything outside it.
    init(parsing bytes: [UInt8], folder: String) throws {
      guard let j = try? JSON.parse(bytes: bytes, maximumBytes: 1 << 24), j["format"]?.string == "dpt output folder" else {
        throw OutputProblem.badManifest(path: folder, reason: "not JSON of format \"dpt output folder\"")
      }
      func names(_ key: String) throws -> [String] {
        guard let a = j[key]?.array else { throw OutputProblem.badManifest(path: folder, reason: "no '\(key)' list") }
        return try a.map { v in
          guard let n = v.string, OutputFolder.isPlainName(n) else {
            throw OutputProblem.badManifest(path: folder, reason: "'\(key)' lists \(v.serialized()), not a name in the folder")
          }
          return n
        }
      }
      runID = j["run_id"]?.string ?? ""
      command = j["command"]?.string ?? "dpt"
      host = j["host"]?.string ?? ""
      pid = j["pid"]?.int ?? 0
      started = j["started"]?.string ?? ""
      files = try names("files")
      folders = try names("folders")
    }

    init(runID: String, command: String, files: [String] = [], folders: [String] = []) {
      self.runID = runID
      self.command = command
      host = ProcessInfo.processInfo.hostName
      pid = Int(getpid())
      let f = ISO8601DateFormatter()
      started = f.string(from: Date())
      self.files = files
      self.folders = folders
    }
  }

  /// A name that stays inside its folder.
  public static func isPlainName(_ n: String) -> Bool {
    !n.isEmpty && n != "." && n != ".." && !n.contains("/") && !n.contains("\0") && n != manifestName
  }

  /// A new run id.
  public static func newRunID() -> String { UUID().uuidString.lowercased() }

  /// Claims `path` for a run of `command` that will write the files `willWrite` (names, or "name/" for folders):
  /// checks that the folder can be written, takes its lock, and reads what it holds. Changes nothing on disk but
  /// creating a missing folder (removed again by `release` if nothing is written).
  public init(_ path: String, command: String, claim: Claim, runID: String? = nil, willWrite: [String] = []) throws {
    guard !path.isEmpty else { throw OutputProblem.cannotCreate(path: path, reason: "an empty path") }
    self.path = path
    self.command = command
    self.claim = claim
    if case .resume(let id) = claim { self.runID = id } else { self.runID = runID ?? OutputFolder.newRunID() }
    var s = stat()
    if lstat(path, &s) == 0 && (s.st_mode & S_IFMT) == S_IFLNK && stat(path, &s) != 0 {
      let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
      throw OutputProblem.danglingLink(path: path, target: target)
    }
    if stat(path, &s) == 0 {
      guard (s.st_mode & S_IFMT) == S_IFDIR else { throw OutputProblem.notAFolder(path: path) }
    } else {
      created = try OutputFolder.createMissing(path)
    }
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw OutputProblem.notWritable(path: path, reason: Files.reason(errno)) }
    lock = fd
    var found: Manifest?
    do {
      guard access(path, W_OK | X_OK) == 0 else { throw OutputProblem.notWritable(path: path, reason: Files.reason(errno)) }
      if flock(fd, LOCK_EX | LOCK_NB) != 0 {
        let holder = (try? Files.read(Files.join(path, OutputFolder.lockName), limit: 4096, missing: ""))
          .flatMap { try? JSON.parse(bytes: $0) }
        throw OutputProblem.inUse(path: path, pid: holder?["pid"]?.int, host: holder?["host"]?.string,
                                  command: holder?["command"]?.string)
      }
      let holder = JSON.object([("pid", JSON(Int(getpid()))), ("host", JSON(ProcessInfo.processInfo.hostName)),
                                ("command", JSON(command))])
      try? Files.writeAtomically(holder.serialized() + "\n", to: Files.join(path, OutputFolder.lockName))
      holdsLockFile = true
      found = try OutputFolder.readManifest(path)
      try OutputFolder.check(path, manifest: found, claim: claim, willWrite: willWrite)
    } catch {
      previous = nil
      manifest = Manifest(runID: "", command: command)
      release()
      throw error
    }
    previous = found
    if case .resume = claim, let found {
      manifest = Manifest(runID: self.runID, command: command, files: found.files, folders: found.folders)
    } else {
      manifest = Manifest(runID: self.runID, command: command)
    }
  }

  /// A sub-folder of a claimed folder (a sweep's setting, TensorBoard's runs): covered by the parent's lock, listed in
  /// the parent's manifest, with a manifest of its own.
  init(child name: String, of parent: OutputFolder) throws {
    path = Files.join(parent.path, name)
    command = parent.command
    claim = parent.claim
    runID = parent.runID
    self.parent = parent
    var s = stat()
    if stat(path, &s) == 0 {
      guard (s.st_mode & S_IFMT) == S_IFDIR else { throw OutputProblem.notAFolder(path: path) }
      previous = try OutputFolder.readManifest(path)
      try OutputFolder.check(path, manifest: previous, claim: claim, willWrite: [])
    } else {
      previous = nil
    }
    if case .resume = claim, let previous {
      manifest = Manifest(runID: runID, command: command, files: previous.files, folders: previous.folders)
    } else {
      manifest = Manifest(runID: runID, command: command)
    }
  }

  deinit { release() }

  /// The id of the run whose manifest `folder` holds (nil: no manifest).
  public static func runID(of folder: String) throws -> String? { try readManifest(folder)?.runID }

  /// The manifest of `folder`, nil when it has none.
  static func readManifest(_ folder: String) throws -> Manifest? {
    let file = Files.join(folder, manifestName)
    guard FileManager.default.fileExists(atPath: file) else { return nil }
    let bytes: [UInt8]
    do { bytes = try Files.read(file, limit: 1 << 24, missing: "") } catch {
      throw OutputProblem.badManifest(path: folder, reason: "\(error)")
    }
    return try Manifest(parsing: bytes, folder: folder)
  }

  /// The folder's entries other than the manifest and stale temporary files of listed names.
  static func entries(_ folder: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0 != manifestName && $0 != lockName }.sorted()
  }

  /// What a claim must find: a folder without a manifest is empty; one with a manifest holds no run unless the claim
  /// replaces or resumes it (a resume only the same run), and none of the names to be written belongs to someone else.
  static func check(_ folder: String, manifest: Manifest?, claim: Claim, willWrite: [String]) throws {
    let entries = entries(folder)
    guard let manifest else {
      if !entries.isEmpty { throw OutputProblem.foreignFiles(path: folder, names: Array(entries.prefix(3))) }
      return
    }
    switch claim {
    case .fresh:
      throw OutputProblem.anotherRun(path: folder, command: manifest.command, started: manifest.started)
    case .resume(let id) where id != manifest.runID:
      throw OutputProblem.anotherRun(path: folder, command: manifest.command, started: manifest.started)
    default: break
    }
    let owned = Set(manifest.files + manifest.folders)
    let clashes = willWrite.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
      .filter { entries.contains($0) && !owned.contains($0) }
    if !clashes.isEmpty { throw OutputProblem.foreignFiles(path: folder, names: Array(clashes.prefix(3))) }
  }

  /// Creates the missing folders of `path`, outermost first; returns them.
  static func createMissing(_ path: String) throws -> [String] {
    var missing: [String] = []
    var p = path
    var s = stat()
    while stat(p, &s) != 0 {
      if lstat(p, &s) == 0 {  // a dangling link on the way
        throw OutputProblem.danglingLink(path: p, target: (try? FileManager.default.destinationOfSymbolicLink(atPath: p)) ?? "?")
      }
      missing.append(p)
      let up = Files.parent(p)
      if up == p { break }
      p = up
    }
    if stat(p, &s) == 0 && (s.st_mode & S_IFMT) != S_IFDIR {
      throw OutputProblem.cannotCreate(path: path, reason: "\(p) is a file")
    }
    var created: [String] = []
    for folder in missing.reversed() {
      guard mkdir(folder, 0o755) == 0 || errno == EEXIST else {
        let reason = Files.reason(errno)
        for c in created.reversed() { rmdir(c) }
        throw OutputProblem.cannotCreate(path: path, reason: reason)
      }
      created.append(folder)
    }
    return created
  }

  /// The file `name` of the folder.
  public func file(_ name: String) -> String { Files.join(path, name) }

  /// What the folder held when claimed: its run's id (nil: no run).
  public var previousRunID: String? { previous?.runID }

  /// The files (and folders) a run in this folder would remove or replace: the previous run's when replacing, and
  /// every listed one when resuming, for checking that no input is among them.
  public var replaceable: [String] {
    guard let previous, claim != .fresh else { return [] }
    var out = previous.files.map(file)
    for f in previous.folders {
      if let m = try? OutputFolder.readManifest(file(f)) { out += m.files.map { Files.join(file(f), $0) } }
    }
    return out
  }

  /// Starts writing: removes the replaced run's files (only those its manifest lists; its folders only when that
  /// leaves them empty) and stale temporary files, and writes this run's manifest.
  public func begin() throws {
    guard !begun else { return }
    if let parent { try parent.record(Files.lastComponent(path), folder: true) }
    if parent != nil && !FileManager.default.fileExists(atPath: path) {
      guard mkdir(path, 0o755) == 0 else { throw FileError("\(path): cannot create the folder (\(Files.reason(errno)))") }
    }
    if claim == .replace, let previous { OutputFolder.remove(previous, in: path) }
    // A process killed while writing leaves its temporary file; under the lock no other writer is there.
    let listed = (previous?.files ?? []) + manifest.files
    for name in OutputFolder.entries(path) where listed.contains(where: { Files.isTemporary(name, of: $0) })
      || Files.isTemporary(name, of: OutputFolder.manifestName) {
      unlink(file(name))
    }
    begun = true
    try saveManifest()
  }

  /// Removes what `manifest` lists in `folder`: its files, and its folders (by their own manifests) when empty after.
  static func remove(_ manifest: Manifest, in folder: String) {
    for name in manifest.files {
      let p = Files.join(folder, name)
      var s = stat()
      if lstat(p, &s) == 0 && (s.st_mode & S_IFMT) != S_IFDIR { unlink(p) }
    }
    for name in manifest.folders {
      let p = Files.join(folder, name)
      if let inner = try? readManifest(p) { remove(inner, in: p) }
      unlink(Files.join(p, manifestName))
      rmdir(p)
    }
  }

  func saveManifest() throws {
    try Files.writeAtomically(manifest.json.serialized(pretty: true) + "\n", to: file(OutputFolder.manifestName))
  }

  /// Records `name` as this run's (a file, or a folder) before it is written, so that a crash never leaves a file dpt
  /// wrote unlisted. Throws when the name belongs to someone else.
  func record(_ name: String, folder: Bool = false) throws {
    precondition(OutputFolder.isPlainName(name), "'\(name)' is not a name inside the folder")
    try begin()
    if folder ? manifest.folders.contains(name) : manifest.files.contains(name) { return }
    var s = stat()
    if lstat(file(name), &s) == 0 && !(previous.map { ($0.files + $0.folders).contains(name) } ?? false) {
      throw OutputProblem.foreignFiles(path: path, names: [name])
    }
    if folder { manifest.folders.append(name) } else { manifest.files.append(name) }
    try saveManifest()
  }

  /// Writes the file `name` whole or not at all (see `Files.writeAtomically`).
  public func write(_ name: String, _ data: Data) throws {
    try record(name)
    try Files.writeAtomically(data, to: file(name))
  }

  public func write(_ name: String, _ text: String) throws { try write(name, Data(text.utf8)) }

  /// The file `name` for appending records, first replaced whole by `start` (the records kept from before).
  public func appending(_ name: String, start: Data) throws -> AppendFile {
    try write(name, start)
    return try AppendFile(file(name))
  }

  /// The sub-folder `name` (created at its first write).
  public func subfolder(_ name: String) throws -> OutputFolder {
    if let c = children[name] { return c }
    precondition(OutputFolder.isPlainName(name), "'\(name)' is not a name inside the folder")
    let c = try OutputFolder(child: name, of: self)
    children[name] = c
    return c
  }

  /// Ends the claim: releases the lock, and removes the folders the claim created when the run wrote nothing.
  public func release() {
    if holdsLockFile {
      unlink(file(OutputFolder.lockName))
      holdsLockFile = false
    }
    if lock >= 0 {
      close(lock)
      lock = -1
    }
    if !begun { for c in created.reversed() { rmdir(c) } }
    created = []
  }
}
