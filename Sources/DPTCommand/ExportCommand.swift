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

      A folder that holds best.dptc (the best epoch's weights, kept by --early-stop) exports those, and says so;
      --which last exports the last epoch's.
      """.reflowed)

  @Option(help: ArgumentHelp("A --checkpoint-dir folder, or a checkpoint file.", valueName: "dir"))
  var checkpoint: String

  @Option(help: ArgumentHelp("The file to write.", valueName: "file"))
  var output: String

  @Option(help: "safetensors")
  var format: String = "safetensors"

  @Option(help: "pytorch | dpt (dense weights as dpt keeps them: inputs x outputs).")
  var layout: String = "pytorch"

  @Option(help: ArgumentHelp("Also write the Python code of the model as a torch.nn.Sequential that loads the exported weights (load_state_dict, strict).", valueName: "file.py"))
  var pytorch: String?

  func validate() throws {
    guard format == "safetensors" else { throw ValidationError("--format '\(format)': dpt writes safetensors") }
    guard ["pytorch", "dpt"].contains(layout) else { throw ValidationError("--layout '\(layout)': use pytorch or dpt") }
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
    try OutputPaths.file(output, flag: "--output", kind: nil, inputs: checkpointInput)
    if let pytorch { try OutputPaths.file(pytorch, flag: "--pytorch", kind: nil, inputs: checkpointInput) }
    try OutputPaths.distinct([("--output", output)] + (pytorch.map { [("--pytorch", $0)] } ?? []))
    // Then the inputs, which are never outputs: the checkpoint, and the data set it names (a CSV beside it, say).
    let c = try InputFiles.checkpoint(path, flag: "--checkpoint")
    let data = (c.config["run"].flatMap { try? RunDescription(run: $0) })?.data?.source.files ?? []
    let inputs = checkpointInput + data.map { OutputPaths.Input(flag: "the checkpoint's data set", path: $0) }
    try OutputPaths.file(output, flag: "--output", kind: .safetensors, overwrite: overwrite, inputs: inputs)
    if let pytorch { try OutputPaths.file(pytorch, flag: "--pytorch", kind: .pytorchCode, overwrite: overwrite, inputs: inputs) }
    let bytes = try SafeTensors.encode(c, pytorchLayout: layout == "pytorch")
    var code: String?
    if pytorch != nil {
      let transform: InputTransform?
      do { transform = try InputTransform(json: c.config["input_transform"]) } catch {
        throw CommandError("\(path): its input transform does not decode (\(error)); it was not written by this dpt")
      }
      guard let transform else {
        throw CommandError("\(path) records no input transform (it was written by an earlier dpt): train again to export PyTorch code")
      }
      let model = try TrainedModel<Float>(config: try WeightsOptions.description(of: c, path: path).training, transform: transform)
      guard let module = PyTorchModule.sequential(model.network.layers) else {
        let layer = model.network.layers.first { $0.pytorch == nil }!
        throw CommandError("--pytorch: the layer '\(layer.summary)' has no PyTorch module to write: export the weights alone")
      }
      code = PyTorchCode.sequential(module, weights: Files.lastComponent(output), source: path, transform: transform)
    }
    try OutputPaths.write(Data(bytes), to: output, flag: "--output")
    if let pytorch, let code { try OutputPaths.write(code, to: pytorch, flag: "--pytorch") }
    let which = choice == .best ? "the best epoch, kept by --early-stop; --which last for the last one" : "the last epoch written"
    OutputPaths.note("wrote \(output): \(c.tensors.count + c.bufferTensors.count) tensors of \(c.network), epoch \(c.epoch) (\(which)), from \(path), \(bytes.count) bytes",
                     outputs: [output, pytorch])
    if let pytorch {
      OutputPaths.note("wrote \(pytorch): the torch.nn.Sequential whose load() reads \(Files.lastComponent(output)) and takes raw rows", outputs: [output, pytorch])
    }
  }
}
