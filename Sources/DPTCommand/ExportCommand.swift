import ArgumentParser
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
      "1.bias", ...), so `model.load_state_dict(safetensors.torch.load_file(FILE))` loads them.

        dpt export --checkpoint runs/ckpt --output model.safetensors

      When the folder also holds best.dptc (the best epoch's weights, kept by --early-stop), best.safetensors is
      written beside --output from it.
      """)

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

  /// The best epoch's checkpoint beside the checkpoint (early stopping's best.dptc), when --checkpoint is a folder.
  var bestCheckpoint: String? {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: checkpoint, isDirectory: &isFolder), isFolder.boolValue else { return nil }
    let path = Files.join(checkpoint, "best.dptc")
    return FileManager.default.fileExists(atPath: path) ? path : nil
  }

  func run() throws {
    try OutputPaths.file(output, flag: "--output")
    if let pytorch { try OutputPaths.file(pytorch, flag: "--pytorch") }
    let best = bestCheckpoint
    let bestOutput = Files.join(Files.parent(output), "best.safetensors")
    if best != nil && Files.resolved(bestOutput) == Files.resolved(output) {
      throw ValidationError("--output \(output): best.safetensors is where the best epoch's weights (\(best!)) go; name the final weights otherwise")
    }
    try OutputPaths.checkInputs([OutputPaths.Input(flag: "--checkpoint", path: Checkpoint.path(checkpoint))] + (best.map { [OutputPaths.Input(flag: "--checkpoint", path: $0)] } ?? []),
                                outputs: [("--output", [output] + (best != nil ? [bestOutput] : []))] + (pytorch.map { [("--pytorch", [$0])] } ?? []))
    let c = try InputFiles.checkpoint(checkpoint, flag: "--checkpoint")
    let bytes = try SafeTensors.encode(c, pytorchLayout: layout == "pytorch")
    if let best {
      let b = try InputFiles.checkpoint(best, flag: "--checkpoint")
      try Files.writeAtomically(Data(try SafeTensors.encode(b, pytorchLayout: layout == "pytorch")), to: bestOutput)
      print("wrote \(bestOutput): the best epoch's weights (epoch \(b.epoch), from \(best))")
    }
    var code: String?
    if let pytorch {
      guard let list = c.config["model"]?.string, let items = try? LayerList.parse(list) else {
        throw CommandError("\(Checkpoint.path(checkpoint)): its config names no list of layers (written by an older dpt): train again to export PyTorch code")
      }
      code = try PyTorchCode.sequential(items, summaries: c.network.components(separatedBy: " | "), tensors: c.tensors + c.bufferTensors,
                                        weights: Files.lastComponent(output), source: Checkpoint.path(checkpoint))
    }
    try Files.writeAtomically(Data(bytes), to: output)
    if let pytorch, let code { try Files.writeAtomically(code, to: pytorch) }
    print("wrote \(output): \(c.tensors.count + c.bufferTensors.count) tensors of \(c.network), epoch \(c.epoch), \(bytes.count) bytes")
    if let pytorch { print("wrote \(pytorch): the torch.nn.Sequential whose load() reads \(Files.lastComponent(output))") }
  }
}
