import ArgumentParser
import Collectives
import Datasets
import Foundation
import Reports
import Training
import _Support

struct PlotCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "plot",
    abstract: "Redraw the charts and report.html of a sweep or training folder from its files.",
    discussion: "DIR is a `dpt sweep --log-dir` folder (summary.json) or a `dpt train --log-dir` folder (metrics.jsonl), made here or on another machine.")

  @Argument(help: "The folder.")
  var directory: String

  @Option(help: "The loss axis: log | linear.")
  var lossScale: String = "log"

  func validate() throws {
    if !["log", "linear"].contains(lossScale) { throw ValidationError("--loss-scale '\(lossScale)': use log or linear") }
  }

  func run() throws {
    let fm = FileManager.default
    let summaryPath = Files.join(directory, "summary.json")
    let metricsPath = Files.join(directory, "metrics.jsonl")
    let files: [String]
    if fm.fileExists(atPath: summaryPath) {
      let text = try String(contentsOfFile: summaryPath, encoding: .utf8)
      let summary: JSON
      do { summary = try JSON.parse(text) } catch { throw CommandError("\(summaryPath): not valid JSON (\(error))") }
      guard let settings = summary["settings"]?.array else { throw CommandError("\(summaryPath): has no \"settings\" list: not a dpt sweep summary") }
      let runs = try settings.map { s -> (name: String, folder: String, rows: [JSON]) in
        let name = s["setting"]?.string ?? "?", folder = s["folder"]?.string ?? ""
        let path = Files.join(directory, "\(folder)/metrics.jsonl")
        return (name, folder, fm.fileExists(atPath: path) ? try ReportFiles.readMetrics(path) : [])
      }
      files = try ReportFiles.writeSweep(directory: directory, summary: summary, runs: runs, logLoss: lossScale == "log")
    } else if fm.fileExists(atPath: metricsPath) {
      let rows = try ReportFiles.readMetrics(metricsPath)
      let configPath = Files.join(directory, "config.json")
      let config = (try? String(contentsOfFile: configPath, encoding: .utf8)).flatMap { try? JSON.parse($0) }
      let title = config.map { "\($0["model"]?.string ?? "model") on \($0["dataset"]?.string ?? "data")" } ?? directory
      files = try ReportFiles.writeRun(directory: directory, title: title, config: config, rows: rows, logLoss: lossScale == "log")
    } else {
      throw CommandError("\(directory): holds neither summary.json (a sweep) nor metrics.jsonl (a training run)")
    }
    print("wrote \(files.joined(separator: ", ")) in \(directory)")
  }
}
