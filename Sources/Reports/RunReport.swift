import Foundation
import Training

/// Charts and HTML pages from metrics rows (the objects of metrics.jsonl), so that `dpt plot` can redraw them from
/// the files of a run made earlier or elsewhere.
public enum RunReport {
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

  /// Writes the charts and report.html of a sweep folder: DIR/accuracy.svg, DIR/loss.svg, DIR/<setting>/*.svg.
  /// `summary` is the content of summary.json; `runs` the metrics rows of each setting with its folder name.
  public static func writeSweep(directory: String, summary: JSON, runs: [(name: String, folder: String, rows: [JSON])],
                                logLoss: Bool) throws -> [String] {
    var written: [String] = []
    var svgs: [String: String] = [:]
    let title = summary["title"]?.string ?? "sweep"
    for (file, chart) in combinedCharts(title: title, runs: runs.map { ($0.name, $0.rows) }, logLoss: logLoss) {
      let svg = chart.svg()
      try RunLog.writeAtomically(svg, to: (directory as NSString).appendingPathComponent(file))
      written.append(file)
      svgs[file] = svg
    }
    for run in runs where !run.rows.isEmpty {
      for (file, chart) in charts(title: run.name, rows: run.rows, logLoss: logLoss) {
        let path = (run.folder as NSString).appendingPathComponent(file), svg = chart.svg()
        try RunLog.writeAtomically(svg, to: (directory as NSString).appendingPathComponent(path))
        written.append(path)
        svgs[path] = svg
      }
    }
    let html = HTMLPage.sweep(summary: summary, runs: runs, files: svgs, directory: directory)
    try RunLog.writeAtomically(html, to: (directory as NSString).appendingPathComponent("report.html"))
    return written + ["report.html"]
  }

  /// Writes accuracy.svg, loss.svg and report.html for one run's folder.
  public static func writeRun(directory: String, title: String, config: JSON?, rows: [JSON], logLoss: Bool) throws -> [String] {
    var written: [String] = []
    var svgs: [String: String] = [:]
    for (file, chart) in charts(title: title, rows: rows, logLoss: logLoss) {
      let svg = chart.svg()
      try RunLog.writeAtomically(svg, to: (directory as NSString).appendingPathComponent(file))
      written.append(file)
      svgs[file] = svg
    }
    let html = HTMLPage.run(title: title, config: config, rows: rows, files: svgs, directory: directory)
    try RunLog.writeAtomically(html, to: (directory as NSString).appendingPathComponent("report.html"))
    return written + ["report.html"]
  }

  /// The rows of a metrics.jsonl file.
  public static func readMetrics(_ path: String) throws -> [JSON] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
      throw TrainingError("\(path): cannot be read (is this a dpt log folder?)")
    }
    return try text.split(separator: "\n").enumerated().map { i, line in
      do { return try JSON.parse(String(line)) } catch {
        throw TrainingError("\(path):\(i + 1): not a JSON object (\(error))")
      }
    }
  }
}

/// Offline HTML: inline styles, the charts inlined as SVG (each the page's full width), links relative to the
/// report's folder, no scripts.
enum HTMLPage {
  static let style = """
    body { font-family: Helvetica, Arial, sans-serif; margin: 2em; color: #222; max-width: 1200px; }
    table { border-collapse: collapse; font-size: 13px; margin: 1em 0; }
    th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
    th { background: #f3f3f3; } td.name { text-align: left; } tr.best { background: #e8f5e9; font-weight: bold; }
    tr.diverged { color: #b00020; }
    figure { margin: 1em 0; } figure svg { width: 100%; height: auto; border: 1px solid #eee; }
    .note { color: #555; }
    """

  static func page(_ title: String, _ body: String) -> String {
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>\(escape(title))</title><style>\(style)</style></head>\n<body>\n\(body)</body></html>\n"
  }

  /// Whole numbers as such (epochs, counts), small ones with three significant digits, the rest to four places.
  static func number(_ v: JSON?) -> String {
    guard let x = v?.double else { return "-" }
    guard x.isFinite else { return "\(x)" }
    if x == x.rounded() && abs(x) < 1e15 { return String(Int(x)) }
    return abs(x) < 1e-3 || abs(x) >= 1e6 ? String(format: "%.3g", x) : String(format: "%.4f", x)
  }

  /// `<a>` to a file only when it exists.
  static func link(_ file: String, _ text: String, directory: String) -> String {
    FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(file))
      ? "<a href=\"\(escape(file))\">\(escape(text))</a>" : ""
  }

  /// The chart written as `file`, inlined (the page carries its charts when copied alone), or nothing.
  static func image(_ file: String, files: [String: String]) -> String {
    guard let svg = files[file] else { return "" }
    return "<figure>" + svg.replacingOccurrences(of: "<svg ", with: "<svg aria-label=\"\(escape(file))\" ") + "</figure>"
  }

  static func sweep(summary: JSON, runs: [(name: String, folder: String, rows: [JSON])], files: [String: String],
                    directory: String) -> String {
    let settings = summary["settings"]?.array ?? []
    let score = settings.contains { $0["best_val_acc"] != nil } ? "acc" : "r2"
    var b = "<h1>\(escape(summary["title"]?.string ?? "dpt sweep"))</h1>\n"
    if let about = summary["about"]?.string { b += "<p class=\"note\">\(escape(about))</p>\n" }
    if let best = summary["best"]?.string {
      b += "<p>Best setting (chosen on the validation set; the test set is reported, never used to choose): <b>\(escape(best))</b></p>\n"
    }
    b += "<table>\n<tr><th>setting</th><th>status</th><th>epochs</th><th>best val \(score)</th><th>at epoch</th><th>final train \(score)</th><th>final val \(score)</th><th>final test \(score)</th><th>final train loss</th><th>final val loss</th><th>final test loss</th><th>seconds</th><th>files</th></tr>\n"
    for s in settings {
      let name = s["setting"]?.string ?? "?"
      let folder = s["folder"]?.string ?? ""
      let css = name == summary["best"]?.string ? " class=\"best\"" : s["status"]?.string == "diverged" ? " class=\"diverged\"" : ""
      let links = ["metrics.csv", "metrics.jsonl", "config.json"].map { link("\(folder)/\($0)", $0, directory: directory) }
        .filter { !$0.isEmpty }.joined(separator: " ")
      b += "<tr\(css)><td class=\"name\">\(escape(name))</td><td>\(escape(s["status"]?.string ?? ""))</td><td>\(number(s["epochs"]))</td>"
      b += ["best_val_\(score)", "best_val_epoch", "final_train_\(score)", "final_val_\(score)", "final_test_\(score)",
            "final_train_loss", "final_val_loss", "final_test_loss"].map { "<td>\(number(s[$0]))</td>" }.joined()
      b += "<td>\(String(format: "%.1f", s["seconds"]?.double ?? 0))</td><td>\(links)</td></tr>\n"
    }
    b += "</table>\n<p>\(["summary.csv", "summary.json"].map { link($0, $0, directory: directory) }.joined(separator: " "))</p>\n"
    b += "<h2>All settings</h2>\n\(image("accuracy.svg", files: files))\n\(image("loss.svg", files: files))\n"
    for run in runs {
      b += "<h2>\(escape(run.name))</h2>\n"
      b += image("\(run.folder)/accuracy.svg", files: files) + "\n" + image("\(run.folder)/loss.svg", files: files) + "\n"
      if run.rows.isEmpty { b += "<p class=\"note\">no epoch finished</p>\n" }
    }
    return page(summary["title"]?.string ?? "dpt sweep", b)
  }

  static func run(title: String, config: JSON?, rows: [JSON], files: [String: String], directory: String) -> String {
    var b = "<h1>\(escape(title))</h1>\n"
    if case .object(let c)? = config {
      b += "<p class=\"note\">" + c.map { "\(escape($0.0)) = \(escape($0.1.serialized()))" }.joined(separator: ", ") + "</p>\n"
    }
    b += image("accuracy.svg", files: files) + "\n" + image("loss.svg", files: files) + "\n"
    if let last = rows.last, case .object(let o) = last {
      b += "<table>\n<tr>" + o.map { "<th>\(escape($0.0))</th>" }.joined() + "</tr>\n"
      for r in rows { if case .object(let row) = r { b += "<tr>" + row.map { "<td>\(number($0.1))</td>" }.joined() + "</tr>\n" } }
      b += "</table>\n"
    }
    b += "<p>\(["metrics.csv", "metrics.jsonl", "config.json"].map { link($0, $0, directory: directory) }.joined(separator: " "))</p>\n"
    return page(title, b)
  }
}
