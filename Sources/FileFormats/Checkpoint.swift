import Foundation
import Optimizers
import _Support

/// A problem with a checkpoint file, or a checkpoint that does not fit the run; the message says what differs.

/// Everything needed to continue a run exactly where it stopped: parameters, optimizer state, the position in the
/// data order (completed epochs and batches of the current epoch: the order itself is a pure function of the seed
/// and the epoch) and the run's configuration.
///
/// File (`checkpoint.dptc`): an 20-byte preamble (magic "DPTCKPT\0", format version, header length, CRC-32C of
/// the header, little-endian UInt32s), a JSON header (sizes, the payload's CRC-32C, the network, the data set, the
/// optimizer, the position), then the payload: the parameters and each optimizer buffer, raw little-endian scalars.
public struct Checkpoint {
  public static let magic: [UInt8] = Array("DPTCKPT".utf8) + [0]
  public static let formatVersion: UInt32 = 1
  public static let fileName = "checkpoint.dptc"

  public var config: JSON
  /// Completed epochs.
  public var epoch: Int
  /// Batches already taken in the epoch after `epoch` (0 at an epoch's end).
  public var batch: Int
  /// Samples of that epoch's order already trained on: where a resume continues, whatever its batch size.
  public var samples: Int = 0
  /// Loss-and-gradient evaluations since the run began.
  public var evaluations: Int = 0
  /// Written mid-epoch: the seconds of that epoch's steps so far, its evaluations and its skipped batches (0 at an
  /// epoch's end), so that a resumed epoch's row counts the whole epoch.
  public var epochSeconds = 0.0
  public var epochEvaluations = 0
  public var epochSkipped = 0
  /// The run this checkpoint belongs to (its log and checkpoint folders carry the same id); nil for an older file.
  public var runID: String?
  /// Optimizer steps taken.
  public var step: Int
  public var worldSize: Int
  /// The network's layers ("dense 784 -> 256 | relu | dense 256 -> 10").
  public var network: String
  public var dataset: String
  public var trainCount: Int
  public var optimizer: String
  public var optimizerStep: Int
  /// Batches skipped by --on-nan skip-batch so far.
  public var skippedBatches: Int
  /// 4 (Float) or 8 (Double).
  public var scalarBytes: Int
  /// The parameters then each optimizer buffer, raw little-endian bytes.
  public var sections: [(name: String, bytes: [UInt8])]
  /// The named parameter tensors in the order of the parameters' section.
  public var tensors: [NamedTensor] = []
  /// The named buffers (BatchNorm's "3.running_mean", ...) in the order of the buffers' section.
  public var bufferTensors: [NamedTensor] = []

  /// A tensor of the checkpoint: dpt's name ("1.weight") and shape, the kind of layer it belongs to, and how PyTorch
  /// names and lays it out (the layer's `ParameterSpec`), so that an export needs no network.
  public struct NamedTensor: Equatable, Sendable {
    public var name: String
    public var shape: [Int]
    public var layer: String
    public var pytorchName: String
    public var transposed: Bool

    public init(name: String, shape: [Int], layer: String, pytorchName: String? = nil, transposed: Bool = false) {
      (self.name, self.shape, self.layer, self.pytorchName, self.transposed) = (name, shape, layer, pytorchName ?? name, transposed)
    }

    var json: JSON {
      .object([("name", JSON(name)), ("shape", .array(shape.map { JSON($0) })), ("layer", JSON(layer)),
               ("pytorch", JSON(pytorchName)), ("transposed", .bool(transposed))])
    }
  }

  public init(config: JSON, epoch: Int, batch: Int, step: Int, worldSize: Int, network: String, dataset: String,
              trainCount: Int, optimizer: String, optimizerStep: Int, skippedBatches: Int, scalarBytes: Int,
              sections: [(name: String, bytes: [UInt8])]) {
    self.config = config
    self.epoch = epoch
    self.batch = batch
    self.step = step
    self.worldSize = worldSize
    self.network = network
    self.dataset = dataset
    self.trainCount = trainCount
    self.optimizer = optimizer
    self.optimizerStep = optimizerStep
    self.skippedBatches = skippedBatches
    self.scalarBytes = scalarBytes
    self.sections = sections
  }

  public func section(_ name: String) -> [UInt8]? { sections.first { $0.name == name }?.bytes }

  /// The file's bytes.
  public func encoded() -> [UInt8] {
    var payload: [UInt8] = []
    for s in sections { payload += s.bytes }
    let header = JSON.object([
      ("format", JSON("dpt checkpoint")), ("epoch", JSON(epoch)), ("batch", JSON(batch)), ("samples", JSON(samples)),
      ("step", JSON(step)), ("evaluations", JSON(evaluations)), ("epoch_seconds", JSON(epochSeconds)),
      ("epoch_evaluations", JSON(epochEvaluations)), ("epoch_skipped_batches", JSON(epochSkipped)), ("run_id", runID.map { JSON($0) } ?? .null),
      ("world_size", JSON(worldSize)), ("network", JSON(network)), ("dataset", JSON(dataset)),
      ("train_count", JSON(trainCount)), ("optimizer", JSON(optimizer)), ("optimizer_step", JSON(optimizerStep)),
      ("skipped_batches", JSON(skippedBatches)), ("scalar_bytes", JSON(scalarBytes)),
      ("sections", .array(sections.map { .object([("name", JSON($0.name)), ("bytes", JSON($0.bytes.count))]) })),
      ("tensors", .array(tensors.map(\.json))),
      ("buffer_tensors", .array(bufferTensors.map(\.json))),
      ("payload_bytes", JSON(payload.count)), ("payload_crc32c", .number(Double(CRC32C.checksum(payload)))),
      ("config", config),
    ])
    let h = Array(header.serialized().utf8)
    let le = LittleEndian.bytes(_:) as (UInt32) -> [UInt8]
    return Checkpoint.magic + le(Checkpoint.formatVersion) + le(UInt32(h.count)) + le(CRC32C.checksum(h)) + h + payload
  }

  /// The largest header dpt reads (its own are a few kilobytes).
  static let maximumHeaderBytes = 1 << 24

  /// Parses a checkpoint file's bytes; every problem is named with `path`. Every number of the header is checked
  /// before it becomes a count, size or offset (the header's checksum only proves that it was not damaged, not that
  /// dpt wrote it).
  public init(decoding b: [UInt8], path: String) throws {
    func le(_ at: Int) -> UInt32 { LittleEndian.read(UInt32.self, b, at: at) }
    func bad(_ why: String) -> WeightsProblem { WeightsProblem.malformed("\(path): \(why)") }
    guard b.count >= 20 else {
      throw bad("truncated (\(b.count) bytes; a checkpoint starts with a 20-byte preamble)")
    }
    guard Array(b[0..<8]) == Checkpoint.magic else { throw bad("not a dpt checkpoint (wrong magic number)") }
    guard le(8) == Checkpoint.formatVersion else {
      throw bad("checkpoint format version \(le(8)); this dpt reads version \(Checkpoint.formatVersion)")
    }
    let headerLength = Int(le(12))
    guard headerLength <= Checkpoint.maximumHeaderBytes else { throw bad("the header claims \(headerLength) bytes: not a checkpoint dpt wrote") }
    guard b.count >= 20 + headerLength else {
      throw bad("truncated (the header needs \(headerLength) bytes, the file has \(b.count - 20) after the preamble)")
    }
    let h = b[20..<20 + headerLength]
    guard CRC32C.checksum(h) == le(16) else { throw bad("the header is corrupt (checksum mismatch)") }
    guard let header = try? JSON.parse(bytes: h), case .object = header else { throw bad("the header is corrupt (not a JSON object)") }
    func int(_ key: String, at most: Int = 1 << 40, default value: Int? = nil) throws -> Int {
      guard let v = header[key] else {
        if let value { return value }
        throw bad("the header lacks '\(key)'")
      }
      guard let n = v.int, n >= 0, n <= most else { throw bad("the header's '\(key)' is \(v.serialized().prefix(40)), not a count dpt wrote") }
      return n
    }
    func string(_ key: String) throws -> String {
      guard let v = header[key]?.string else { throw bad("the header lacks '\(key)'") }
      return v
    }
    let payloadBytes = try int("payload_bytes")
    let available = b.count - 20 - headerLength
    guard available >= payloadBytes else {
      throw bad("truncated (\(payloadBytes) bytes of parameters and optimizer state expected, \(available) found)")
    }
    guard available == payloadBytes else {
      throw bad("\(available - payloadBytes) unexpected bytes after the payload: not a checkpoint dpt wrote")
    }
    let payload = b[(20 + headerLength)...]
    guard UInt32(exactly: try int("payload_crc32c", at: Int(UInt32.max))) == CRC32C.checksum(payload) else {
      throw bad("corrupt (the checksum of the parameters and optimizer state does not match)")
    }
    var sections: [(String, [UInt8])] = []
    var at = payload.startIndex
    guard let list = header["sections"]?.array else { throw bad("the header lacks 'sections'") }
    for s in list {
      guard let name = s["name"]?.string, let n = s["bytes"]?.int, n >= 0, n <= payload.endIndex - at,
            !sections.contains(where: { $0.0 == name }) else {
        throw bad("the header's sections do not match the payload")
      }
      sections.append((name, Array(payload[at..<at + n])))
      at += n
    }
    guard at == payload.endIndex else { throw bad("the header's sections do not match the payload") }
    let scalarBytes = try int("scalar_bytes")
    guard scalarBytes == 4 || scalarBytes == 8 else { throw bad("the header's 'scalar_bytes' is \(scalarBytes), not 4 or 8") }
    let worldSize = try int("world_size", at: 1 << 24)
    guard worldSize >= 1 else { throw bad("the header's 'world_size' is 0") }
    self.init(config: header["config"] ?? .null, epoch: try int("epoch", at: 1 << 31), batch: try int("batch", at: 1 << 40),
              step: try int("step"), worldSize: worldSize, network: try string("network"), dataset: try string("dataset"),
              trainCount: try int("train_count"), optimizer: try string("optimizer"),
              optimizerStep: try int("optimizer_step"), skippedBatches: try int("skipped_batches"),
              scalarBytes: scalarBytes, sections: sections)
    samples = try int("samples", default: -1)
    evaluations = try int("evaluations", default: 0)
    epochEvaluations = try int("epoch_evaluations", default: 0)
    epochSkipped = try int("epoch_skipped_batches", default: 0)
    if let s = header["epoch_seconds"]?.double, s.isFinite, s >= 0 { epochSeconds = s }
    runID = header["run_id"]?.string
    // The named tensors must tile the parameters' section exactly, and the named buffers the buffers' section.
    func named(_ key: String, section: String) throws -> [NamedTensor] {
      let scalars = (self.section(section)?.count ?? 0) / scalarBytes
      var total = 0
      var out: [NamedTensor] = []
      for t in header[key]?.array ?? [] {
        guard let name = t["name"]?.string, let dims = t["shape"]?.array, dims.count <= 8,
              case let shape = dims.compactMap({ $0.int }), shape.count == dims.count, shape.allSatisfy({ $0 >= 0 && $0 <= 1 << 31 })
        else { throw bad("the header's \(key) are not named tensors with shapes") }
        var count = 1
        for d in shape {
          let (p, overflow) = count.multipliedReportingOverflow(by: d)
          guard !overflow, p <= scalars else { throw bad("tensor '\(name)' of shape \(shape) is larger than the \(section)") }
          count = p
        }
        total += count
        guard total <= scalars else { throw bad("the header's \(key) hold more values than the \(section) (\(scalars))") }
        let layer = t["layer"]?.string ?? ""
        if let pytorch = t["pytorch"]?.string, case .bool(let transposed)? = t["transposed"] {
          guard !transposed || shape.count == 2 else { throw bad("tensor '\(name)' is marked transposed but has \(shape.count) dimensions") }
          out.append(NamedTensor(name: name, shape: shape, layer: layer, pytorchName: pytorch, transposed: transposed))
        } else {
          // Written before tensors carried PyTorch's naming: dense weights were the transposed ones, PReLU's slopes
          // PyTorch's "weight".
          let slope = layer == "prelu" && name.hasSuffix(".slope")
          out.append(NamedTensor(name: name, shape: shape, layer: layer, pytorchName: slope ? String(name.dropLast(5)) + "weight" : name,
                                 transposed: layer == "dense" && name.hasSuffix(".weight") && shape.count == 2))
        }
      }
      guard out.isEmpty || total == scalars else { throw bad("the header's \(key) hold \(total) values, the \(section) \(scalars)") }
      return out
    }
    tensors = try named("tensors", section: "parameters")
    bufferTensors = try named("buffer_tensors", section: "buffers")
  }

  /// The best epoch's checkpoint, which `--early-stop` keeps beside the last one.
  public static let bestFileName = "best.dptc"

  /// Which of a folder's checkpoints a command reads: the best epoch's (best.dptc) or the last one written.
  public enum Choice: String, CaseIterable, Sendable {
    case best, last
  }

  /// DIR/checkpoint.dptc for a folder, else the path itself.
  public static func path(_ location: String) -> String {
    isFolder(location) ? Files.join(location, fileName) : location
  }

  /// The checkpoint a command that uses trained weights reads from `location`: a file as it is; in a folder, the
  /// best epoch's (best.dptc) when the folder holds one and `which` is not `.last`, else the last (checkpoint.dptc).
  /// `which` `.best` in a folder without best.dptc is an error.
  public static func path(_ location: String, which: Choice?) throws -> (path: String, choice: Choice) {
    guard isFolder(location) else { return (location, which ?? .last) }
    let best = Files.join(location, bestFileName)
    let hasBest = FileManager.default.fileExists(atPath: best)
    if which == .best && !hasBest { throw WeightsProblem.noBestCheckpoint(folder: location) }
    return which != .last && hasBest ? (best, .best) : (Files.join(location, fileName), .last)
  }

  static func isFolder(_ location: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: location, isDirectory: &isDirectory) && isDirectory.boolValue
  }

  /// The bytes of the checkpoint at `location` (a folder or a file): a regular file no larger than half the memory.
  public static func readBytes(_ location: String) throws -> [UInt8] {
    let p = path(location)
    guard FileManager.default.fileExists(atPath: p) else { throw WeightsProblem.noCheckpoint(path: p) }
    do { return try Files.read(p, limit: MachineMemory.fileLimit, missing: "") } catch let e as FileError {
      throw WeightsProblem.malformed(e.description)
    }
  }

  /// Writes DIR/checkpoint.dptc whole or not at all: a temporary file, fsync, rename. Until the rename the previous
  /// checkpoint stays as it was.
  public func write(to folder: OutputFolder) throws {
    try folder.write(Checkpoint.fileName, Data(encoded()))
  }
}

extension Array {
  /// The raw bytes of an array of scalars.
  public var rawBytes: [UInt8] { withUnsafeBytes { [UInt8]($0) } }
}
