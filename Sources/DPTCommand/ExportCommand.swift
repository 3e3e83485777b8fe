import ArgumentParser
import FileFormats
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
      """)

  @Option(help: ArgumentHelp("A --checkpoint-dir folder, or a checkpoint file.", valueName: "dir"))
  var checkpoint: String

  @Option(help: ArgumentHelp("The file to write.", valueName: "file"))
  var output: String

  @Option(help: "safetensors")
  var format: String = "safetensors"

  @Option(help: "pytorch | dpt (dense weights as dpt keeps them: inputs x outputs).")
  var layout: String = "pytorch"

  func validate() throws {
    guard format == "safetensors" else { throw ValidationError("--format '\(format)': dpt writes safetensors") }
    guard ["pytorch", "dpt"].contains(layout) else { throw ValidationError("--layout '\(layout)': use pytorch or dpt") }
  }

  func run() throws {
    try OutputPaths.file(output, flag: "--output")
    try OutputPaths.checkInputs([OutputPaths.Input(flag: "--checkpoint", path: Checkpoint.path(checkpoint))],
                                outputs: [("--output", [output])])
    let c = try InputFiles.checkpoint(checkpoint, flag: "--checkpoint")
    let bytes = try SafeTensors.encode(c, pytorchLayout: layout == "pytorch")
    try Files.writeAtomically(Data(bytes), to: output)
    print("wrote \(output): \(c.tensors.count) tensors of \(c.network), epoch \(c.epoch), \(bytes.count) bytes")
  }
}
