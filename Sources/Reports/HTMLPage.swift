import Foundation
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
