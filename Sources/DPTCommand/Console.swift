import Collectives
import _Support
import Foundation
import TensorCore

/// Text output of rank 0: the table on stdout (stderr with --json), and on a terminal a progress bar with the epoch's
/// remaining time, redrawn in place on stderr (none when stderr is a file or a pipe).
struct Console {
  let isRoot: Bool
  let jsonOutput: Bool
  let progressEnabled: Bool
  private var lastDraw = 0.0
  private var epochStart = (epoch: 0, step: 0, time: 0.0, samples: 0)

  init(isRoot: Bool, jsonOutput: Bool) {
    self.isRoot = isRoot
    self.jsonOutput = jsonOutput
    self.progressEnabled = isRoot && Console.stderrIsTerminal
  }

  /// Whether what this process writes to stderr reaches a terminal. Under mpirun a rank's stderr is always a pipe to
  /// the runtime, which copies it to mpirun's own stderr: there the answer is whether mpirun's stderr is a terminal
  /// (looked up through /proc along the parent processes; a rank on another host, under orted, gets no bar).
  static var stderrIsTerminal: Bool {
    if isatty(STDERR_FILENO) == 1 { return true }
    if ProcessInfo.processInfo.environment[LaunchedBy.terminal] == "1" { return true }
    guard MPICommunicator.isLaunchedByMPI else { return false }
    var pid = getppid()
    for _ in 0..<4 where pid > 1 {
      let name = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
      if ["mpirun", "mpiexec", "orterun", "prterun"].contains(name) {
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/2")) ?? ""
        return target.hasPrefix("/dev/pts/") || target.hasPrefix("/dev/tty")
      }
      // The parent's parent: the fourth field of /proc/PID/stat, after the parenthesised command name.
      guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")"),
            let parent = stat[stat.index(after: close)...].split(separator: " ").dropFirst().first.flatMap({ Int32($0) })
      else { return false }
      pid = parent
    }
    return false
  }

  /// A line of the human-readable report.
  func say(_ line: String) {
    guard isRoot else { return }
    let handle = jsonOutput ? FileHandle.standardError : FileHandle.standardOutput
    handle.write(Data((line + "\n").utf8))
  }

  /// The machine-readable result (stdout).
  func result(_ text: String) {
    guard isRoot else { return }
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
  }

  /// "epoch 2 [=========              ] 140/469  31% loss 0.4127 61,200 samples/s 12 s left", at most ten times a
  /// second: `loss` is the epoch's running mean, `samples` the samples trained in the epoch so far.
  mutating func progress(epoch: Int, step: Int, steps: Int, loss: Double? = nil, samples: Int? = nil) {
    guard progressEnabled else { return }
    let now = ProcessInfo.processInfo.systemUptime
    if epochStart.epoch != epoch { epochStart = (epoch, step, now, samples ?? 0) }  // timed from the first step it saw
    guard step == steps || now - lastDraw > 0.1 else { return }
    lastDraw = now
    let width = 30, filled = width * step / max(steps, 1)
    let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
    let done = step - epochStart.step, elapsed = now - epochStart.time
    let left = done > 0 ? elapsed / Double(done) * Double(steps - step) : nil
    let eta = left.map { $0 >= 60 ? String(format: " %d min %02d s left", Int($0) / 60, Int($0) % 60) : String(format: " %.0f s left", $0) } ?? ""
    let lossText = loss.map { " loss \(NumberText.fixed($0))" } ?? ""
    let rate = samples.flatMap { s in elapsed > 0.05 && s > epochStart.samples ? " \(Int((Double(s - epochStart.samples) / elapsed).rounded())) samples/s" : nil } ?? ""
    FileHandle.standardError.write(Data("\r\u{1B}[Kepoch \(epoch) [\(bar)] \(step)/\(steps) \(100 * step / max(steps, 1))%\(lossText)\(rate)\(eta)".utf8))
  }

  func clearProgress() {
    guard progressEnabled else { return }
    FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
  }
}
