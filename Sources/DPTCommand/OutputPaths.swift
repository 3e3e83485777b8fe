import Foundation
import _Support

/// The places a command writes, claimed and checked before any work starts: a run that cannot save its results,
/// that would mix them with another run's, or that would replace one of its own inputs fails at once with the flag
/// to change, and nothing on disk has changed.
enum OutputPaths {
  /// `path` claimed as an output folder for `flag` (see `OutputFolder`), with the problem in the flag's words.
  static func folder(_ path: String, flag: String, command: String, claim: OutputFolder.Claim, runID: String? = nil,
                     willWrite: [String] = []) throws -> OutputFolder {
    do {
      return try OutputFolder(path, command: command, claim: claim, runID: runID, willWrite: willWrite)
    } catch let p as OutputProblem {
      throw CommandError(ErrorMessages.text(p, flag: flag, claim: claim))
    }
  }

  /// `path` as a file to write: not a folder, in a folder that exists and can be written.
  static func file(_ path: String, flag: String) throws {
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
      throw CommandError("\(flag) \(path) is a folder: give a file name")
    }
    let folder = Files.parent(path)
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
      throw CommandError("\(flag) \(path): the folder \(folder) does not exist")
    }
    guard access(folder, W_OK | X_OK) == 0 else {
      throw CommandError("\(flag) \(path): the folder \(folder) cannot be written (\(Files.reason(errno)))")
    }
  }

  /// A file or folder a command reads, named by its flag.
  struct Input {
    var flag: String
    var path: String
  }

  /// The files an input names (a folder's files, for an IDX folder).
  static func files(of input: Input) -> [String] {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: input.path, isDirectory: &isFolder) else { return [] }
    guard isFolder.boolValue else { return [input.path] }
    return ((try? FileManager.default.contentsOfDirectory(atPath: input.path)) ?? []).map { Files.join(input.path, $0) }
  }

  /// Inputs are never outputs: no input file may be one an output would replace or remove, compared by identity
  /// (device and inode), so links, `..` and other spellings of the same file are caught. `outputs` are the files an
  /// output writes or removes; `allowed` pairs an input with the output that may replace it (a resumed checkpoint
  /// with the run's next checkpoint: it is read whole before that is written).
  static func checkInputs(_ inputs: [Input], outputs: [(flag: String, files: [String])],
                          allowed: (input: String, output: String)? = nil) throws {
    var written: [FileIdentity: (flag: String, file: String)] = [:]
    for (flag, files) in outputs {
      for f in files { if let id = FileIdentity(f) { written[id] = (flag, f) } }
    }
    for input in inputs {
      for f in files(of: input) {
        guard let id = FileIdentity(f), let out = written[id] else { continue }
        if let allowed, FileIdentity(allowed.input) == id, allowed.output == out.flag { continue }
        let what = f == input.path ? "" : " (its file \(f))"
        throw CommandError("\(input.flag) \(input.path)\(what) is also an output: \(out.flag) would replace \(out.file); write the results elsewhere")
      }
    }
  }

  /// The files `folder` would write or remove, for `checkInputs`.
  static func outputFiles(_ folder: OutputFolder, writes names: [String]) -> [String] {
    names.map(folder.file) + folder.replaceable
  }
}
