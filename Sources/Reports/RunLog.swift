import Training
import Foundation
import _Support

/// The files of `--log-dir`: `config.json` (the run's settings), `metrics.jsonl` (one JSON object per epoch) and
/// `metrics.csv` (the same rows as a table). Written by rank 0 only, into a folder the run has claimed.
///
/// Nothing is written until the first epoch is logged: a run that fails before that leaves the folder as it was (with
/// `--overwrite`, the replaced run's results stay). A resumed run keeps the rows of the epochs its checkpoint had
/// completed and appends the new ones, so repeated interruptions never leave an epoch twice.
public final class RunLog {
  public let folder: OutputFolder
  public var directory: String { folder.path }
  private var config: JSON
  private var jsonl: AppendFile?
  private var csv: AppendFile?
  private var csvColumns: [String]?
  /// Every row logged (those kept from before a resume included).
  public private(set) var rows: [EpochRecord] = []

  /// A log in `folder`. Resuming (`keepEpochs`: the epochs the checkpoint completed), the rows of those epochs already
  /// in metrics.jsonl are kept; later ones, from a run killed after its last checkpoint, are dropped. A run that
  /// continues another's (`earlier`: its epochs, as population-based training's segments do) starts with those rows
  /// when its own file has none.
  public init(folder: OutputFolder, config: JSON, keepEpochs: Int? = nil, earlier: [EpochRecord] = []) throws {
    self.folder = folder
    self.config = config
    if let keepEpochs, let text = try? Files.read(folder.file("metrics.jsonl"), limit: 1 << 30, missing: "") {
      rows = String(decoding: text, as: UTF8.self).split(separator: "\n").compactMap { try? JSON.parse(String($0)) }
        .compactMap(EpochRecord.init(json:)).filter { $0.epoch <= keepEpochs }
    }
    if rows.isEmpty { rows = earlier.filter { $0.epoch <= keepEpochs ?? .max } }
  }

  /// Files this log writes.
  public static let files = ["config.json", "metrics.jsonl", "metrics.csv"]

  /// The run ended: config.json records how (`status`: {"status": "diverged", "epoch": 3, "reason": ...} and the
  /// like), after the settings it ran with. With no epoch logged nothing was written, and nothing is.
  public func finish(_ status: JSON, config: JSON) throws {
    jsonl?.close()
    csv?.close()
    jsonl = nil
    csv = nil
    guard !rows.isEmpty, case .object(let fields) = config, case .object(let extra) = status else { return }
    self.config = .object(fields.filter { f in !extra.contains { $0.0 == f.0 } } + extra)
    try folder.write("config.json", self.config.serialized(pretty: true) + "\n")
  }

  public func path(_ name: String) -> String { folder.file(name) }

  /// Appends one epoch: a line of metrics.jsonl and a row of metrics.csv (each record whole, or not at all). The first
  /// writes config.json and the rows kept from before a resume.
  public func append(_ record: EpochRecord) throws {
    rows.append(record)
    let row = record.json
    if jsonl == nil {
      try folder.write("config.json", config.serialized(pretty: true) + "\n")
      jsonl = try folder.appending("metrics.jsonl", start: Data(rows.map { $0.json.serialized() + "\n" }.joined().utf8))
      csvColumns = RunLog.columns(rows.map(\.json))
      csv = try folder.appending("metrics.csv", start: Data((csvColumns!.joined(separator: ",") + "\n"
                                                              + rows.map { csvLine($0.json) }.joined()).utf8))
      return
    }
    try jsonl!.append(Data((row.serialized() + "\n").utf8))
    try csv!.append(Data(csvLine(row).utf8))
  }

  static func columns(_ rows: [JSON]) -> [String] {
    guard case .object(let fields)? = rows.last else { return [] }
    return fields.map(\.0)
  }

  func csvLine(_ row: JSON) -> String {
    guard case .object(let fields) = row else { return "\n" }
    return csvColumns!.map { key in
      guard let v = fields.first(where: { $0.0 == key })?.1 else { return "" }
      if case .null = v { return "" }
      return v.serialized()
    }.joined(separator: ",") + "\n"
  }
}
