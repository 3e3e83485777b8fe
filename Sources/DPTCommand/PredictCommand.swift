import ArgumentParser
import Collectives
import Datasets
import FileFormats
import Foundation
import Layers
import Training
import _Support

struct PredictCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict",
    abstract: "Write the model's prediction for every row of a file, or of a data set's rows, to a CSV file.",
    discussion: """
      A file given with --dataset (csv:FILE, npz:FILE, npy:X.npy,Y.npy) is predicted whole, in its order, with the
      transform the model was trained with (the training rows' standardisation, saved with the weights): one row per input row, `line` (1 = the
      file's first data row), the label or targets when the file has them, then `predicted` and one probability per
      class (softmax of the outputs), or each target's prediction. The label column may be left out; a file with a
      header gives the training columns by name, in any order. Without --dataset, the checkpoint's own data set:
      --rows test | train | all (train then test, after the run's seeded split), numbered `row`.

        dpt predict --checkpoint runs/ckpt --dataset csv:new.csv --output predictions.csv
        dpt predict --weights model.safetensors --dataset csv:new.csv --output predictions.csv
        dpt predict --checkpoint runs/ckpt --dataset npz:new.npz --output predictions.csv   # x (or x_test), y when there
        dpt predict --checkpoint runs/ckpt --rows test --output predictions.csv
      """.reflowed)

  // Before the training options: their --output (a softmax layer after the model) is --output-layer here.
  @Option(help: ArgumentHelp("The CSV file to write.", valueName: "file"))
  var output: String

  @OptionGroup var source: WeightsOptions
  @OptionGroup var options: ModelRunOptions

  @Option(help: "A data set's rows: test | train | all (train then test, after the seeded split). A file given with --dataset is predicted whole.")
  var rows: String?

  @Flag(help: "Replace --output when it holds something else than an earlier prediction of dpt.")
  var overwrite = false

  func validate() throws {
    if let rows, !["test", "train", "all"].contains(rows) { throw ValidationError("--rows '\(rows)': use test, train or all") }
    if let s = try? DatasetSource(options.data.dataset), s.isFile, options.data.givenDataset != nil {
      if let rows, rows != "all" {
        throw ValidationError("--rows \(rows): a file given with --dataset is predicted whole, in its order (every row, no split): drop --rows")
      }
      if let f = options.data.testFraction, f != 0 {
        throw ValidationError("--test-fraction \(f): a file given with --dataset is predicted whole (no split): drop --test-fraction")
      }
    }
  }

  func run() throws {
    let run = try source.run(given: options)
    try Launch.withWorld { comm in
      try comm.agree(describing: ErrorMessages.line) {
        guard comm.isRoot else { return }
        let inputs = run.source.files.map { OutputPaths.Input(flag: "--dataset", path: $0) }
          + [OutputPaths.Input(flag: source.checkpoint != nil ? "--checkpoint" : "--weights", path: run.weightsPath)]
        try OutputPaths.file(output, flag: "--output", kind: .prediction, overwrite: overwrite, inputs: inputs)
      }
      if options.data.givenDataset != nil, run.source.isFile {
        // A file to predict: rank 0 alone reads it and writes the predictions (there is nothing to share out).
        try comm.agree(describing: ErrorMessages.line) {
          guard comm.isRoot else { return }
          try predictFile(run.source, run: run)
        }
        return
      }
      try predictSplit(run, comm)
    }
  }

  /// The header and one line of the output: `first` (line or row), the label or targets when known, the prediction.
  /// `names`: the classes' names when a CSV's label column held text (the label and the prediction are written as
  /// names); nil writes class indices.
  static func text(first: String, labels: [Double]?, outputs y: [Double], classification: Bool, endsInSoftmax: Bool,
                   names: [String]? = nil) -> String {
    if classification {
      // The outputs are logits unless the model ends in softmax; either way report probabilities.
      var p = y
      if !endsInSoftmax { Double.softmaxRows(y, &p, rows: 1, cols: y.count) }
      let predicted = p.indices.max { p[$0] < p[$1] } ?? 0
      let name = { (k: Int) in names.map { csvField($0[k]) } ?? "\(k)" }
      return ([first] + (labels.map { [name(Int($0[0]))] } ?? []) + [name(predicted)] + p.map { String(format: "%.6g", $0) })
        .joined(separator: ",")
    }
    return ([first] + (labels ?? []).map { "\($0)" } + y.map { "\($0)" }).joined(separator: ",")
  }

  /// A CSV cell holding `s`: quoted (its quotes doubled) when it holds a comma, a quote or a line break.
  static func csvField(_ s: String) -> String {
    s.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" } ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
  }

  /// The class names to write instead of indices: a CSV's text labels (nil for numbered classes and for a text
  /// model's characters, written as ids).
  static func names(_ t: InputTransform) -> [String]? {
    t.task == .classification && t.vocabulary == nil && t.classNames != (0..<t.classNames.count).map(String.init) ? t.classNames : nil
  }

  static func header(first: String, transform t: InputTransform, labels: Bool) -> String {
    if t.task == .classification {
      // A probability column a class: p0, p1, ..., or p_NAME for a CSV's named classes.
      let p = names(t).map { $0.map { csvField("p_" + $0) } } ?? t.classNames.indices.map { "p\($0)" }
      return ([first] + (labels ? ["label"] : []) + ["predicted"] + p).joined(separator: ",")
    }
    let w = t.targetNames.count
    return ([first] + (labels ? (0..<w).map { w == 1 ? "target" : "target\($0 + 1)" } : [])
      + (0..<w).map { w == 1 ? "prediction" : "prediction\($0 + 1)" }).joined(separator: ",")
  }

  /// Every row of the file (a CSV, or numpy's arrays), in its order, through the saved transform: `line` is the row's
  /// number.
  func predictFile(_ data: DatasetSource, run: WeightsOptions.Run) throws {
    guard let transform = run.transform else {
      throw CommandError("\(run.weightsPath) records no input transform (it was written by an earlier dpt, or not by dpt): train again, or export again, with this dpt to predict a file")
    }
    if transform.vocabulary != nil {
      throw CommandError("--dataset \(data): the model reads windows of a text: give --dataset text:PATH with its --context, or continue a text with dpt generate")
    }
    let shape = { (s: [Int]) in s.map(String.init).joined(separator: "x") }
    let x: [Double], labels: [Double]?, rows: Int, path: String
    var first = "line", firsts: [String]? = nil
    switch data {
    case .csv(let file, _, let header, _):
      guard transform.sampleShape.count == 1 else {
        throw CommandError("--dataset \(data): the model reads images of shape \(shape(transform.sampleShape)), not rows of a table")
      }
      let table = try NumericTable.read(file, header: header)
      (x, labels) = try transform.columns(of: table, path: file)
      (rows, path) = (table.rows, file)
    case .images(let dir, let h, let w):
      // A folder of class folders (their names the labels, which must be the model's classes), or of images alone.
      guard transform.sampleShape.count == 3 else {
        throw CommandError("--dataset \(data): the model reads rows of \(shape(transform.sampleShape)), not images")
      }
      let (C, H, W) = (transform.sampleShape[0], transform.sampleShape[1], transform.sampleShape[2])
      let classes = try ImageFiles.classes(dir)
      let files = try classes?.flatMap(\.files) ?? ImageFiles.files(in: dir).map { Files.join(dir, $0) }
      guard !files.isEmpty else { throw CommandError("\(dir): holds no PNG or JPEG file (nor class folders of them)") }
      let images = try ImageFiles.samples(files, size: h > 0 ? (h, w) : nil, channels: C)
      guard Array(images.shape[1...]) == [H, W] else {
        throw CommandError("\(dir): its images are \(images.shape[1])x\(images.shape[2]) pixels but the model reads \(H)x\(W): give --image-size \(H),\(W)")
      }
      labels = try classes.map { try ImageFiles.labels($0, names: transform.classNames, directory: dir).map(Double.init) }
      (x, rows, path) = (images.pixels.map(Double.init), files.count, dir)
      first = "file"
      firsts = files.map { Self.csvField(String($0.dropFirst(dir.count).drop { $0 == "/" })) }
    default:
      path = data.files.first!
      let a = try ArrayData.rowsToPredict(try ArrayData.arrays(data), path: path)
      guard a.sampleShape == transform.sampleShape else {
        throw CommandError("\(path): its samples are \(shape(a.sampleShape)) but the model reads \(shape(transform.sampleShape))")
      }
      if let w = a.labels.map({ _ in a.labelWidth }), w != (transform.task == .classification ? 1 : transform.targetNames.count) {
        throw CommandError("\(path): its labels have \(w) values a sample; the model predicts \(transform.task == .classification ? "one class" : "\(transform.targetNames.count) targets")")
      }
      (x, labels, rows) = (a.values, a.labels, a.values.count / max(transform.featureCount, 1))
    }
    var model = try TrainedModel<Float>(config: run.config, transform: transform)
    let bytes = try source.weightBytes(run)
    (model.parameters, model.buffers) = try SafeTensors.state(for: model.network, from: try SafeTensorsFile(decoding: bytes, path: run.weightsPath),
                                                             path: run.weightsPath)
    let outputs = model.outputs(raw: x)
    let w = labels.map { $0.count / max(rows, 1) } ?? 0
    var text = Self.header(first: first, transform: transform, labels: labels != nil) + "\n"
    for (i, y) in outputs.enumerated() {
      let l = labels.map { Array($0[i * w..<(i + 1) * w]) }
      text += Self.text(first: firsts?[i] ?? "\(i + 1)", labels: l, outputs: y, classification: transform.task == .classification,
                        endsInSoftmax: run.config.model.endsInSoftmax, names: Self.names(transform)) + "\n"
    }
    try OutputPaths.write(text, to: output, flag: "--output")
    OutputPaths.note(run.weightsNote, outputs: [output])
    OutputPaths.note("wrote \(output): \(counted(outputs.count, "prediction")) of \(path), one a row in the file's order", outputs: [output])
  }

  /// The rows of a data set as the run split it (test, train or both), numbered `row`.
  func predictSplit(_ run: WeightsOptions.Run, _ comm: any Communicator) throws {
    let trainer = try source.trainer(run, comm)
    guard comm.isRoot else { return }
    let which = rows ?? "test"
    let d = trainer.data
    let sets = which == "all" ? [d.train, d.test] : which == "train" ? [d.train] : [d.test]
    let classification = d.train.task == .classification
    // A sequence model (a character model) predicts at every position of a row: one line a position, `position`
    // 1 ... T after `row`.
    let positions = d.train.labelsPerSample
    let first = positions > 1 ? "row,position" : "row"
    var text = Self.header(first: first, transform: trainer.inputTransform, labels: true) + "\n"
    var row = 0, lines = 0
    for set in sets {
      for (i, y) in trainer.outputs(set, rows: 0..<set.count).enumerated() {
        row += 1
        if positions > 1 {
          let labels = set.labels(at: [i]), V = y.count / positions
          for t in 0..<positions {
            text += Self.text(first: "\(row),\(t + 1)", labels: [Double(labels[t])], outputs: Array(y[t * V..<(t + 1) * V]),
                              classification: true, endsInSoftmax: trainer.config.model.endsInSoftmax) + "\n"
          }
          lines += positions
          continue
        }
        let labels = classification ? [Double(set.labels[i])] : (0..<set.targetWidth).map { set.targets[i * set.targetWidth + $0] }
        text += Self.text(first: "\(row)", labels: labels, outputs: y, classification: classification,
                          endsInSoftmax: trainer.config.model.endsInSoftmax, names: Self.names(trainer.inputTransform)) + "\n"
        lines += 1
      }
    }
    try OutputPaths.write(text, to: output, flag: "--output")
    OutputPaths.note(run.weightsNote, outputs: [output])
    OutputPaths.note("wrote \(output): \(counted(lines, "prediction")) of \(d.name) (\(which) rows\(positions > 1 ? ", \(positions) positions each" : ""))", outputs: [output])
  }
}
