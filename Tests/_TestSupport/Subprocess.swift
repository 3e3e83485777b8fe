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
    launch(arguments, environment: environment, directory: directory).wait(timeout: timeout)
  }

  /// A command started in the background.
  public final class Running: @unchecked Sendable {
    let process: Process
    let out = Collected(), err = Collected()
    let readers = DispatchGroup()
    let exited = DispatchSemaphore(value: 0)
    let start = Date()
    var failedToStart: String?

    init(_ process: Process) { self.process = process }

    /// The command's process group (setsid made the command its leader).
    public var processIdentifier: Int32 { process.processIdentifier }

    /// Waits for the command; kills its process group once `timeout` seconds have passed since it started.
    public func wait(timeout: Double) -> Result {
      if let failedToStart { return Result(status: -1, stdout: "", stderr: failedToStart, timedOut: false, seconds: 0) }
      var timedOut = false
      var reaped: Int32?
      var zombieSince: Date?
      let pid = process.processIdentifier
      while true {
        if exited.wait(timeout: .now() + 0.05) == .success {
          exited.signal()
          break
        }
        // Foundation's termination handler can miss an exit (seen in the full tier: the command a zombie, the test
        // waiting forever). A command that has been a zombie for 2 s is reaped here.
        if Self.isZombie(pid) {
          zombieSince = zombieSince ?? Date()
          if Date().timeIntervalSince(zombieSince!) > 2 {
            var status: Int32 = 0
            if waitpid(pid, &status, 0) == pid {
              let signal = status & 0x7F
              reaped = signal == 0 ? (status >> 8) & 0xFF : 128 + signal
              break
            }
          }
        }
        if !timedOut && Date().timeIntervalSince(start) > timeout {
          timedOut = true
          kill(-pid, SIGKILL)
        }
      }
      // A daemon the command started may hold its pipes open: its output so far, after 10 s.
      _ = readers.wait(timeout: .now() + 10)
      return Result(status: reaped ?? process.terminationStatus, stdout: String(decoding: out.data, as: UTF8.self),
                    stderr: String(decoding: err.data, as: UTF8.self), timedOut: timedOut,
                    seconds: Date().timeIntervalSince(start))
    }

    /// Whether `pid` has exited and waits to be reaped (state Z in /proc/PID/stat).
    static func isZombie(_ pid: Int32) -> Bool {
      guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")") else { return false }
      return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }
  }

  public static func launch(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil) -> Running {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
    // The test runner's threads block most signals, and a child inherits the mask: perl (essential on Debian)
    // clears it before it runs the command, so that signals sent in tests arrive as they do from a shell.
    process.arguments = ["--wait", "perl", "-MPOSIX", "-e", "sigprocmask(SIG_SETMASK, POSIX::SigSet->new); exec @ARGV or die \"$ARGV[0]: $!\\n\"", "--"]
      + arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    let running = Running(process)
    // Foundation reports the exit here. (Its waitUntilExit polls a run loop that, on a thread with no sources, returns
    // at once: a thread waiting that way spun a core for the command's whole life, which the command itself needed.)
    process.terminationHandler = { _ in running.exited.signal() }
    do { try process.run() } catch {
      running.failedToStart = "\(error)"
      return running
    }
    // Both pipes are drained while the command runs, so a chatty command cannot block on a full pipe. Each blocking
    // wait gets a thread of its own: on Dispatch's pool, the waits of one long-running command could take every
    // thread and leave a second command's waits unscheduled.
    for (pipe, sink) in [(out, running.out), (err, running.err)] {
      running.readers.enter()
      Thread { sink.data = pipe.fileHandleForReading.readDataToEndOfFile(); running.readers.leave() }.start()
    }
    return running
  }

  /// The processes whose command line contains `marker` and whose environment says they are MPI rank `rank`.
  /// The processes whose parent is `pid` (from /proc/PID/stat).
  public static func children(of pid: Int32) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { entry -> Int32? in
      guard let child = Int32(entry), let stat = FileManager.default.contents(atPath: "/proc/\(child)/stat") else { return nil }
      // pid (comm) state ppid ...: the fields after the last ')'.
      let text = String(decoding: stat, as: UTF8.self)
      guard let close = text.lastIndex(of: ")") else { return nil }
      let fields = text[text.index(after: close)...].split(separator: " ")
      return fields.count > 1 && Int32(fields[1]) == pid ? child : nil
    }
  }

  public static func rankProcess(marker: String, rank: Int) -> Int32? {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
    for entry in entries {
      guard let pid = Int32(entry),
            let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
            let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
      let args = String(decoding: cmdline, as: UTF8.self).split(separator: "\0")
      guard args.first.map({ $0.hasSuffix("/dpt") }) == true, args.contains(where: { $0 == marker }) else { continue }
      if String(decoding: environ, as: UTF8.self).split(separator: "\0").contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
    }
    return nil
  }
}

final class Collected: @unchecked Sendable {
  var data = Data()
}
