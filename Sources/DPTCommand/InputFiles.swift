import Datasets
import FileFormats
import Foundation
import _Support

/// Reading the files a flag names: checkpoints and safetensors, raw (never inflated) and bounded, with the flag in
/// the message when there is nothing there.
enum InputFiles {
  /// The checkpoint at `location` (a folder or a file), decoded; `flag` names where it came from.
  static func checkpoint(_ location: String, flag: String) throws -> Checkpoint {
    try Checkpoint(decoding: try checkpointBytes(location, flag: flag), path: Checkpoint.path(location))
  }

  /// The bytes of the checkpoint at `location`.
  static func checkpointBytes(_ location: String, flag: String) throws -> [UInt8] {
    do { return try Checkpoint.readBytes(location) } catch WeightsProblem.noCheckpoint(let p) {
      throw CommandError("\(flag) \(p): no checkpoint there (check \(flag); checkpoints are written by dpt train --checkpoint-dir)")
    }
  }

  /// The input transform a safetensors file of `dpt export` records in its metadata (nil when it records none).
  static func safetensorsTransform(_ path: String, flag: String) throws -> InputTransform? {
    let file = try SafeTensorsFile(decoding: try safetensors(path, flag: flag), path: path)
    guard let text = file.metadata["dpt_input_transform"] else { return nil }
    do { return try InputTransform(json: try JSON.parse(text)) } catch {
      throw CommandError("\(path): its metadata's dpt_input_transform does not decode (\(error)); export the weights again with this dpt")
    }
  }

  /// The bytes of a safetensors file: a regular file no larger than half the memory, never inflated.
  static func safetensors(_ path: String, flag: String) throws -> [UInt8] {
    do { return try Files.read(path, limit: MachineMemory.fileLimit, missing: "check \(flag)") } catch let e as FileError {
      throw CommandError(e.description)
    }
  }
}
