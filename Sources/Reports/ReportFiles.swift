import Foundation
import _Support

/// Charts and HTML pages from metrics rows (the objects of metrics.jsonl), so that `dpt plot` can redraw them from
/// the files of a run made earlier or elsewhere.
public enum ReportFiles {
  /// "acc" when the rows are of a classification run, "r2" for regression.
  static func scoreKey(_ rows: [JSON]) -> String {
    rows.contains { $0["train_acc"]?.double != nil } ? "acc" : "r2"
  }

  static func points(_ rows: [JSON], _ key: String) -> [(x: Double, y: Double)] {
    rows.compactMap { r in
      guard let e = r["epoch"]?.double else { return nil }
      return (e, r[key]?.double ?? .nan)
    }
  }

  static let setStyles: [(set: String, label: String, dash: String?)] = [("train", "train", nil), ("val", "validation", "2,3"), ("test", "test", "7,4")]

  /// The accuracy (R^2 for regression) and loss charts of one run: train, validation and test.
  public static func charts(title: String, rows: [JSON], logLoss: Bool) -> [(file: String, chart: Chart)] {
    let score = scoreKey(rows)
    var out: [(String, Chart)] = []
    for (metric, file, label, log) in [(score, "accuracy.svg", score == "acc" ? "accuracy" : "R^2", false),
                                       ("loss", "loss.svg", "loss", logLoss)] {
      var series: [Chart.Series] = []
      for (i, s) in setStyles.enumerated() {
        let p = points(rows, "\(s.set)_\(metric)")
        guard p.contains(where: { $0.y.isFinite }) else { continue }
        series.append(Chart.Series(label: s.label, points: p, color: Chart.palette[i], dash: s.dash))
      }
      guard !series.isEmpty else { continue }
      let sets = series.map(\.label)
      let named = sets.count == 1 ? sets[0] : sets.dropLast().joined(separator: ", ") + " and " + sets.last!
      out.append((file, Chart(title: "\(title): \(named) \(label)", xLabel: "epoch", yLabel: label,
                              series: series, logY: log)))
    }
    return out
  }

  /// Every setting in one accuracy chart and one loss chart: a colour per setting, train solid, test dashed.
  public static func combinedCharts(title: String, runs: [(name: String, rows: [JSON])], logLoss: Bool)
    -> [(file: String, chart: Chart)]
  {
    let score = runs.first.map { scoreKey($0.rows) } ?? "acc"
    var out: [(String, Chart)] = []
    for (metric, file, label, log) in [(score, "accuracy.svg", score == "acc" ? "accuracy" : "R^2", false),
                                       ("loss", "loss.svg", "loss", logLoss)] {
      var series: [Chart.Series] = []
      for (i, run) in runs.enumerated() {
        let color = Chart.palette[i % Chart.palette.count]
        for (set, dash) in [("train", nil as String?), ("test", "7,4")] {
          let p = points(run.rows, "\(set)_\(metric)")
          guard p.contains(where: { $0.y.isFinite }) else { continue }
          series.append(Chart.Series(label: "\(run.name) \(set)", points: p, color: color, dash: dash))
        }
      }
      guard !series.isEmpty else { continue }
      out.append((file, Chart(title: "\(title): train (solid) vs test (dashed) \(label)", xLabel: "epoch",
                              yLabel: label, series: series, logY: log)))
    }
    return out
  }

  /// The files a run's report adds to its folder.
  public static let runFiles = ["accuracy.svg", "loss.svg", "report.html"]
  /// The files a sweep's summary and report add to its folder.
  public static let sweepFiles = ["summary.json", "summary.csv", "accuracy.svg", "loss.svg", "report.html"]

  /// Writes the charts and report.html of a sweep folder: DIR/accuracy.svg, DIR/loss.svg, DIR/<setting>/*.svg.
  /// `summary` is the content of summary.json; `runs` the metrics rows of each setting with its folder name (a plain
  /// name inside the sweep's folder).
  public static func writeSweep(folder: OutputFolder, summary: JSON, runs: [(name: String, folder: String, rows: [JSON])],
                                logLoss: Bool) throws -> [String] {
    var written: [String] = []
    var svgs: [String: String] = [:]
    let title = summary["title"]?.string ?? "sweep"
    for (file, chart) in combinedCharts(title: title, runs: runs.map { ($0.name, $0.rows) }, logLoss: logLoss) {
      let svg = chart.svg()
      try folder.write(file, svg)
      written.append(file)
      svgs[file] = svg
    }
    for run in runs where !run.rows.isEmpty {
      let sub = try folder.subfolder(run.folder)
      for (file, chart) in charts(title: run.name, rows: run.rows, logLoss: logLoss) {
        let path = Files.join(run.folder, file), svg = chart.svg()
        try sub.write(file, svg)
        written.append(path)
        svgs[path] = svg
      }
    }
    let html = HTMLPage.sweep(summary: summary, runs: runs, files: svgs, directory: folder.path)
    try folder.write("report.html", html)
    return written + ["report.html"]
  }

  /// Writes accuracy.svg, loss.svg and report.html for one run's folder.
  public static func writeRun(folder: OutputFolder, title: String, config: JSON?, rows: [JSON], logLoss: Bool) throws -> [String] {
    var written: [String] = []
    var svgs: [String: String] = [:]
    for (file, chart) in charts(title: title, rows: rows, logLoss: logLoss) {
      let svg = chart.svg()
      try folder.write(file, svg)
      written.append(file)
      svgs[file] = svg
    }
    let html = HTMLPage.run(title: title, config: config, rows: rows, files: svgs, directory: folder.path)
    try folder.write("report.html", html)
    return written + ["report.html"]
  }

  /// The rows of a metrics.jsonl file.
  public static func readMetrics(_ path: String) throws -> [JSON] {
    guard let bytes = try? Files.read(path, limit: 1 << 30, missing: "") else {
      throw FileError("\(path): cannot be read (is this a dpt log folder?)")
    }
    let text = String(decoding: bytes, as: UTF8.self)
    return try text.split(separator: "\n").enumerated().map { i, line in
      do { return try JSON.parse(String(line)) } catch {
        throw FileError("\(path):\(i + 1): not a JSON object (\(error))")
      }
    }
  }
}
