import Collectives
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Reports
import Testing
import Training
import _Support
import _TestSupport

/// Counts the elements of an XML document; parsing fails on malformed XML.
final class ElementCounter: NSObject, XMLParserDelegate {
  var counts: [String: Int] = [:]
  var attributes: [(element: String, name: String, value: String)] = []
  func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
              attributes a: [String: String] = [:]) {
    counts[name, default: 0] += 1
    for (k, v) in a { attributes.append((name, k, v)) }
  }
}

func parseXML(_ text: String) -> ElementCounter? {
  let parser = XMLParser(data: Data(text.utf8))
  let counter = ElementCounter()
  parser.delegate = counter
  return parser.parse() ? counter : nil
}

@Suite struct ReportsTests {
  /// CRC-32C check value (of "123456789") and RFC 3720's vectors.
  @Test func crc32c() {
    #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
    #expect(CRC32C.checksum([UInt8]()) == 0)
  }

  func rows(_ n: Int, accuracy: Bool = true) -> [EpochRecord] {
    (1...n).map { e in
      let t = Double(e)
      var o: [(String, JSON)] = [("epoch", JSON(e)), ("train_loss", JSON(1 / t)), ("test_loss", JSON(1.2 / t)),
                                 ("val_loss", JSON(1.1 / t))]
      if accuracy { o += [("train_acc", JSON(1 - 0.5 / t)), ("test_acc", JSON(1 - 0.6 / t)), ("val_acc", JSON(1 - 0.55 / t))] }
      return EpochRecord(json: .object(o))!
    }
  }

  @Test func chartIsWellFormedSVGWithOnePathPerSeries() throws {
    let charts = ReportFiles.charts(title: "wd=5e-4 <&> \"x\"", rows: rows(6), logLoss: true)
    #expect(charts.map(\.file) == ["accuracy.svg", "loss.svg"])
    for (_, chart) in charts {
      let svg = chart.svg()
      let xml = try #require(parseXML(svg), "malformed SVG")
      #expect(xml.counts["path"] == chart.series.count)
      #expect(chart.series.count == 3)  // train, validation, test
      #expect(xml.counts["svg"] == 1 && (xml.counts["text"] ?? 0) > 8)  // title, labels, ticks, legend
    }
    let combined = ReportFiles.combinedCharts(title: "sweep", lines: [.init(name: "a", rows: rows(4)), .init(name: "b", rows: rows(4)),
                                                                       .init(name: "c", rows: [])], logLoss: false)
    for (_, chart) in combined {
      let xml = try #require(parseXML(chart.svg()))
      #expect(xml.counts["path"] == 6)  // train, validation and test of the two settings with epochs
      // A colour per setting, a dash per set: the legend names each once.
      #expect(chart.legend?.map(\.label) == ["a", "b", "c", "train", "validation", "test"])
      #expect(Set(chart.series.map(\.color)).count == 2)
    }
  }

  /// Okabe and Ito's eight colours: distinct, and neighbours far apart.
  @Test func paletteColoursAreDistinct() {
    func rgb(_ hex: String) -> [Double] {
      let v = Int(hex.dropFirst(), radix: 16)!
      return [Double(v >> 16 & 255), Double(v >> 8 & 255), Double(v & 255)]
    }
    let p = Chart.palette.map(rgb)
    #expect(Set(Chart.palette).count == 8)
    for i in 1..<p.count {
      let d = zip(p[i], p[i - 1]).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
      #expect(d > 80, "colours \(i - 1) and \(i) are close: \(d)")
    }
  }

  /// A diverged line (loss 1e35) is drawn and marked, but the axis fits the others.
  @Test func aDivergedLineDoesNotFlattenTheOthers() throws {
    var bad = rows(4)
    bad[3] = EpochRecord(epoch: 4, classification: true, train: .init(loss: 4e35, accuracy: 0.1), test: .init(loss: nil))
    let charts = ReportFiles.combinedCharts(title: "t", lines: [.init(name: "good", rows: rows(4)), .init(name: "bad", rows: bad, diverged: true)],
                                            logLoss: false)
    let loss = try #require(charts.first { $0.file == "loss.svg" }?.chart)
    let svg = loss.svg()
    let labels = svg.components(separatedBy: "text-anchor=\"end\">").dropFirst().map { $0.components(separatedBy: "<")[0] }
    let ticks = labels.compactMap(Double.init)
    #expect(ticks.max()! < 10, "the y axis follows the finished line: \(labels)")
    #expect(loss.series.contains { $0.marks.contains { $0.kind == .diverged } })
    #expect(loss.legend?.contains { $0.label == "bad (diverged)" } == true)
  }

  /// At most about eight tick labels on either axis, whatever the range (a loss from 1e-3 to 1e29 once had 38).
  @Test func atMostEightTicks() throws {
    for (lo, hi, log) in [(1e-3, 1e29, true), (0.0, 1000.0, false), (1e-7, 1e-1, true), (0.5, 0.5000001, false)] {
      let chart = Chart(title: "t", xLabel: "epoch", yLabel: "loss", series: [
        Chart.Series(label: "a", points: (1...300).map { (Double($0), lo + (hi - lo) * Double($0) / 300) }, color: "#000"),
      ], logY: log)
      let svg = chart.svg()
      let y = svg.components(separatedBy: "text-anchor=\"end\">").count - 1
      let x = svg.components(separatedBy: "text-anchor=\"middle\">").count - 1
      #expect(y <= 9 && x <= 10, "\(lo)...\(hi): \(y) y ticks, \(x) x labels")
    }
  }

  /// The validation curve: the metric against an axis's value, the best marked; with a second axis, the curve at
  /// the best setting's value of it, named in the title; a pruned setting marked apart, never part of the line.
  @Test func validationCurveDrawsTheMetricAgainstTheValue() throws {
    let rows: [JSON] = [("5e-2", "sgd", 0.3), ("5e-4", "sgd", 0.9), ("5e-6", "sgd", 0.85), ("5e-2", "adam", 0.2), ("5e-4", "adam", 0.8),
                        ("5e-6", "adam", 0.82)].map { wd, o, v in
      .object([("setting", JSON("wd=\(wd) optimizer=\(o)")), ("final_train_acc", JSON(v + 0.05)), ("best_val_acc", JSON(v)),
               ("final_test_acc", JSON(v - 0.01)), ("status", JSON("finished")), ("epochs", JSON(8))])
    }
    let one = ReportFiles.validationCurve(title: "t", axis: "weight_decay", logX: true, values: ["5e-2", "5e-4", "5e-6"], groups: ["", "", ""],
                                          rows: Array(rows.prefix(3)), best: "wd=5e-4 optimizer=sgd", score: "acc")
    #expect(one.logX && one.legend == nil && one.title == "t: accuracy against weight_decay")
    let best = try #require(one.series.first { $0.label == "validation (best epoch)" })
    #expect(best.points.map(\.x) == [5e-6, 5e-4, 5e-2], "sorted by the value")
    #expect(best.marks.map(\.x) == [5e-4])
    let groups = ["optimizer=sgd", "optimizer=sgd", "optimizer=sgd", "optimizer=adam", "optimizer=adam", "optimizer=adam"]
    let two = ReportFiles.validationCurve(title: "t", axis: "weight_decay", logX: true, values: ["5e-2", "5e-4", "5e-6", "5e-2", "5e-4", "5e-6"],
                                          groups: groups, rows: rows, best: "wd=5e-4 optimizer=adam", score: "acc")
    #expect(two.title == "t: accuracy against weight_decay at optimizer=adam")
    #expect(two.series.count == 3 && two.series.allSatisfy { $0.points.count == 3 })
    #expect(two.series.first { $0.label == "validation (best epoch)" }?.points.map(\.y) == [0.82, 0.8, 0.2])
    // --metric error: the error rate, 1 - accuracy, with its label.
    let error = ReportFiles.validationCurve(title: "t", axis: "weight_decay", logX: true, values: ["5e-2", "5e-4", "5e-6"], groups: ["", "", ""],
                                            rows: Array(rows.prefix(3)), best: "wd=5e-4 optimizer=sgd", score: "error")
    let errors = try #require(error.series.first { $0.label == "validation (best epoch)" }).points.map(\.y)
    #expect(zip(errors, [0.85, 0.9, 0.3]).allSatisfy { abs($0 - (1 - $1)) < 1e-12 } && error.yLabel == "error rate", "\(errors)")
    // No best setting: a colour per value of the other axis.
    let all = ReportFiles.validationCurve(title: "t", axis: "weight_decay", logX: true, values: ["5e-2", "5e-4", "5e-6", "5e-2", "5e-4", "5e-6"],
                                          groups: groups, rows: rows, best: nil, score: "acc")
    #expect(all.legend?.prefix(2).map(\.label) == ["optimizer=sgd", "optimizer=adam"] && all.series.count == 6)
    // Issue 31's false dip: a pruned setting's epoch-2 accuracy is marked apart, not drawn into the line.
    var pruned = Array(rows.prefix(3))
    pruned[1] = .object([("setting", JSON("wd=5e-4 optimizer=sgd")), ("best_val_acc", JSON(0.4)), ("status", JSON("pruned")), ("epochs", JSON(2))])
    let dip = ReportFiles.validationCurve(title: "t", axis: "weight_decay", logX: true, values: ["5e-2", "5e-4", "5e-6"], groups: ["", "", ""],
                                          rows: pruned, best: "wd=5e-6 optimizer=sgd", score: "acc")
    let line = try #require(dip.series.first { $0.label == "validation (best epoch)" })
    #expect(line.points.map(\.x) == [5e-6, 5e-2])
    #expect(line.marks.contains { $0.kind == .pruned && $0.x == 5e-4 && $0.y == 0.4 && $0.label.contains("pruned after 2 epochs") })
    #expect(dip.svg().contains("stopped before the last epoch (not on the line)"), "the legend says what the triangle is")
    // Axes drawn from distributions: no two settings share the other axes' values, so every setting is a point.
    let drawn = ReportFiles.validationCurve(title: "t", axis: "weight_decay", logX: true, values: ["5e-2", "5e-4", "5e-6"],
                                            groups: ["lr=0.1", "lr=0.2", "lr=0.3"], rows: Array(rows.prefix(3)), best: "wd=5e-4 optimizer=sgd", score: "acc")
    #expect(drawn.title == "t: accuracy against weight_decay (every setting)")
    #expect(drawn.series.allSatisfy { !$0.joined && $0.points.count == 3 && $0.band.isEmpty })
    #expect(!drawn.svg().contains("<path d=\"M"), "points, no lines")
    let names = ReportFiles.validationCurve(title: "t", axis: "optimizer", logX: false, values: ["sgd", "adam", "sgd"], groups: ["", "", ""],
                                            rows: Array(rows.prefix(3)), best: nil, score: "acc")
    #expect(names.categories == ["sgd", "adam"])
  }

  /// Every point and mark of every chart a sweep and a run draw is inside the plot area (issue 31: hidden=64 was
  /// drawn on the y axis, the largest values past the right edge), checked on the SVG as rendered.
  @Test func everyPointIsInsideItsAxes() throws {
    var charts: [Chart] = ReportFiles.charts(title: "run", rows: rows(12), logLoss: true).map(\.chart)
    charts += ReportFiles.combinedCharts(title: "sweep", lines: [ReportFiles.Line(name: "a", rows: rows(12), repeats: [rows(12)]),
                                                                 ReportFiles.Line(name: "b", rows: rows(5), diverged: true)], logLoss: true).map(\.chart)
    let settings: [JSON] = [64, 128, 256].flatMap { h in [0.01, 0.169].map { lr in
      JSON.object([("setting", JSON("hidden=\(h) lr=\(lr)")), ("final_train_acc", JSON(0.9)), ("best_val_acc", JSON(0.8 + lr)),
                   ("final_test_acc", JSON(0.79)), ("final_train_loss", JSON(0.3)), ("best_val_loss", JSON(0.4)),
                   ("final_test_loss", JSON(0.45)), ("status", JSON(h == 128 ? "pruned" : "finished")), ("epochs", JSON(8))])
    } }
    for (axis, log, values, groups) in [("hidden", false, settings.map { $0["setting"]!.string!.split(separator: " ")[0].dropFirst(7).description },
                                         settings.map { $0["setting"]!.string!.split(separator: " ")[1].description }),
                                        ("lr", true, settings.map { $0["setting"]!.string!.split(separator: " ")[1].dropFirst(3).description },
                                         settings.map { $0["setting"]!.string!.split(separator: " ")[0].description })] {
      for metric in ["acc", "loss"] {
        charts.append(ReportFiles.validationCurve(title: "s", axis: axis, logX: log, values: values, groups: groups, rows: settings,
                                                  best: "hidden=256 lr=0.169", score: metric))
      }
    }
    for chart in charts {
      let svg = chart.svg(), area = chart.plotArea
      let xml = try #require(parseXML(svg))
      let numbers = { (name: String) in xml.attributes.filter { $0.element == "circle" && $0.name == name }.map { Double($0.value)! } }
      let (cx, cy, r) = (numbers("cx"), numbers("cy"), xml.attributes.filter { $0.element == "circle" && $0.name == "r" }.map(\.value))
      // Data points (r 2.5) and rings (r 6) inside the plot; the legend's ring (past the plot's right edge, beside
      // its text) is the one circle outside.
      let inside = zip(zip(cx, cy), r).filter { p, _ in p.0 > area.left && p.0 < area.right && p.1 >= area.top && p.1 <= area.bottom }
      let legend = zip(cx, r).filter { $0.0 > area.right + 16 && $0.1 == "6" }
      #expect(inside.count + legend.count == cx.count, "\(chart.title): \(cx.count - inside.count - legend.count) points outside \(area)")
      #expect(cx.count > legend.count, "\(chart.title) draws points")
    }
  }

  /// One best epoch: the mean over seeds' best, the same in the summary's table, the charts' ring and its legend.
  @Test func oneBestEpochEverywhere() throws {
    func run(_ val: [Double]) -> [EpochRecord] {
      val.enumerated().map { e, v in
        EpochRecord(epoch: e + 1, classification: true, train: .init(loss: 0.5, accuracy: 0.9), validation: .init(loss: 1 - v, accuracy: v),
                    test: .init(loss: 1 - v, accuracy: v))
      }
    }
    // Seed 0 is best at epoch 2, seed 1 at epoch 4; their mean at epoch 3 (0.80 against 0.78 and 0.78).
    let a = run([0.5, 0.9, 0.85, 0.66, 0.6]), b = run([0.5, 0.66, 0.75, 0.9, 0.6])
    #expect(EpochRecord.bestEpoch(of: [a, b]) == 3 && EpochRecord.bestEpoch(of: [a]) == 2)
    let chart = try #require(ReportFiles.combinedCharts(title: "s", lines: [ReportFiles.Line(name: "x", rows: a, repeats: [b])], logLoss: false).first?.chart)
    #expect(chart.series.flatMap(\.marks).filter { $0.kind == .best }.map(\.x) == [3])
    #expect(chart.svg().contains("best epoch: highest validation accuracy (mean over seeds)"))
    // Both charts of one run ring the same epoch: the loss chart does not pick its own.
    let one = ReportFiles.charts(title: "r", rows: run([0.5, 0.9, 0.85, 0.66, 0.6]), logLoss: false).map(\.chart)
    #expect(one.map { $0.series.flatMap(\.marks).map(\.x) } == [[2], [2]])
  }

  /// report.html's epoch table has as many cells in every row as in its header (the first epoch alone has
  /// initial_loss), and the config is a table.
  @Test func runReportTableLinesUp() throws {
    var epochs = rows(3)
    epochs[0].initialLoss = 2.3
    let dir = try TemporaryDirectory()
    let folder = try OutputFolder(dir.path, command: "test", claim: .fresh)
    _ = try ReportFiles.writeRun(folder: folder, title: "r", config: .object([("lr", JSON(0.1)), ("model", JSON("mlp 256 relu"))]), rows: epochs,
                                 logLoss: false)
    let html = try String(contentsOfFile: Files.join(folder.path, "report.html"), encoding: .utf8)
    let table = try #require(html.components(separatedBy: "<table>").dropFirst().first?.components(separatedBy: "</table>").first)
    let lines = table.components(separatedBy: "<tr>").dropFirst()
    let header = lines.first!.components(separatedBy: "<th>").count - 1
    #expect(header >= 10 && table.contains("initial_loss"))
    for line in lines.dropFirst() { #expect(line.components(separatedBy: "<td>").count - 1 == header, "\(line)") }
    #expect(html.contains("<h2>Configuration</h2>") && html.contains("<th>model</th><td class=\"name\">mlp 256 relu</td>"))
  }

  /// --log-every: every N-th step a line of steps.jsonl on rank 0 (its loss the step's, the same on every rank; its
  /// gradient norm measured on every rank alike under shared memory's sharded step), and a resume keeps the lines
  /// of the steps its checkpoint took.
  @Test func stepLogWritesEveryNthStep() throws {
    let dir = try TemporaryDirectory()
    let data = Fixtures.classification()
    let c = Fixtures.smallMLP(batchSize: 10, epochs: 2)
    let results = try InProcessGroup.run(size: 2) { comm -> (losses: [Double], steps: Int) in
      let t = try Trainer<Float>(config: c, data: data, communicator: comm)
      t.gradientNormEvery = 3
      var losses: [Double] = []
      final class Losses: RunObserver {
        var seen: [Double] = []
        func stepEnded(_ run: Run) throws { seen.append(run.trainer.lastStepLoss ?? .nan) }
      }
      let mine = Losses()
      var observers: [any RunObserver] = [mine]
      if comm.isRoot { observers.append(StepLog(folder: try OutputFolder(dir.path, command: "test", claim: .fresh), board: nil, every: 3)) }
      _ = try Run(trainer: t).execute(observers: observers)
      losses = mine.seen
      return (losses, t.step)
    }
    #expect(results[0].losses == results[1].losses)
    let lines = try String(contentsOfFile: Files.join(dir.path, StepLog.fileName), encoding: .utf8).split(separator: "\n").map { try JSON.parse(String($0)) }
    let steps = results[0].steps
    #expect(lines.map { $0["step"]?.int } == Array(stride(from: 3, through: steps, by: 3)))
    for l in lines {
      let step = l["step"]!.int!
      #expect(l["loss"]?.double == results[0].losses[step - 1], "step \(step): the step's own loss")
      #expect((l["grad_norm"]?.double ?? 0) > 0 && l["lr"]?.double == c.optimizer.learningRate && (l["samples_per_sec"]?.double ?? 0) > 0)
      #expect(l["epoch"]?.int == (step - 1) / (steps / 2) + 1)
    }
    // Resumed at step 4: the lines up to it are kept, later ones dropped, the new ones appended.
    let folder = try OutputFolder(dir.path, command: "test", claim: .replace)
    let again = StepLog(folder: folder, board: nil, every: 3, keepSteps: 4)
    let t = try Trainer<Float>(config: c, data: data, communicator: LocalCommunicator())
    t.gradientNormEvery = 3
    _ = try Run(trainer: t).execute(observers: [again])
    let after = try String(contentsOfFile: Files.join(dir.path, StepLog.fileName), encoding: .utf8).split(separator: "\n").map { try JSON.parse(String($0)) }
    #expect(after.map { $0["step"]?.int } == [3] + Array(stride(from: 3, through: steps, by: 3)))
  }

  @Test func hugeNumbersPrintInExponentForm() {
    #expect(NumberText.fixed(1.234e29) == "1.2340e+29")
    #expect(NumberText.fixed(-2_000_000) == "-2.0000e+06")
    #expect(NumberText.fixed(0.5) == "0.5000")
  }

  /// PNGs come from librsvg's rsvg-convert (Debian's librsvg2-bin), never from dpt: a real PNG when it is there.
  @Test func pngIsDrawnByRsvgConvert() throws {
    let chart = ReportFiles.charts(title: "t", rows: rows(3), logLoss: false)[0].chart
    guard PNG.converter != nil else {
      #expect(PNG.render(chart.svg()) == nil)
      return
    }
    let png = try #require(PNG.render(chart.svg()))
    #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
  }

  @Test func logScaleLeavesOutNonPositiveValuesAndGaps() throws {
    let chart = Chart(title: "t", xLabel: "epoch", yLabel: "loss", series: [
      Chart.Series(label: "a", points: [(1, 1), (2, 0), (3, .nan), (4, 0.01), (5, 0.1)], color: "#000"),
    ], logY: true)
    let svg = chart.svg()
    #expect(parseXML(svg) != nil)
    let d = svg.components(separatedBy: "<path d=\"")[1].components(separatedBy: "\"")[0]
    #expect(d.filter { $0 == "M" }.count == 2, "a gap starts a new segment: \(d)")
    #expect(svg.contains("(log scale)"))
  }

  /// A log axis's ticks fall on 1, 2 and 5 x 10^k, even when the data span less than one such step (0.31 to 0.45
  /// once gave 0.631, 0.5012, ...).
  @Test func logTicksAreOneTwoFive() throws {
    for (lo, hi) in [(0.31, 0.45), (0.02, 3.0), (1e-4, 0.9), (7.0, 7.5)] {
      let chart = Chart(title: "t", xLabel: "epoch", yLabel: "loss", series: [
        Chart.Series(label: "a", points: [(1, hi), (2, (lo + hi) / 2), (3, lo)], color: "#000"),
      ], logY: true)
      let labels = chart.svg().components(separatedBy: "text-anchor=\"end\">").dropFirst().map { $0.components(separatedBy: "<")[0] }
      #expect(labels.count >= 2, "\(lo)...\(hi): \(labels)")
      for label in labels {
        let v = try #require(Double(label), "\(label)")
        let mantissa = v / pow(10, floor(log10(v)))
        #expect([1, 2, 5].contains { abs(mantissa - $0) < 1e-9 }, "\(lo)...\(hi): tick \(label)")
      }
    }
  }

  @Test func reportLinksOnlyFilesThatExist() throws {
    let dir = TemporaryDirectory("dpt-report")
    let summary = JSON.object([
      ("title", JSON("sweep")), ("best", JSON("wd=0.1")),
      ("settings", .array([
        .object([("setting", JSON("wd=0.1")), ("folder", JSON("01_wd-0.1")), ("status", JSON("finished")), ("epochs", JSON(3)),
                 ("best_val_acc", JSON(0.9)), ("seconds", JSON(1.5))]),
        .object([("setting", JSON("wd=1")), ("folder", JSON("02_wd-1")), ("status", JSON("diverged")), ("epochs", JSON(0)),
                 ("seconds", JSON(0.1))]),
      ])),
    ])
    let folder = try OutputFolder(dir.path, command: "test", claim: .fresh)
    try folder.subfolder("01_wd-0.1").write("metrics.csv", "epoch\n1\n")
    try folder.write("summary.json", summary.serialized())
    let written = try ReportFiles.writeSweep(folder: folder, summary: summary,
                                           lines: [(.init(name: "wd=0.1", rows: rows(3)), "01_wd-0.1"), (.init(name: "wd=1", rows: []), "02_wd-1")],
                                           logLoss: true)
    #expect(written.contains("report.html") && written.contains("accuracy.svg") && written.contains("01_wd-0.1/loss.svg"))
    let html = try String(contentsOfFile: dir.file("report.html"), encoding: .utf8)
    let references = html.components(separatedBy: "href=\"").dropFirst().map { $0.components(separatedBy: "\"")[0] }
      + html.components(separatedBy: "src=\"").dropFirst().map { $0.components(separatedBy: "\"")[0] }
    #expect(references.count >= 2)  // the setting's metrics.csv and summary.json
    // The charts are inlined: the page carries them when copied alone (both combined charts, the finished setting's two).
    #expect(html.components(separatedBy: "<svg ").count - 1 == 4)
    for r in references {
      #expect(FileManager.default.fileExists(atPath: dir.file(r)), "report.html links \(r), which does not exist")
    }
    #expect(!html.contains("02_wd-1/"), "the diverged setting has no files to link")
    #expect(!html.contains("<script"))
  }

  @Test func tensorBoardRecordsAreFramedAndChecksummed() throws {
    let dir = TemporaryDirectory("dpt-tb")
    let writer = TensorBoardWriter(folder: try OutputFolder(dir.path, command: "test", claim: .fresh))
    try writer.scalar("loss/train", 0.5, step: 3, wallTime: 1000)
    let bytes = [UInt8](FileManager.default.contents(atPath: writer.path)!)
    var records: [[UInt8]] = []
    var at = 0
    while at < bytes.count {
      let length = (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) }
      let lengthCRC = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + 8 + $1]) << (8 * $1) }
      #expect(lengthCRC == CRC32C.masked(bytes[at..<at + 8]))
      let data = Array(bytes[at + 12..<at + 12 + length])
      let dataCRC = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + 12 + length + $1]) << (8 * $1) }
      #expect(dataCRC == CRC32C.masked(data))
      records.append(data)
      at += 16 + length
    }
    #expect(at == bytes.count && records.count == 2)
    #expect(String(decoding: records[0].suffix(13), as: UTF8.self) == "brain.Event:2")
    // Event { wall_time = 1000 (0x09 + double), step = 3 (0x10 0x03), summary (0x2a len Summary) }
    let wallTime: [UInt8] = [0x09] + withUnsafeBytes(of: Double(1000).bitPattern.littleEndian) { Array($0) }
    #expect(Array(records[1].prefix(9)) == wallTime)
    #expect(Array(records[1][9..<11]) == [0x10, 0x03])
    #expect(records[1][11] == 0x2A)
    #expect(String(decoding: records[1], as: UTF8.self).contains("loss/train"))
  }
}

/// The files of --log-dir, as RunLog writes them.
@Suite struct RunLogTests {
  @Test func runLogFiles() throws {
    let dir = TemporaryDirectory()
    let t = try Trainer<Float>(config: Fixtures.smallMLP(), data: Fixtures.classification(), communicator: LocalCommunicator())
    let log = try RunLog(folder: try OutputFolder(dir.file("run"), command: "test", claim: .fresh), config: t.config.json(data: nil, worldSize: 1))
    for _ in 0..<2 { try log.append(try t.runEpoch().record) }
    let lines = try String(contentsOfFile: dir.file("run/metrics.jsonl"), encoding: .utf8).split(separator: "\n")
    #expect(lines.count == 2)
    let first = try JSON.parse(String(lines[0]))
    for key in ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "samples_per_sec"] {
      #expect(first[key]?.double != nil, "\(key)")
    }
    let csv = try String(contentsOfFile: dir.file("run/metrics.csv"), encoding: .utf8).split(separator: "\n")
    #expect(csv.count == 3 && csv[0].hasPrefix("epoch,train_loss,train_acc,test_loss,test_acc,seconds,samples_per_sec"))
    let cfg = try JSON.parse(try String(contentsOfFile: dir.file("run/config.json"), encoding: .utf8))
    #expect(cfg["model"]?.string == "mlp" && cfg["batch_size"]?.double == 16 && cfg["world_size"]?.double == 1)
    log.folder.release()
    #expect(TemporaryDirectory.list(dir.file("run")) == [".dpt-run.json", "config.json", "metrics.csv", "metrics.jsonl"])
  }

  /// A row read back (a resume, `dpt plot`) is the row written, classification or regression, with or without a
  /// validation set.
  @Test(arguments: [false, true])
  func epochRecordsReadBackAsWritten(regression: Bool) throws {
    let data = regression ? Fixtures.regression() : Fixtures.classification()
    var config = regression ? TrainingConfig.defaults(for: .corn) : Fixtures.smallMLP()
    config.epochs = 1
    let t = try Trainer<Float>(config: config, data: try data.holdingOutValidation(fraction: 0.2, seed: 1),
                               communicator: LocalCommunicator())
    var record = try t.runEpoch().record
    record.initialLoss = 0.5
    let line = record.json.serialized()
    #expect(EpochRecord(json: try JSON.parse(line)) == record)
    #expect(EpochRecord(json: try JSON.parse(line))?.json.serialized() == line)
    #expect(record.classification == !regression && record.validation != nil)
  }
}
