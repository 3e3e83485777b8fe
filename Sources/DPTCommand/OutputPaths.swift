import FileFormats
import Foundation
import Training
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

  /// What a single-file output holds: an existing file is replaced only when it is an earlier output of the same
  /// kind, recognised by its first bytes (or with --overwrite).
  enum Kind: CaseIterable {
    case trace, timeline, prediction, safetensors, pytorchCode, onnx

    var name: String {
      switch self {
      case .trace: "a trace dpt wrote"
      case .timeline: "a timeline dpt wrote"
      case .prediction: "a prediction CSV dpt wrote"
      case .safetensors: "safetensors dpt exported"
      case .pytorchCode: "PyTorch code dpt exported"
      case .onnx: "an ONNX model dpt exported"
      }
    }

    /// Whether `head`, the first bytes of a file, is an output of this kind.
    func recognizes(_ head: [UInt8]) -> Bool {
      let text = String(decoding: head, as: UTF8.self)
      let firstLine = text.prefix { $0 != "\n" }
      switch self {
      case .trace: return firstLine.hasPrefix("{\"step\":")
      case .timeline: return text.hasPrefix("{\"otherData\":{\"writer\":\"\(Timeline.writer)\"}")
      case .prediction:
        let cells = firstLine.split(separator: ",")
        return ["row", "line"].contains(cells.first ?? "") && (cells.contains("predicted") || cells.contains { $0.hasPrefix("prediction") })
      case .safetensors:
        guard head.count >= 8 else { return false }
        let length = Int(min(LittleEndian.read(UInt64.self, head, at: 0), UInt64(head.count - 8)))
        let header = String(decoding: head[8..<8 + length], as: UTF8.self)
        return header.hasPrefix("{\"__metadata__\":") && header.contains("\"source\":\"dpt\"")
      case .pytorchCode: return text.hasPrefix(PyTorchCode.firstLine)
      case .onnx: return head.starts(with: ONNXModel.head)
      }
    }
  }

  /// `path` as a single file to write for `flag`: a new file in a folder that exists and can be written, an earlier
  /// output of the same `kind` (any file with `overwrite`), a character device or pipe (written through), or `-`;
  /// never a folder, block device, socket or link to nothing, and never a file inside a dpt output folder (another
  /// run's results, or this command's own `folders`), whose manifest owns what it holds; and never one of `inputs`.
  /// Checked in that order, so that a path that cannot be used fails before anything is read, and an output that is
  /// an input is named as one.
  /// `kind` nil checks all but what an existing file holds (a first pass, before the inputs are all known).
  static func file(_ path: String, flag: String, kind: Kind?, overwrite: Bool = false, folders: [String] = [],
                   inputs: [Input] = []) throws {
    let target: Files.OutputTarget
    do { target = try Files.outputTarget(path) } catch let e as FileError { throw CommandError("\(flag) \(e)") }
    let file: String
    switch target {
    case .stream, .standardOutput: return
    case .new: file = path
    case .file(let resolved): file = resolved
    }
    try checkInputs(inputs, outputs: [(flag, [path])])
    let folder = Files.parent(file)
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
      throw CommandError("\(flag) \(path): the folder \(folder) does not exist")
    }
    guard access(folder, W_OK | X_OK) == 0 else {
      throw CommandError("\(flag) \(path): the folder \(folder) cannot be written (\(Files.reason(errno)))")
    }
    let here = Files.resolved(file)
    for own in folders where here.hasPrefix(Files.resolved(own) + "/") {
      throw CommandError("\(flag) \(path) is inside \(own), a folder this run writes and owns: write it elsewhere")
    }
    var ancestor = Files.parent(here)
    while true {
      if FileManager.default.fileExists(atPath: Files.join(ancestor, OutputFolder.manifestName)) {
        throw CommandError("\(flag) \(path) is inside \(ancestor), a dpt run's output folder (its \(OutputFolder.manifestName) owns what it holds): write it elsewhere")
      }
      let up = Files.parent(ancestor)
      if up == ancestor { break }
      ancestor = up
    }
    guard case .file = target, !overwrite, let kind else { return }
    let head = (try? Files.head(file, bytes: 1 << 16)) ?? []
    guard head.isEmpty || kind.recognizes(head) else {
      throw CommandError("\(flag) \(path) already holds a file that is not \(kind.name): give a new file name, or --overwrite to replace it")
    }
  }

  /// Refuses two outputs of one command that are the same file (by identity when it exists, else by resolved path).
  static func distinct(_ outputs: [(flag: String, path: String)]) throws {
    var seen: [String: String] = [:]
    for (flag, path) in outputs {
      let key = path == "-" ? "-" : FileIdentity(path).map { "\($0.device):\($0.inode)" } ?? Files.resolved(path)
      if let other = seen[key] { throw CommandError("\(flag) \(path) is also \(other)'s file: give each output its own file") }
      seen[key] = flag
    }
  }

  /// Prints a command's note: on stdout, or on stderr when one of `outputs` is `-` (stdout carries that output).
  static func note(_ text: String, outputs: [String?]) {
    let stream = outputs.contains("-") ? FileHandle.standardError : FileHandle.standardOutput
    stream.write(Data((text + "\n").utf8))
  }

  /// Writes a single-file output checked by `file(_:flag:kind:)` (see `Files.writeOutput`), the problem named by `flag`.
  static func write(_ data: Data, to path: String, flag: String) throws {
    do { try Files.writeOutput(data, to: path) } catch let e as FileError { throw CommandError("\(flag) \(e)") }
  }

  static func write(_ text: String, to path: String, flag: String) throws { try write(Data(text.utf8), to: path, flag: flag) }

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
