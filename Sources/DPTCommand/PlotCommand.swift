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
    guard fm.fileExists(atPath: summaryPath) || fm.fileExists(atPath: metricsPath) else {
      throw CommandError("\(directory): holds neither summary.json (a sweep) nor metrics.jsonl (a training run)")
    }
    // dpt redraws only a folder a dpt run wrote, as that run: it replaces its own charts and nothing else.
    let runID: String
    do {
      guard let id = try OutputFolder.runID(of: directory) else {
        throw CommandError("\(directory): has no \(OutputFolder.manifestName) (the list of files a dpt run wrote there): dpt plot redraws only folders dpt wrote, replacing nothing else; copy the folder whole, or train again with --log-dir")
      }
      runID = id
    } catch let p as OutputProblem { throw CommandError(ErrorMessages.text(p, flag: "dpt plot", claim: .fresh)) }
    let folder = try OutputPaths.folder(directory, flag: "dpt plot", command: "dpt plot", claim: .resume(runID: runID))
    defer { folder.release() }
    let files: [String]
    if fm.fileExists(atPath: summaryPath) {
      let summary: JSON
      do { summary = try JSON.parse(bytes: try Files.read(summaryPath, limit: 1 << 28, missing: "")) } catch {
        throw CommandError("\(summaryPath): not valid JSON (\(error))")
      }
      guard let settings = summary["settings"]?.array else { throw CommandError("\(summaryPath): has no \"settings\" list: not a dpt sweep summary") }
      let runs = try settings.map { s -> (name: String, folder: String, rows: [JSON]) in
        let name = s["setting"]?.string ?? "?", sub = s["folder"]?.string ?? ""
        // A setting's folder is a name inside the sweep's folder: a summary cannot point dpt anywhere else.
        guard OutputFolder.isPlainName(sub) else {
          throw CommandError("\(summaryPath): the setting '\(name)' names the folder '\(sub)', which is not a folder inside \(directory)")
        }
        let path = Files.join(directory, "\(sub)/metrics.jsonl")
        return (name, sub, fm.fileExists(atPath: path) ? try ReportFiles.readMetrics(path) : [])
      }
      files = try ReportFiles.writeSweep(folder: folder, summary: summary, runs: runs, logLoss: lossScale == "log")
    } else {
      let rows = try ReportFiles.readMetrics(metricsPath)
      let configPath = Files.join(directory, "config.json")
      let config = (try? Files.read(configPath, limit: 1 << 24, missing: "")).flatMap { try? JSON.parse(bytes: $0) }
      let title = config.map { "\($0["model"]?.string ?? "model") on \($0["dataset"]?.string ?? "data")" } ?? directory
      files = try ReportFiles.writeRun(folder: folder, title: title, config: config, rows: rows, logLoss: lossScale == "log")
    }
    print("wrote \(files.joined(separator: ", ")) in \(directory)")
  }
}
