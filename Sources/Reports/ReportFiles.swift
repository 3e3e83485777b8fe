import Foundation
import Training
import _Support

/// Charts and HTML pages from metrics rows (the objects of metrics.jsonl), so that `dpt plot` can redraw them from
/// the files of a run made earlier or elsewhere. Every chart is written as SVG and, when Debian's rsvg-convert
/// (librsvg2-bin) is there, as PNG beside it.
public enum ReportFiles {
  /// Accuracy when the rows are of a classification run, R^2 for regression.
  static func scoreMetric(_ rows: [EpochRecord]) -> Metric {
    rows.contains { $0.classification } ? .acc : .r2
  }

  static func points(_ rows: [EpochRecord], _ set: MetricSet, _ metric: Metric, x: String = "epoch") -> [(x: Double, y: Double)] {
    var total = 0.0
    return rows.map { r in
      var position = Double(r.epoch)
      switch x {
      case "seconds":  // the training time so far
        total += r.seconds ?? 0
        position = total
      case "evaluations":
        total += Double(r.evaluations ?? 0)
        position = total
      default: break
      }
      return (position, r.value(set, metric) ?? .nan)
    }
  }

  static let sets: [(set: MetricSet, label: String, dash: String?)] = [(.train, "train", Chart.trainDash),
                                                                        (.val, "validation", Chart.validationDash),
                                                                        (.test, "test", Chart.testDash)]

  /// The best epoch of a run or of a setting's seeds (`EpochRecord.bestEpoch(of:)`, the same in every chart, table
  /// and finding) and the set it watches, with the legend's words for it.
  static func bestEpoch(_ runs: [[EpochRecord]]) -> (epoch: Double, set: MetricSet, meaning: String)? {
    guard let first = runs.first, let e = EpochRecord.bestEpoch(of: runs) else { return nil }
    let validation = first.contains { $0.validation != nil }
    return (Double(e), validation ? .val : .test,
            EpochRecord.bestEpochDefinition(classification: first.contains { $0.classification }, validation: validation, seeds: runs.count))
  }

  /// The accuracy (R^2 for regression) and loss charts of one run: train, validation and test, the best epoch of
  /// the watched set marked, a divergence marked where the run stopped.
  public static func charts(title: String, rows: [EpochRecord], logLoss: Bool, diverged: Bool = false) -> [(file: String, chart: Chart)] {
    let score = scoreMetric(rows)
    var out: [(String, Chart)] = []
    for (metric, file, label, log) in [(score, "accuracy.svg", score == .acc ? "accuracy" : "R^2", false),
                                       (Metric.loss, "loss.svg", "loss", logLoss)] {
      var series: [Chart.Series] = []
      let best = bestEpoch([rows])
      for s in sets {
        let p = points(rows, s.set, metric)
        guard p.contains(where: { $0.y.isFinite }) else { continue }
        var line = Chart.Series(label: s.label, points: p, color: Chart.palette[0], dash: s.dash)
        if let best, best.set == s.set, let y = p.first(where: { $0.x == best.epoch })?.y {
          line.marks.append(Chart.Mark(x: best.epoch, y: y, kind: .best, label: "best \(s.label) \(label) at epoch \(Int(best.epoch))"))
        }
        if diverged, s.set == .train, let last = p.last(where: { $0.y.isFinite }) ?? p.last {
          line.marks.append(Chart.Mark(x: last.x, y: last.y, kind: .diverged, label: "diverged after epoch \(Int(last.x))"))
        }
        series.append(line)
      }
      guard !series.isEmpty else { continue }
      let named = series.map(\.label)
      let setsText = named.count == 1 ? named[0] : named.dropLast().joined(separator: ", ") + " and " + named.last!
      var chart = Chart(title: "\(title): \(setsText) \(label)", xLabel: "epoch", yLabel: label, series: series, logY: log)
      if let best { chart.markMeanings[.best] = best.meaning }
      out.append((file, chart))
    }
    return out
  }

  /// One line drawn per run of an overlay or a sweep: its name, its epochs, and for repeated seeds the other
  /// seeds' epochs (the line is then their mean, with a band of one standard deviation).
  public struct Line {
    public var name: String
    public var rows: [EpochRecord]
    public var repeats: [[EpochRecord]]
    public var diverged: Bool
    /// A segment another continues (population-based training): drawn in its own folder, not among the sweep's lines.
    public var continued = false

    public init(name: String, rows: [EpochRecord], repeats: [[EpochRecord]] = [], diverged: Bool = false) {
      self.name = name
      self.rows = rows
      self.repeats = repeats
      self.diverged = diverged
    }
  }

  /// The mean and standard deviation over runs of `key` at each x they all have.
  static func meanAndBand(_ runs: [[EpochRecord]], _ set: MetricSet, _ metric: Metric, x: String)
    -> (points: [(x: Double, y: Double)], band: [(x: Double, low: Double, high: Double)])
  {
    let each = runs.map { points($0, set, metric, x: x) }
    guard let first = each.first else { return ([], []) }
    var pts: [(Double, Double)] = [], band: [(Double, Double, Double)] = []
    for (i, p) in first.enumerated() {
      let ys = each.compactMap { $0.indices.contains(i) ? $0[i].y : nil }.filter(\.isFinite)
      guard ys.count == each.count else { pts.append((p.x, .nan)); continue }
      let m = ys.reduce(0, +) / Double(ys.count)
      let sd = ys.count > 1 ? (ys.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(ys.count - 1)).squareRoot() : 0
      pts.append((p.x, m))
      if ys.count > 1 { band.append((p.x, m - sd, m + sd)) }
    }
    return (pts, band)
  }

  /// Every line in one accuracy chart and one loss chart: a colour per line (Okabe and Ito's palette), train solid,
  /// validation dotted, test dashed; the mean with a band over seeds; a diverged line drawn up to its divergence,
  /// marked, and left out of the axis range. `x`: epoch, seconds or evaluations.
  public static func combinedCharts(title: String, lines: [Line], logLoss: Bool, x: String = "epoch") -> [(file: String, chart: Chart)] {
    let score = lines.first.map { scoreMetric($0.rows) } ?? .acc
    var out: [(String, Chart)] = []
    for (metric, file, label, log) in [(score, "accuracy.svg", score == .acc ? "accuracy" : "R^2", false),
                                       (Metric.loss, "loss.svg", "loss", logLoss)] {
      var series: [Chart.Series] = []
      for (i, line) in lines.enumerated() {
        let color = Chart.palette[i % Chart.palette.count]
        for s in sets {
          let (p, band) = meanAndBand([line.rows] + line.repeats, s.set, metric, x: x)
          guard p.contains(where: { $0.y.isFinite }) else { continue }
          var series1 = Chart.Series(label: line.name.isEmpty ? s.label : "\(line.name) \(s.label)", points: p, color: color, dash: s.dash)
          series1.band = band
          if line.diverged {
            series1.setsRange = false
            if let last = p.last(where: { $0.y.isFinite }), s.set == .train {
              series1.marks.append(Chart.Mark(x: last.x, y: last.y, kind: .diverged, label: "\(line.name) diverged"))
            }
          } else if x == "epoch", let best = bestEpoch([line.rows] + line.repeats), best.set == s.set,
                    let y = p.first(where: { $0.x == best.epoch })?.y {
            series1.marks.append(Chart.Mark(x: best.epoch, y: y, kind: .best, label: "\(line.name): best epoch \(Int(best.epoch))"))
          }
          series.append(series1)
        }
      }
      guard !series.isEmpty else { continue }
      let xLabel = x == "seconds" ? "training seconds" : x == "evaluations" ? "loss-and-gradient evaluations" : "epoch"
      // The title names the sets drawn, each with its dash.
      let drawnSets = sets.filter { s in series.contains { $0.dash == s.dash } }
      let names = ["train": "solid", "validation": "dotted", "test": "dashed"]
      let key = drawnSets.map { "\($0.label) (\(names[$0.label] ?? "line"))" }.joined(separator: ", ")
      var chart = Chart(title: "\(title): \(key) \(label)", xLabel: xLabel,
                        yLabel: label, series: series, logY: log)
      if let l = lines.first(where: { !$0.rows.isEmpty }), let best = bestEpoch([l.rows] + l.repeats) { chart.markMeanings[.best] = best.meaning }
      if lines.count > 1 {
        // A run per colour, a set per dash: each named once.
        let drawn = Set(series.map(\.label))
        chart.legend = lines.enumerated().map { i, l in
          (l.diverged ? "\(l.name) (diverged)" : l.name, Chart.palette[i % Chart.palette.count], nil as String?)
        } + sets.filter { s in lines.contains { drawn.contains("\($0.name) \(s.label)") } }.map { ($0.label, "#555555", $0.dash) }
      }
      out.append((file, chart))
    }
    return out
  }

  /// sklearn's validation curve: for one axis of a sweep, the final train value, the best validation value and the
  /// final test value of `metric` ("acc", "error" (1 - accuracy), "r2" or "loss") against the axis's value (a log axis for decays and rates,
  /// categories for names), the mean with a band over seeds, the best setting marked. `values[i]` is the axis's value
  /// of `rows[i]` (summary rows); `groups[i]` the other axes' values: with other axes, the curve is drawn at the best
  /// setting's values of them (a colour per combination when no setting is best). When too few settings share them
  /// (axes drawn from distributions), every setting is a point against the axis, unjoined (Optuna's slice plot). A
  /// setting whose runs did not all finish (pruned, interrupted, or a mix) is not part of the line: it is marked
  /// apart at the value it reached.
  /// `title` is the sweep's; the chart's names the metric, the axis and the other axes' values.
  public static func validationCurve(title: String, axis: String, logX: Bool, values: [String], groups: [String], rows: [JSON],
                                     best: String?, score metric: String) -> Chart {
    let numeric = values.allSatisfy { Double($0) != nil }
    // In first-seen order, once each (not NSOrderedSet: on Linux its bridged Swift strings compare by identity).
    func unique(_ xs: [String]) -> [String] { xs.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } } }
    func position(_ v: String) -> Double { numeric ? Double(v)! : Double(unique(values).firstIndex(of: v)!) }
    let label = ["acc": "accuracy", "error": "error rate", "r2": "R^2", "loss": "loss"][metric] ?? metric
    // The error rate is drawn from the accuracy: 1 - it, its spread the same.
    let error = metric == "error"
    func y(_ row: JSON, _ key: String) -> Double? { row[key]?.double.map { error ? 1 - $0 : $0 } }
    let metric = error ? "acc" : metric
    let bestRow = best.flatMap { b in rows.firstIndex { $0["setting"]?.string == b } }
    var groupNames = bestRow.map { [groups[$0]] } ?? unique(groups)
    var groups = groups
    let scatter = unique(groups).count > 1 && rows.indices.filter { groupNames.contains(groups[$0]) }.count < 2
    if scatter { (groupNames, groups) = ([""], groups.map { _ in "" }) }
    let drawnRows = rows.indices.filter { groupNames.contains(groups[$0]) }
    let categories = numeric ? nil : unique(drawnRows.map { values[$0] })
    let single = groupNames.count <= 1
    let keys: [(key: String, name: String, dash: String?)] = single
      ? [("final_train_\(metric)", "train (final)", Chart.trainDash), ("final_val_\(metric)", "validation (final)", Chart.validationDash),
         ("best_val_\(metric)", "validation (best epoch)", "1,2"), ("final_test_\(metric)", "test (final)", Chart.testDash)]
      : [("final_train_\(metric)", "train (final)", Chart.trainDash), ("best_val_\(metric)", "validation (best epoch)", Chart.validationDash),
         ("final_test_\(metric)", "test (final)", Chart.testDash)]
    let done: Set<String> = ["finished", "stopped-early", "converged"]
    var series: [Chart.Series] = []
    for (g, group) in groupNames.enumerated() {
      let members = drawnRows.filter { groups[$0] == group }.sorted { position(values[$0]) < position(values[$1]) }
      let finished = members.filter { done.contains(rows[$0]["status"]?.string ?? "finished") }
      for (k, (key, name, dash)) in keys.enumerated() {
        let pts = finished.map { (position(values[$0]), y(rows[$0], key) ?? .nan) }
        let stopped = members.filter { !finished.contains($0) && (y(rows[$0], key) ?? .nan).isFinite }
        guard pts.contains(where: { $0.1.isFinite }) || !stopped.isEmpty else { continue }
        let color = Chart.palette[(single ? k : g) % Chart.palette.count]
        var s = Chart.Series(label: single ? name : "\(group): \(name)", points: pts, color: color, dash: dash)
        s.joined = !scatter
        s.band = scatter ? [] : finished.compactMap { j in
          guard let m = y(rows[j], key), let sd = rows[j][key + "_sd"]?.double, m.isFinite, sd.isFinite else { return nil }
          return (position(values[j]), m - sd, m + sd)
        }
        s.marks = stopped.map { j in
          let status = rows[j]["status"]?.string ?? "stopped"
          return Chart.Mark(x: position(values[j]), y: y(rows[j], key)!, kind: .pruned,
                            label: "\(rows[j]["setting"]?.string ?? ""): \(status) after \(rows[j]["epochs"]?.int ?? 0) epochs")
        }
        if key == "best_val_\(metric)", let best, let j = finished.first(where: { rows[$0]["setting"]?.string == best }),
           let v = y(rows[j], key) {
          s.marks.append(Chart.Mark(x: position(values[j]), y: v, kind: .best, label: "best: \(best)"))
        }
        series.append(s)
      }
    }
    let at = scatter ? " (every setting)" : single && !(groupNames.first ?? "").isEmpty ? " at \(groupNames[0])" : ""
    var c = Chart(title: "\(title): \(label) against \(axis)\(at)", xLabel: axis, yLabel: label, series: series)
    c.logX = numeric && logX && values.allSatisfy { Double($0)! > 0 }
    c.categories = categories
    c.markMeanings[.best] = "best setting"
    c.markMeanings[.pruned] = "stopped before the last epoch (not on the line)"
    if !single {
      let drawn = Set(series.map(\.label))
      c.legend = groupNames.enumerated().map { ($0.element, Chart.palette[$0.offset % Chart.palette.count], nil as String?) }
        + keys.filter { k in groupNames.contains { drawn.contains("\($0): \(k.name)") } }.map { ($0.name, "#555555", $0.dash) }
    }
    return c
  }

  /// Writes a chart as SVG (and PNG when it can be drawn); returns the files written and the SVG text.
  @discardableResult
  static func write(_ chart: Chart, as file: String, into folder: OutputFolder, files: inout [String], svgs: inout [String: String],
                    prefix: String = "") throws -> String {
    let svg = chart.svg()
    try folder.write(file, svg)
    files.append(prefix + file)
    svgs[prefix + file] = svg
    if let png = PNG.render(svg) {
      let name = String(file.dropLast(4)) + ".png"
      try folder.write(name, png)
      files.append(prefix + name)
    }
    return svg
  }

  /// The files a run's report adds to its folder.
  public static let runFiles = ["accuracy.svg", "loss.svg", "accuracy.png", "loss.png", "findings.json", "best.dptc", "report.html"]
  /// The files `dpt plot DIR1 DIR2 --output DIR` writes.
  public static let overlayFiles = ["accuracy.svg", "loss.svg", "accuracy.png", "loss.png", "report.html"]
  /// The files a sweep's summary and report add to its folder.
  public static let sweepFiles = ["summary.json", "summary.csv", "sweep.json", "accuracy.svg", "loss.svg", "accuracy.png", "loss.png",
                                  "validation_curve.svg", "validation_curve.png", "validation_curve_loss.svg",
                                  "validation_curve_loss.png", "pbt_lineage.svg", "pbt_lineage.png", "replay.sh", "regularisation_path.svg",
                                  "regularisation_path.png", "report.html"]

  /// Writes the charts and report.html of a sweep folder: the combined charts, a validation curve per axis, each
  /// setting's own charts in its folder, and the page with the findings. `summary` is the content of summary.json;
  /// `lines` one per setting (its folder a name inside the sweep's), `extra` charts to add (the regularisation path).
  public static func writeSweep(folder: OutputFolder, summary: JSON, lines: [(line: Line, folder: String)], logLoss: Bool,
                                extra: [(file: String, chart: Chart)] = []) throws -> [String] {
    var written: [String] = []
    var svgs: [String: String] = [:]
    let title = summary["title"]?.string ?? "sweep"
    for (file, chart) in combinedCharts(title: title, lines: lines.map(\.line).filter { !$0.continued }, logLoss: logLoss) {
      try write(chart, as: file, into: folder, files: &written, svgs: &svgs)
    }
    // Validation curves of the score and of the loss for each axis that varies: validation_curve.svg and
    // validation_curve_loss.svg for a sweep of one axis, validation_curve_AXIS.svg and validation_curve_AXIS_loss.svg
    // for each axis of several (each at the best setting's values of the other axes).
    let rows = (summary["settings"]?.array ?? []).filter { !["continued", "replaced"].contains($0["status"]?.string ?? "") }
    let score = rows.contains { $0["best_val_acc"] != nil || $0["final_train_acc"] != nil } ? "acc" : "r2"
    var curves: [String] = []
    let axes = (summary["axes"]?.array ?? []).compactMap(\.string)
    func text(_ r: JSON, _ key: String) -> String { r[key].map { $0.string ?? NumberText.tick($0.double ?? .nan) } ?? "" }
    let swept = axes.filter { key in Set(rows.map { text($0, key) }).count > 1 }
    for key in swept {
      let values = rows.map { text($0, key) }
      let others = axes.filter { $0 != key }
      let groups = rows.map { r in others.map { "\($0)=\(text(r, $0))" }.joined(separator: " ") }
      let log = ["weight_decay", "lr", "decoupled_weight_decay", "eps"].contains(key)
        || (summary["log_axes"]?.array ?? []).contains { $0.string == key }
      for metric in [score == "acc" && summary["metric"]?.string == "error" ? "error" : score, "loss"] {
        let file = "validation_curve" + (swept.count > 1 ? "_\(key)" : "") + (metric == "loss" ? "_loss" : "") + ".svg"
        let chart = validationCurve(title: title, axis: key, logX: log, values: values, groups: groups, rows: rows,
                                    best: summary["best"]?.string, score: metric)
        try write(chart, as: file, into: folder, files: &written, svgs: &svgs)
        curves.append(file)
      }
    }
    for (file, chart) in extra { try write(chart, as: file, into: folder, files: &written, svgs: &svgs) }
    for (line, sub) in lines where !line.rows.isEmpty {
      let own = try folder.subfolder(sub)
      for (file, chart) in combinedCharts(title: line.name, lines: [Line(name: "", rows: line.rows, repeats: line.repeats)], logLoss: logLoss) {
        try write(chart, as: file, into: own, files: &written, svgs: &svgs, prefix: sub + "/")
      }
    }
    let html = HTMLPage.sweep(summary: summary, lines: lines, files: svgs, curves: curves + extra.map(\.file), directory: folder.path)
    try folder.write("report.html", html)
    return written + ["report.html"]
  }

  /// Writes accuracy.svg, loss.svg (and their PNGs) and report.html for one run's folder, with its findings.
  public static func writeRun(folder: OutputFolder, title: String, config: JSON?, rows: [EpochRecord], logLoss: Bool,
                              diverged: Bool = false, findings: [JSON] = []) throws -> [String] {
    var written: [String] = []
    var svgs: [String: String] = [:]
    for (file, chart) in charts(title: title, rows: rows, logLoss: logLoss, diverged: diverged) {
      try write(chart, as: file, into: folder, files: &written, svgs: &svgs)
    }
    let html = HTMLPage.run(title: title, config: config, rows: rows, files: svgs, findings: findings, directory: folder.path)
    try folder.write("report.html", html)
    return written + ["report.html"]
  }

  /// Runs or sweeps of several folders in one accuracy chart and one loss chart, with a report.html (`dpt plot DIR1
  /// DIR2 --output DIR`).
  public static func writeOverlay(folder: OutputFolder, title: String, lines: [Line], x: String, logLoss: Bool) throws -> [String] {
    var written: [String] = []
    var svgs: [String: String] = [:]
    for (file, chart) in combinedCharts(title: title, lines: lines, logLoss: logLoss, x: x) {
      try write(chart, as: file, into: folder, files: &written, svgs: &svgs)
    }
    try folder.write("report.html", HTMLPage.overlay(title: title, lines: lines, files: svgs))
    return written + ["report.html"]
  }

  /// The rows of a metrics.jsonl file.
  public static func readMetrics(_ path: String) throws -> [EpochRecord] {
    guard let bytes = try? Files.read(path, limit: 1 << 30, missing: "") else {
      throw FileError("\(path): cannot be read (is this a dpt log folder?)")
    }
    let text = String(decoding: bytes, as: UTF8.self)
    return try text.split(separator: "\n").enumerated().map { i, line in
      let row: JSON
      do { row = try JSON.parse(String(line)) } catch {
        throw FileError("\(path):\(i + 1): not a JSON object (\(error))")
      }
      guard let record = EpochRecord(json: row) else { throw FileError("\(path):\(i + 1): a row without its epoch") }
      return record
    }
  }
}

/// Charts as PNG, drawn by librsvg (Debian's librsvg2-bin: `rsvg-convert`), never by dpt itself.
public enum PNG {
  /// rsvg-convert on the PATH, or nil.
  public static let converter: String? = {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
      let p = "\(dir)/rsvg-convert"
      if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
  }()

  /// The PNG of an SVG (at twice its size, for print), or nil when rsvg-convert is missing or fails.
  public static func render(_ svg: String) -> Data? {
    guard let converter else { return nil }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: converter)
    p.arguments = ["--format", "png", "--zoom", "2", "--background-color", "white"]
    let input = Pipe(), output = Pipe()
    p.standardInput = input
    p.standardOutput = output
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return nil }
    let writer = Thread { input.fileHandleForWriting.write(Data(svg.utf8)); try? input.fileHandleForWriting.close() }
    writer.start()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return p.terminationStatus == 0 && !data.isEmpty ? data : nil
  }
}
