import Foundation
import Training
import _Support

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

  static func number(_ v: JSON?) -> String { v?.double.map(NumberText.compact) ?? "-" }

  /// `<a>` to a file only when it exists.
  static func link(_ file: String, _ text: String, directory: String) -> String {
    FileManager.default.fileExists(atPath: Files.join(directory, file))
      ? "<a href=\"\(escape(file))\">\(escape(text))</a>" : ""
  }

  /// The chart written as `file`, inlined (the page carries its charts when copied alone), or nothing.
  static func image(_ file: String, files: [String: String]) -> String {
    guard let svg = files[file] else { return "" }
    return "<figure>" + svg.replacingOccurrences(of: "<svg ", with: "<svg aria-label=\"\(escape(file))\" ") + "</figure>"
  }

  /// The findings as a list, each with its evidence.
  static func findings(_ list: [JSON]) -> String {
    guard !list.isEmpty else { return "" }
    var b = "<h2>Findings</h2>\n<ul>\n"
    for f in list {
      let setting = f["setting"]?.string.map { " <i>\(escape($0))</i>" } ?? ""
      b += "<li><b>\(escape(f["kind"]?.string ?? "?"))</b>\(setting): \(escape(f["evidence"]?.string ?? ""))</li>\n"
    }
    return b + "</ul>\n"
  }

  /// A summary value, with "± sd" when the setting repeats seeds.
  static func number(_ s: JSON, _ key: String) -> String {
    let v = number(s[key])
    guard let sd = s[key + "_sd"]?.double else { return v }
    return v + " ±" + NumberText.compact(sd)
  }

  static func sweep(summary: JSON, lines: [(line: ReportFiles.Line, folder: String)], files: [String: String], curves: [String],
                    directory: String) -> String {
    let settings = summary["settings"]?.array ?? []
    let score = settings.contains { $0["best_val_acc"] != nil } ? "acc" : "r2"
    var b = "<h1>\(escape(summary["title"]?.string ?? "dpt sweep"))</h1>\n"
    if let about = summary["about"]?.string { b += "<p class=\"note\">\(escape(about))</p>\n" }
    if let best = summary["best"]?.string {
      b += "<p>Best setting by \(escape(summary["best_by"]?.string ?? "validation")) (the test set is reported, never used to choose): <b>\(escape(best))</b>"
      if let runnerUp = summary["runner_up"]?.string {
        b += "; runner-up \(escape(runnerUp)), \(number(summary["margin"])) behind"
        if summary["tie"]?.bool == true { b += ", within one standard deviation over the seeds: a tie" }
      }
      b += "</p>\n"
    }
    b += findings(summary["findings"]?.array ?? [])
    b += "<table>\n<tr><th>setting</th><th>status</th><th>epochs</th><th>best val \(score)</th><th>at epoch</th><th>final train \(score)</th><th>final val \(score)</th><th>final test \(score)</th><th>final train loss</th><th>final val loss</th><th>final test loss</th><th>seconds</th><th>files</th></tr>\n"
    for s in settings {
      let name = s["setting"]?.string ?? "?"
      let folder = s["folder"]?.string ?? ""
      let css = name == summary["best"]?.string ? " class=\"best\"" : s["status"]?.string == "diverged" ? " class=\"diverged\"" : ""
      // The files of the setting's folder, or of each seed's folder inside it.
      let runs = (s["runs"]?.array ?? []).compactMap { r in r["folder"]?.string.map { (r["seed"]?.int, $0) } }
      let links = (runs.isEmpty ? [(nil, folder)] : runs).map { seed, f in
        let files = ["metrics.csv", "metrics.jsonl", "config.json"].map { link("\(f)/\($0)", $0, directory: directory) }.filter { !$0.isEmpty }
        return files.isEmpty ? "" : (seed.map { "seed \($0): " } ?? "") + files.joined(separator: " ")
      }.filter { !$0.isEmpty }.joined(separator: "<br>")
      b += "<tr\(css)><td class=\"name\">\(escape(name))</td><td>\(escape(s["status"]?.string ?? ""))</td><td>\(number(s["epochs"]))</td>"
      b += ["best_val_\(score)", "best_val_epoch", "final_train_\(score)", "final_val_\(score)", "final_test_\(score)",
            "final_train_loss", "final_val_loss", "final_test_loss"].map { "<td>\(number(s, $0))</td>" }.joined()
      b += "<td>\(String(format: "%.1f", s["seconds"]?.double ?? 0))</td><td>\(links)</td></tr>\n"
    }
    b += "</table>\n<p>\(["summary.csv", "summary.json"].map { link($0, $0, directory: directory) }.joined(separator: " "))</p>\n"
    if !curves.isEmpty {
      b += "<h2>Against the swept values</h2>\n" + curves.map { image($0, files: files) }.joined(separator: "\n") + "\n"
    }
    b += "<h2>All settings</h2>\n\(image("accuracy.svg", files: files))\n\(image("loss.svg", files: files))\n"
    for (line, folder) in lines {
      b += "<h2>\(escape(line.name))</h2>\n"
      b += image("\(folder)/accuracy.svg", files: files) + "\n" + image("\(folder)/loss.svg", files: files) + "\n"
      if line.rows.isEmpty { b += "<p class=\"note\">no epoch finished</p>\n" }
    }
    return page(summary["title"]?.string ?? "dpt sweep", b)
  }

  static func run(title: String, config: JSON?, rows: [EpochRecord], files: [String: String], findings list: [JSON] = [],
                  directory: String) -> String {
    var b = "<h1>\(escape(title))</h1>\n"
    b += findings(list)
    b += image("accuracy.svg", files: files) + "\n" + image("loss.svg", files: files) + "\n"
    // The epochs: one column per key any row has (the first epoch alone records initial_loss), in the file's order.
    let objects = rows.compactMap { r -> [(String, JSON)]? in if case .object(let o) = r.json { return o } else { return nil } }
    let keys = objects.reduce(into: [String]()) { keys, o in for (k, _) in o where !keys.contains(k) { keys.append(k) } }
    if !keys.isEmpty {
      b += "<table>\n<tr>" + keys.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
      for o in objects { b += "<tr>" + keys.map { k in "<td>\(number(o.first { $0.0 == k }?.1))</td>" }.joined() + "</tr>\n" }
      b += "</table>\n"
    }
    if case .object(let c)? = config {
      b += "<h2>Configuration</h2>\n<table>\n" + c.map { k, v in
        "<tr><th>\(escape(k))</th><td class=\"name\">\(escape(v.string ?? v.serialized()))</td></tr>\n"
      }.joined() + "</table>\n"
    }
    b += "<p>\(["metrics.csv", "metrics.jsonl", "config.json"].map { link($0, $0, directory: directory) }.joined(separator: " "))</p>\n"
    return page(title, b)
  }

  /// `dpt plot DIR1 DIR2 --output DIR`: the runs compared, their final numbers, and the two charts.
  static func overlay(title: String, lines: [ReportFiles.Line], files: [String: String]) -> String {
    var b = "<h1>\(escape(title))</h1>\n"
    let score: Metric = lines.contains { l in l.rows.contains { $0.classification } } ? .acc : .r2
    b += "<table>\n<tr><th>run</th><th>epochs</th><th>final train \(score)</th><th>final val \(score)</th><th>final test \(score)</th><th>final train loss</th><th>final test loss</th><th>seconds</th></tr>\n"
    for l in lines {
      let last = l.rows.last
      let seconds = l.rows.reduce(0) { $0 + ($1.seconds ?? 0) }
      b += "<tr\(l.diverged ? " class=\"diverged\"" : "")><td class=\"name\">\(escape(l.name))</td><td>\(l.rows.count)</td>"
      let finals: [(MetricSet, Metric)] = [(.train, score), (.val, score), (.test, score), (.train, .loss), (.test, .loss)]
      b += finals.map { "<td>\(number(JSON(last?.value($0.0, $0.1))))</td>" }.joined()
      b += "<td>\(String(format: "%.1f", seconds))</td></tr>\n"
    }
    b += "</table>\n\(image("accuracy.svg", files: files))\n\(image("loss.svg", files: files))\n"
    return page(title, b)
  }
}
