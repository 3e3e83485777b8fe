import ArgumentParser
import Datasets
import FileFormats
import Layers
import Foundation
import Training
import _Support

struct ExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Write a checkpoint's trained weights for other tools.",
    discussion: """
      --format safetensors (numpy, PyTorch, JAX). With --layout pytorch (the default) dense weights are transposed
      to PyTorch's (outputs, inputs) and the names match a torch.nn.Sequential of the same layers ("1.weight",
      "1.bias", ...), so `model.load_state_dict(safetensors.torch.load_file(FILE))` loads them. The metadata holds the
      input transform the model was trained with (dpt_input_transform), which `dpt predict --weights` applies.

        dpt export --checkpoint runs/ckpt --output model.safetensors --pytorch model.py

      --onnx FILE writes the model as ONNX (opset 17) for serving stacks (onnxruntime, TensorRT, OpenVINO): the input
      transform it was trained with first, so the graph takes raw rows (input "input", float, N x the sample's shape;
      a text model's token ids as numbers), then every layer in evaluation mode (BatchNorm's running statistics, no
      dropout); "output" is the model's outputs and, for classification, "probabilities" their softmax, what dpt
      predict reports. The metadata holds the transform (dpt_input_transform) and the class names.

        dpt export --checkpoint runs/ckpt --onnx model.onnx

      A folder that holds best.dptc (the best epoch's weights, kept by --early-stop) exports those, and says so;
      --which last exports the last epoch's.
      """.reflowed)

  @Option(help: ArgumentHelp("A --checkpoint-dir folder, or a checkpoint file.", valueName: "dir"))
  var checkpoint: String

  @Option(help: ArgumentHelp("The safetensors file to write.", valueName: "file"))
  var output: String?

  @Option(help: ArgumentHelp("Write the model, its input transform first, as an ONNX file.", valueName: "file.onnx"))
  var onnx: String?

  @Option(help: "safetensors")
  var format: String = "safetensors"

  @Option(help: "pytorch | dpt (dense weights as dpt keeps them: inputs x outputs).")
  var layout: String = "pytorch"

  @Option(help: ArgumentHelp("Also write the Python code of the model as a torch.nn.Sequential that loads the exported weights (load_state_dict, strict).", valueName: "file.py"))
  var pytorch: String?

  func validate() throws {
    guard format == "safetensors" else { throw ValidationError("--format '\(format)': dpt writes safetensors") }
    guard ["pytorch", "dpt"].contains(layout) else { throw ValidationError("--layout '\(layout)': use pytorch or dpt") }
    guard output != nil || onnx != nil else {
      throw ValidationError("name what to write: --output FILE (safetensors) or --onnx FILE (or both)")
    }
    if pytorch != nil && output == nil {
      throw ValidationError("--pytorch writes code that loads the exported safetensors: give --output FILE too")
    }
    if pytorch != nil && layout != "pytorch" { throw ValidationError("--pytorch writes code for the pytorch layout: drop --layout dpt") }
  }

  @Option(help: ArgumentHelp("With a folder: best | last. Default: best.dptc, the best epoch's weights, when --early-stop kept one; else checkpoint.dptc.",
                              valueName: "checkpoint"))
  var which: Checkpoint.Choice?

  @Flag(help: "Replace --output or --pytorch when it holds something else than an earlier export of dpt.")
  var overwrite = false

  func run() throws {
    // What is written is checked before anything is read: a folder, a device that cannot take a file, a run's folder.
    let path: String, choice: Checkpoint.Choice
    do { (path, choice) = try Checkpoint.path(checkpoint, which: which) } catch let p as WeightsProblem { throw CommandError(ErrorMessages.text(p)) }
    let checkpointInput = [OutputPaths.Input(flag: "--checkpoint", path: path)]
    let outputs: [(flag: String, path: String, kind: OutputPaths.Kind)] =
      [("--output", output, .safetensors), ("--pytorch", pytorch, .pytorchCode), ("--onnx", onnx, .onnx)]
        .compactMap { f, p, k in p.map { (f, $0, k) } }
    for o in outputs { try OutputPaths.file(o.path, flag: o.flag, kind: nil, inputs: checkpointInput) }
    try OutputPaths.distinct(outputs.map { ($0.flag, $0.path) })
    // Then the inputs, which are never outputs: the checkpoint, and the data set it names (a CSV beside it, say).
    let c = try InputFiles.checkpoint(path, flag: "--checkpoint")
    let data = (c.config["run"].flatMap { try? RunDescription(run: $0) })?.data?.source.files ?? []
    let inputs = checkpointInput + data.map { OutputPaths.Input(flag: "the checkpoint's data set", path: $0) }
    for o in outputs { try OutputPaths.file(o.path, flag: o.flag, kind: o.kind, overwrite: overwrite, inputs: inputs) }
    let bytes = try output.map { _ in try SafeTensors.encode(c, pytorchLayout: layout == "pytorch") }
    var code: String?, model: [UInt8]?
    if pytorch != nil || onnx != nil {
      let (trained, endsInSoftmax) = try Self.model(c, path: path, for: pytorch != nil ? "--pytorch" : "--onnx")
      if pytorch != nil, let output {
        guard let module = PyTorchModule.sequential(trained.network.layers) else {
          let layer = trained.network.layers.first { $0.pytorch == nil }!
          throw CommandError("--pytorch: the layer '\(layer.summary)' has no PyTorch module to write: export the weights alone")
        }
        code = PyTorchCode.sequential(module, weights: Files.lastComponent(output), source: path, transform: trained.transform)
      }
      if onnx != nil {
        let names = trained.transform.classNames
        let encoded = ONNXModel.encode(trained.network, parameters: trained.parameters, buffers: trained.buffers,
                                       transform: trained.transform, endsInSoftmax: endsInSoftmax,
                                       graphName: c.network, producerVersion: BuildInfo.version + (BuildInfo.commit.map { " (commit \($0))" } ?? ""),
                                       metadata: [("dpt_input_transform", trained.transform.json.serialized()),
                                                  ("dpt_source", path)] + (names.isEmpty ? [] : [("dpt_class_names", names.joined(separator: "\n"))]))
        guard let onnxBytes = encoded.bytes else {
          throw CommandError("--onnx: the layer '\(encoded.failed!.summary)' has no ONNX form: export the weights with --output alone")
        }
        model = onnxBytes
      }
    }
    if let output, let bytes { try OutputPaths.write(Data(bytes), to: output, flag: "--output") }
    if let pytorch, let code { try OutputPaths.write(code, to: pytorch, flag: "--pytorch") }
    if let onnx, let model { try OutputPaths.write(Data(model), to: onnx, flag: "--onnx") }
    let which = choice == .best ? "the best epoch, kept by --early-stop; --which last for the last one" : "the last epoch written"
    let written = outputs.map(\.path)
    if let output, let bytes {
      OutputPaths.note("wrote \(output): \(c.tensors.count + c.bufferTensors.count) tensors of \(c.network), epoch \(c.epoch) (\(which)), from \(path), \(bytes.count) bytes",
                       outputs: written)
    }
    if let pytorch, let output {
      OutputPaths.note("wrote \(pytorch): the torch.nn.Sequential whose load() reads \(Files.lastComponent(output)) and takes raw rows", outputs: written)
    }
    if let onnx, let model {
      OutputPaths.note("wrote \(onnx): ONNX opset \(ONNXModel.opset) of \(c.network), epoch \(c.epoch) (\(which)), its input transform first (input raw rows; outputs output\(c.config["input_transform"]?["task"]?.string == "classification" ? " and probabilities" : "")), \(model.count) bytes",
                       outputs: written)
    }
  }

  /// The checkpoint's model, its weights and the input transform it was trained with (what --pytorch and --onnx
  /// write out).
  static func model(_ c: Checkpoint, path: String, for flag: String) throws -> (model: TrainedModel<Float>, endsInSoftmax: Bool) {
    let transform: InputTransform?
    do { transform = try InputTransform(json: c.config["input_transform"]) } catch {
      throw CommandError("\(path): its input transform does not decode (\(error)); it was not written by this dpt")
    }
    guard let transform else {
      throw CommandError("\(path) records no input transform (it was written by an earlier dpt): train again to use \(flag)")
    }
    let config = try WeightsOptions.description(of: c, path: path).training
    var model = try TrainedModel<Float>(config: config, transform: transform)
    let file = try SafeTensorsFile(decoding: try SafeTensors.encode(c, pytorchLayout: true), path: path)
    (model.parameters, model.buffers) = try SafeTensors.state(for: model.network, from: file, path: path)
    return (model, config.model.endsInSoftmax)
  }
}
