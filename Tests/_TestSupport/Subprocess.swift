import Foundation

/// Runs a command and collects its output; a command that outlives its time limit is killed (with its process
/// group, so mpirun's ranks die too) and reported as timed out, never waited on forever.
public enum Subprocess {
  public struct Result {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var timedOut: Bool
    public var seconds: Double
  }

  public static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 120,
                         directory: String? = nil) -> Result {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
    process.arguments = ["--wait"] + arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    let start = Date()
    do { try process.run() } catch {
      return Result(status: -1, stdout: "", stderr: "\(error)", timedOut: false, seconds: 0)
    }
    // Both pipes are drained while the command runs, so a chatty command cannot block on a full pipe.
    let outData = Collected(), errData = Collected()
    let readers = DispatchGroup()
    for (pipe, sink) in [(out, outData), (err, errData)] {
      readers.enter()
      DispatchQueue.global().async { sink.data = pipe.fileHandleForReading.readDataToEndOfFile(); readers.leave() }
    }
    let exited = DispatchSemaphore(value: 0)
    DispatchQueue.global().async { process.waitUntilExit(); exited.signal() }
    var timedOut = false
    if exited.wait(timeout: .now() + timeout) == .timedOut {
      timedOut = true
      kill(-process.processIdentifier, SIGKILL)  // setsid made the command a process-group leader
      exited.wait()
    }
    readers.wait()
    return Result(status: process.terminationStatus, stdout: String(decoding: outData.data, as: UTF8.self),
                  stderr: String(decoding: errData.data, as: UTF8.self), timedOut: timedOut,
                  seconds: Date().timeIntervalSince(start))
  }
}

private final class Collected: @unchecked Sendable {
  var data = Data()
}
