import Foundation
import Training
import _Support

/// Writes TensorBoard event files: a sequence of records (length, masked CRC-32C of the length, a serialised
/// `Event` protobuf, masked CRC-32C of the data). The few protobuf fields needed are written by hand:
/// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5 },
/// Summary { repeated Value value = 1 }, Value { string tag = 1; float simple_value = 2 }.
public final class TensorBoardWriter {
  public let folder: OutputFolder
  /// `events.out.tfevents.<time>.<host>`, created (starting with the version record) at the first event.
  public let name: String
  public var path: String { folder.file(name) }
  private var handle: AppendFile?

  /// An event file in `folder`, written from the first event on.
  public init(folder: OutputFolder) {
    self.folder = folder
    let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
    name = "events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host)"
  }

  /// The tags of an epoch's metrics: loss/train, loss/val, loss/test, accuracy/* (classification), r2/* (regression),
  /// and the epoch's learning rate.
  static let tags: [(MetricSet, Metric, String)] = [
    (.train, .loss, "loss/train"), (.val, .loss, "loss/val"), (.test, .loss, "loss/test"),
    (.train, .acc, "accuracy/train"), (.val, .acc, "accuracy/val"), (.test, .acc, "accuracy/test"),
    (.train, .r2, "r2/train"), (.val, .r2, "r2/val"), (.test, .r2, "r2/test"),
  ]

  /// The scalars of one epoch's row, at its epoch.
  public func epoch(_ metrics: EpochRecord) throws {
    for (set, metric, tag) in TensorBoardWriter.tags {
      if let v = metrics.value(set, metric) { try scalar(tag, v, step: metrics.epoch) }
    }
    if let lr = metrics.learningRate { try scalar("learning_rate", lr, step: metrics.epoch) }
  }

  /// One scalar at a step.
  public func scalar(_ tag: String, _ value: Double, step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
    guard value.isFinite else { return }
    var v = Protobuf()
    v.string(1, tag)
    v.float(2, Float(value))
    try write(summaryValue: v, step: step, wallTime: wallTime)
  }

  /// A histogram of `values` at a step (TensorBoard's HistogramProto { double min = 1; max = 2; num = 3; sum = 4;
  /// sum_squares = 5; repeated double bucket_limit = 6 [packed]; repeated double bucket = 7 [packed] }, as the
  /// Summary.Value's `histo`, field 5): `buckets` equal buckets from the least value to the largest, each given by its
  /// upper edge. Non-finite values are left out.
  public func histogram(_ tag: String, _ values: [Double], step: Int, buckets: Int = 30) throws {
    let x = values.filter(\.isFinite)
    guard let lo = x.min(), let hi = x.max() else { return }
    let n = hi > lo ? buckets : 1
    var counts = [Double](repeating: 0, count: n)
    for v in x { counts[min(n - 1, Int((v - lo) / (hi - lo) * Double(n)))] += 1 }
    let limits = (1...n).map { i in i == n ? hi : lo + (hi - lo) * Double(i) / Double(n) }
    var h = Protobuf()
    h.double(1, lo)
    h.double(2, hi)
    h.double(3, Double(x.count))
    h.double(4, x.reduce(0, +))
    h.double(5, x.reduce(0) { $0 + $1 * $1 })
    h.doubles(6, limits)
    h.doubles(7, counts)
    var v = Protobuf()
    v.string(1, tag)
    v.message(5, h)
    try write(summaryValue: v, step: step)
  }

  /// An Event holding a Summary of one Value.
  func write(summaryValue v: Protobuf, step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
    var summary = Protobuf()
    summary.message(1, v)
    var event = Protobuf()
    event.double(1, wallTime)
    event.varint(2, UInt64(step))
    event.message(5, summary)
    try write(event.bytes)
  }

  // MARK: HParams (TensorBoard's hparams plugin: tensorboard/plugins/hparams/api.proto and plugin_data.proto)
  //
  // HParamsPluginData { int32 version = 1; Experiment experiment = 2; SessionStartInfo session_start_info = 3;
  //                     SessionEndInfo session_end_info = 4 }
  // Experiment { repeated HParamInfo hparam_infos = 4; repeated MetricInfo metric_infos = 5 }
  // HParamInfo { string name = 1; DataType type = 4 (DATA_TYPE_STRING = 1, DATA_TYPE_FLOAT64 = 3) }
  // MetricInfo { MetricName name = 1 { string group = 1; string tag = 2 } }
  // SessionStartInfo { map<string, google.protobuf.Value> hparams = 1 (Value { double number_value = 2 });
  //                    double start_time_secs = 5 }
  // SessionEndInfo { Status status = 1 (STATUS_SUCCESS = 1, STATUS_FAILURE = 2); double end_time_secs = 2 }
  // Each is written as a summary value with no payload, its SummaryMetadata { PluginData plugin_data = 1
  // { string plugin_name = 1; bytes content = 2 } } carrying the serialised HParamsPluginData.

  /// The experiment: which hyperparameters the grid varies and which metrics the HParams dashboard shows. Written
  /// once, in the folder above the runs.
  /// `hyperparameters`: each name, and whether its values are numbers (else text: an optimizer's name, a model).
  public func hparamsExperiment(hyperparameters: [(name: String, numeric: Bool)], metrics: [String]) throws {
    var experiment = Protobuf()
    for (name, numeric) in hyperparameters {
      var info = Protobuf()
      info.string(1, name)
      info.varint(4, numeric ? 3 : 1)
      experiment.message(4, info)
    }
    for tag in metrics {
      var name = Protobuf()
      name.string(2, tag)
      var info = Protobuf()
      info.message(1, name)
      experiment.message(5, info)
    }
    var data = Protobuf()
    data.message(2, experiment)
    try pluginValue("_hparams_/experiment", data)
  }

  /// One run's hyperparameter values (at its start): numbers, or text.
  public func hparamsSessionStart(_ values: [(String, JSON)]) throws {
    var start = Protobuf()
    for (name, v) in values {
      var value = Protobuf()
      if let x = v.double { value.double(2, x) } else { value.string(3, v.string ?? v.serialized()) }
      var entry = Protobuf()
      entry.string(1, name)
      entry.message(2, value)
      start.message(1, entry)
    }
    start.double(5, Date().timeIntervalSince1970)
    var data = Protobuf()
    data.message(3, start)
    try pluginValue("_hparams_/session_start_info", data)
  }

  /// One run's end: finished, or failed (diverged).
  public func hparamsSessionEnd(succeeded: Bool) throws {
    var end = Protobuf()
    end.varint(1, succeeded ? 1 : 2)
    end.double(2, Date().timeIntervalSince1970)
    var data = Protobuf()
    data.message(4, end)
    try pluginValue("_hparams_/session_end_info", data)
  }

  func pluginValue(_ tag: String, _ pluginData: Protobuf) throws {
    var content = Protobuf()
    content.varint(1, 0)  // version
    content.bytes += pluginData.bytes
    var plugin = Protobuf()
    plugin.string(1, "hparams")
    plugin.lengthDelimited(2, content.bytes)
    var metadata = Protobuf()
    metadata.message(1, plugin)
    var v = Protobuf()
    v.string(1, tag)
    v.message(9, metadata)
    try write(summaryValue: v, step: 0)
  }

  func write(_ data: [UInt8]) throws {
    let record = TensorBoardWriter.record(data)
    if let handle { return try handle.append(Data(record)) }
    var version = Protobuf()
    version.double(1, Date().timeIntervalSince1970)
    version.string(3, "brain.Event:2")
    handle = try folder.appending(name, start: Data(TensorBoardWriter.record(version.bytes) + record))
  }

  static func record(_ data: [UInt8]) -> [UInt8] {
    let length = LittleEndian.bytes(UInt64(data.count))
    return length + LittleEndian.bytes(CRC32C.masked(length)) + data + LittleEndian.bytes(CRC32C.masked(data))
  }

}
