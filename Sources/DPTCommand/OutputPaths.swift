import Foundation
import _Support

/// The places a command will write, checked before any work starts: a run that cannot save its results, or that
/// would mix them with another run's, fails at once with the flag to change rather than after training.
enum OutputPaths {
  static let fileManager = FileManager.default

  /// Files that mark a folder as holding a run's results (dpt train --log-dir, dpt sweep).
  static let runFiles = ["config.json", "metrics.jsonl", "summary.json"]

  /// `path` as a folder to write into: an existing folder that can be written, or (created later, by whatever
  /// writes there first, so that a run that fails leaves nothing behind) a missing one whose nearest existing parent
  /// is a folder that can be written. An error when it, or that parent, is a file or cannot be written.
  static func folder(_ path: String, flag: String) throws {
    var isFolder: ObjCBool = false
    var existing = path
    while !fileManager.fileExists(atPath: existing, isDirectory: &isFolder) {
      let parent = (existing as NSString).deletingLastPathComponent
      existing = parent.isEmpty ? "." : parent
      if existing == "/" || existing == "." { _ = fileManager.fileExists(atPath: existing, isDirectory: &isFolder); break }
    }
    guard isFolder.boolValue else {
      throw CommandError(existing == path ? "\(flag) \(path) is a file: give a folder"
                                          : "\(flag) \(path): \(existing) is a file, so the folder cannot be created: give another folder")
    }
    guard access(existing, W_OK | X_OK) == 0 else {
      let what = existing == path ? "the folder" : "its parent \(existing)"
      throw CommandError("\(flag) \(path): \(what) cannot be written (\(String(cString: strerror(errno)))): give a folder you can write to")
    }
  }

  /// A results folder that must not already hold another run (its config.json, metrics or summary, or a sweep's
  /// setting folders), unless `replace` (--overwrite), which removes those files first.
  static func resultsFolder(_ path: String, flag: String, replace: Bool) throws {
    try folder(path, flag: flag)
    let entries = (try? fileManager.contentsOfDirectory(atPath: path)) ?? []
    let runs = entries.filter { name in
      let full = Files.join(path, name)
      return runFiles.contains(name) || runFiles.contains { fileManager.fileExists(atPath: Files.join(full, $0)) }
    }
    guard !runs.isEmpty else { return }
    guard replace else {
      throw CommandError("\(flag) \(path) already holds another run's results (\(runs.sorted().prefix(3).joined(separator: ", "))): give a new folder, or --overwrite to replace them")
    }
    for name in entries where runs.contains(name) || ["tensorboard", "report.html", "metrics.csv", "accuracy.svg", "loss.svg"].contains(name) {
      try? fileManager.removeItem(atPath: Files.join(path, name))
    }
  }

  /// `path` as a file to write: not a folder, in a folder that exists and can be written.
  static func file(_ path: String, flag: String) throws {
    var isFolder: ObjCBool = false
    if fileManager.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
      throw CommandError("\(flag) \(path) is a folder: give a file name")
    }
    let parent = (path as NSString).deletingLastPathComponent
    let folder = parent.isEmpty ? "." : parent
    guard fileManager.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
      throw CommandError("\(flag) \(path): the folder \(folder) does not exist")
    }
    guard access(folder, W_OK | X_OK) == 0 else {
      throw CommandError("\(flag) \(path): the folder \(folder) cannot be written (\(String(cString: strerror(errno))))")
    }
  }

}
