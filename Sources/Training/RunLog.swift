import Foundation
import _Support

/// The files of `--log-dir`: `config.json` (the run's settings), `metrics.jsonl` (one JSON object per epoch) and
/// `metrics.csv` (the same rows as a table). Written by rank 0 only.
public final class RunLog {
  public let directory: String
  private let jsonl: FileHandle
  private let csv: FileHandle
  private var csvColumns: [String]?
  /// Every row written (those kept from before a resume included).
  public private(set) var rows: [JSON] = []

  /// Creates the folder, writes config.json (atomically) and starts empty metrics files. Resuming (`keepEpochs`),
  /// the rows of epochs up to `keepEpochs` already in metrics.jsonl are kept (later ones, from a run killed after
  /// its last checkpoint, are dropped) and the new epochs are appended.
  public init(directory: String, config: JSON, keepEpochs: Int? = nil) throws {
    self.directory = directory
    try Files.createFolder(directory)
    let file = { (name: String) in Files.join(directory, name) }
    var kept: [JSON] = []
    if let keepEpochs, let text = try? String(contentsOfFile: file("metrics.jsonl"), encoding: .utf8) {
      kept = text.split(separator: "\n").compactMap { try? JSON.parse(String($0)) }
        .filter { ($0["epoch"]?.double ?? .infinity) <= Double(keepEpochs) }
    }
    try Files.writeAtomically(config.serialized(pretty: true) + "\n", to: file("config.json"))
    jsonl = try Files.create(file("metrics.jsonl"))
    csv = try Files.create(file("metrics.csv"))
    for row in kept { try append(row) }
  }

  deinit {
    try? jsonl.close()
    try? csv.close()
  }

  /// The run stopped early (a non-finite loss). With no epoch logged, the files this run started are removed (and
  /// the folder, when that leaves it empty), so nothing claims a run that has no results; otherwise config.json
  /// records why the metrics end where they do, under "stopped".
  public func stopped(_ reason: String, config: JSON) throws {
    try? jsonl.close()
    try? csv.close()
    if rows.isEmpty {
      for name in ["config.json", "metrics.jsonl", "metrics.csv"] { try? FileManager.default.removeItem(atPath: path(name)) }
      if (try? FileManager.default.contentsOfDirectory(atPath: directory))?.isEmpty == true {
        try? FileManager.default.removeItem(atPath: directory)
      }
      return
    }
    guard case .object(let fields) = config else { return }
    try Files.writeAtomically(JSON.object(fields + [("stopped", JSON(reason))]).serialized(pretty: true) + "\n", to: path("config.json"))
  }

  public func path(_ name: String) -> String { Files.join(directory, name) }

  /// Appends one epoch: a line of metrics.jsonl and a row of metrics.csv (each one write, so a crash leaves whole
  /// lines).
  public func append(_ row: JSON) throws {
    guard case .object(let fields) = row else { preconditionFailure("a metrics row is a JSON object") }
    try jsonl.write(contentsOf: Data((row.serialized() + "\n").utf8))
    rows.append(row)
    var text = ""
    if csvColumns == nil {
      csvColumns = fields.map(\.0)
      text += csvColumns!.joined(separator: ",") + "\n"
    }
    text += csvColumns!.map { key in
      guard let v = fields.first(where: { $0.0 == key })?.1 else { return "" }
      if case .null = v { return "" }
      return v.serialized()
    }.joined(separator: ",") + "\n"
    try csv.write(contentsOf: Data(text.utf8))
  }
}
