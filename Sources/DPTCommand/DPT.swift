import ArgumentParser
import DPT
import Foundation
import TensorCore
import _Support

@main
struct DPT: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "dpt",
    abstract: "Data-parallel training on OpenMPI and OpenBLAS.",
    discussion: """
      Run alone, or under mpirun for data-parallel training: every rank holds a full replica, computes its slice of
      each global batch, and the gradients are all-reduced so every replica takes the same step.

        dpt data fetch
        mpirun -np 2 dpt train --dataset mnist --epochs 5
      """.reflowed,
    version: BuildInfo.text,
    subcommands: [TrainCommand.self, EvalCommand.self, PredictCommand.self, SweepCommand.self, LstsqCommand.self, ScalingCommand.self, PlotCommand.self, ExportCommand.self, GenerateCommand.self, TraceCommand.self, DataCommand.self, LaunchCommand.self, DoctorCommand.self])

  /// Parses and runs the command. Under mpirun every rank parses the same arguments, so a usage error is printed by
  /// rank 0 only; every rank exits with the same code.
  /// Prints the kernel and exits 0 when the BLAS self-check passes with it (for tests and `dpt doctor`).
  static let selfCheckArgument = "--blas-self-check"

  static func main() {
    if CommandLine.arguments.count == 2 && CommandLine.arguments[1] == selfCheckArgument {
      let passed = BLASKernel.selfCheck()
      print(BLASKernel.current)
      Foundation.exit(passed ? 0 : 1)
    }
    World.prepare()
    // Paths are bytes: one that is not UTF-8 would become other characters in Swift's strings, so that an existing
    // file is "not found" and an output goes to another folder. Refused, naming the argument.
    for i in 1..<Int(CommandLine.argc) {
      guard let raw = CommandLine.unsafeArgv[i], String(validatingCString: raw) == nil else { continue }
      let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self), count: strlen(raw))
      let shown = String(decoding: bytes, as: UTF8.self)
      if World.environmentRank == 0 {
        FileHandle.standardError.write(Data("Error: argument \(i) ('\(shown)') is not valid UTF-8: dpt takes paths and values as UTF-8 text; rename the file or folder\n".utf8))
      }
      Foundation.exit(64)
    }
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch {
      if World.environmentRank != 0 { Foundation.exit(exitCode(for: error).rawValue) }
      // A library error gets its user-facing text (with the flag to change); ArgumentParser's own pass through.
      let shown = ErrorMessages.message(for: error).map { CommandError($0) } ?? error
      // --json: a script reading stdout gets the error as JSON too (the text still goes to stderr).
      if CommandLine.arguments.dropFirst().contains("--json") && exitCode(for: shown) != .success {
        let text = message(for: shown).trimmingCharacters(in: .whitespacesAndNewlines)
        FileHandle.standardOutput.write(Data((JSON.object([("error", JSON(text))]).serialized() + "\n").utf8))
      }
      exit(withError: shown)
    }
  }
}
