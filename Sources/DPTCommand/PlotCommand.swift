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
    abstract: "Redraw the charts of a sweep or training folder, or overlay several runs and sweeps in one chart.",
    discussion: """
      One DIR without --output: redraws its charts and report.html from its files (a `dpt sweep --log-dir` folder,
      with summary.json, or a `dpt train --log-dir` folder, with metrics.jsonl), made here or on another machine.

      Several DIRs with --output: one accuracy chart and one loss chart with a line per run (a sweep gives a line
      per setting, the mean over its seeds with a band), each in its own colour, and a report.html, in --output:

        dpt plot runs/sgd runs/adagrad runs/lbfgs --output runs/optimizers --x evaluations
      """.reflowed)

  @Argument(help: "The folders.")
  var directories: [String]

  @Option(help: ArgumentHelp("Overlay the folders' runs in this folder (accuracy.svg, loss.svg, their PNGs, report.html).", valueName: "dir"))
  var output: String?

  @Option(help: ArgumentHelp("The x axis: epoch | seconds (training time) | evaluations (loss-and-gradient evaluations: L-BFGS's line search makes several an epoch).", valueName: "axis"))
  var x: String = "epoch"

  @Option(help: "The loss axis: log | linear.")
  var lossScale: String = "linear"

  @Flag(help: "Replace an earlier overlay in --output.")
  var overwrite = false

  func validate() throws {
    if !["log", "linear"].contains(lossScale) { throw ValidationError("--loss-scale '\(lossScale)': use log or linear") }
    if !["epoch", "seconds", "evaluations"].contains(x) { throw ValidationError("--x '\(x)': use epoch, seconds or evaluations") }
    if directories.isEmpty { throw ValidationError("give a folder: dpt plot DIR, or dpt plot DIR1 DIR2 ... --output DIR") }
    if directories.count > 1 && output == nil {
      throw ValidationError("several folders are overlaid into --output DIR: add it (e.g. --output runs/compare)")
    }
    if output == nil && x != "epoch" { throw ValidationError("--x applies to overlays (--output DIR); a redraw keeps epochs") }
    if output == nil && overwrite { throw ValidationError("--overwrite applies to --output") }
  }

  /// A folder's lines: a training run's one, or a sweep's one per setting (its seeds' runs as repeats).
  static func lines(_ directory: String, label: String? = nil) throws -> (lines: [ReportFiles.Line], folders: [String], summary: JSON?) {
    let fm = FileManager.default
    let summaryPath = Files.join(directory, "summary.json")
    let metricsPath = Files.join(directory, "metrics.jsonl")
    if fm.fileExists(atPath: summaryPath) {
      let summary: JSON
      do { summary = try JSON.parse(bytes: try Files.read(summaryPath, limit: 1 << 28, missing: "")) } catch {
        throw CommandError("\(summaryPath): not valid JSON (\(error))")
      }
      guard let settings = summary["settings"]?.array else { throw CommandError("\(summaryPath): has no \"settings\" list: not a dpt sweep summary") }
      var lines: [ReportFiles.Line] = [], folders: [String] = []
      for s in settings {
        let name = s["setting"]?.string ?? "?", sub = s["folder"]?.string ?? ""
        let runs = s["runs"]?.array?.compactMap { $0["folder"]?.string } ?? [sub]
        // Every folder a summary names is inside the sweep's: a crafted summary cannot point dpt anywhere else.
        for f in [sub] + runs where !f.split(separator: "/", omittingEmptySubsequences: false).allSatisfy({ OutputFolder.isPlainName(String($0)) }) {
          throw CommandError("\(summaryPath): the setting '\(name)' names the folder '\(f)', which is not a folder inside \(directory)")
        }
        let rows = try runs.map { f -> [EpochRecord] in
          let path = Files.join(directory, "\(f)/metrics.jsonl")
          return fm.fileExists(atPath: path) ? try ReportFiles.readMetrics(path) : []
        }.filter { !$0.isEmpty }
        let diverged = (s["status"]?.string ?? "").contains("diverged")
        lines.append(ReportFiles.Line(name: label.map { "\($0): \(name)" } ?? name, rows: rows.first ?? [],
                                      repeats: Array(rows.dropFirst()), diverged: diverged))
        folders.append(sub)
      }
      return (lines, folders, summary)
    }
    guard fm.fileExists(atPath: metricsPath) else {
      throw CommandError("\(directory): holds neither summary.json (a sweep) nor metrics.jsonl (a training run)")
    }
    let rows = try ReportFiles.readMetrics(metricsPath)
    let config = (try? Files.read(Files.join(directory, "config.json"), limit: 1 << 24, missing: "")).flatMap { try? JSON.parse(bytes: $0) }
    let diverged = config?["status"]?.string == "diverged"
    return ([ReportFiles.Line(name: label ?? directory, rows: rows, diverged: diverged)], [], config)
  }

  func run() throws {
    if let output { return try overlay(into: output) }
    let directory = directories[0]
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isFolder), isFolder.boolValue else {
      throw CommandError("\(directory): no such folder: give a folder that dpt train or dpt sweep wrote (--log-dir)")
    }
    // dpt redraws only a folder a dpt run wrote, as that run: it replaces its own charts and nothing else.
    let runID: String
    do {
      guard let id = try OutputFolder.runID(of: directory) else {
        throw CommandError("\(directory): has no \(OutputFolder.manifestName) (the list of files a dpt run wrote there): dpt plot redraws only folders dpt wrote, replacing nothing else; copy the folder whole, or train again with --log-dir")
      }
      runID = id
    } catch let p as OutputProblem { throw CommandError(ErrorMessages.text(p, flag: "dpt plot", claim: .fresh)) }
    let (lines, folders, json) = try PlotCommand.lines(directory)
    let folder = try OutputPaths.folder(directory, flag: "dpt plot", command: "dpt plot", claim: .resume(runID: runID))
    defer { folder.release() }
    let files: [String]
    if let summary = json, summary["settings"] != nil {
      files = try ReportFiles.writeSweep(folder: folder, summary: summary, lines: Array(zip(lines, folders)).map { ($0.0, $0.1) },
                                         logLoss: lossScale == "log")
    } else {
      let config = json
      let title = config.map { "\($0["model"]?.string ?? "model") on \($0["dataset"]?.string ?? "data")" } ?? directory
      let findings = (try? Files.read(folder.file("findings.json"), limit: 1 << 24, missing: "")).flatMap { try? JSON.parse(bytes: $0) }?.array ?? []
      files = try ReportFiles.writeRun(folder: folder, title: title, config: config, rows: lines[0].rows, logLoss: lossScale == "log",
                                       diverged: lines[0].diverged, findings: findings)
    }
    print("wrote \(counted(files.count, "file")) in \(directory): \(files.filter { !$0.contains("/") }.joined(separator: ", "))\(files.contains { $0.contains("/") } ? " and each setting's charts" : "")")
  }

  /// Every folder's lines in one accuracy chart and one loss chart, in --output.
  func overlay(into output: String) throws {
    var lines: [ReportFiles.Line] = []
    for d in directories {
      let label = Files.lastComponent(Files.resolved(d))
      lines += try PlotCommand.lines(d, label: label).lines
    }
    guard !lines.isEmpty else { throw CommandError("the folders hold no runs to draw") }
    let folder = try OutputPaths.folder(output, flag: "--output", command: "dpt plot", claim: overwrite ? .replace : .fresh,
                                        willWrite: ReportFiles.overlayFiles)
    defer { folder.release() }
    try OutputPaths.checkInputs(directories.map { OutputPaths.Input(flag: "dpt plot", path: Files.join($0, "metrics.jsonl")) },
                                outputs: [("--output", OutputPaths.outputFiles(folder, writes: ReportFiles.overlayFiles))])
    let title = "dpt plot: " + directories.map { Files.lastComponent(Files.resolved($0)) }.joined(separator: ", ")
    let files = try ReportFiles.writeOverlay(folder: folder, title: title, lines: lines, x: x, logLoss: lossScale == "log")
    print("wrote \(files.joined(separator: ", ")) in \(output): \(counted(lines.count, "line")) from \(counted(directories.count, "folder"))")
  }
}
