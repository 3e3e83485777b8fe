import Collectives
import Foundation
import TensorCore

/// Starting the world: MPI under mpirun, one local rank otherwise.
enum Launch {
  /// The world rank from mpirun's environment (0 without mpirun), known before MPI starts.
  static var environmentRank: Int {
    Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"] ?? "0") ?? 0
  }

  /// Runs `body` with the world communicator and ends the job the way its outcome needs:
  /// - success: MPI_Finalize;
  /// - an error raised on every rank (`RaisedOnEveryRank`): rank 0 prints it, every rank calls MPI_Finalize and
  ///   exits 1. Rank 0 prints *before* finalizing: once any rank has exited non-zero, mpirun kills the rest, and a
  ///   message written after MPI_Finalize was lost in 2 of 20 runs;
  /// - a run stopped by a signal (`Interrupted`, on every rank at the same step): rank 0 prints it, every rank
  ///   finalizes and exits 128 + the signal;
  /// - a collective that gave up (`JobStalled`): the lowest rank still answering prints which ranks went silent, and
  ///   MPI_Abort ends the job;
  /// - any other error, on any rank: its message and MPI_Abort, which ends every rank at once.
  static func withWorld(_ body: (any Communicator) throws -> Void) throws {
    guard MPICommunicator.isLaunchedByMPI else {
      do { try body(LocalCommunicator()) } catch let i as Interrupted {
        FileHandle.standardError.write(Data("\(i)\n".utf8))
        exit(i.status)
      }
      return
    }
    setBLASThreadsPerRank()
    let world: MPICommunicator
    do { world = try MPICommunicator.world() } catch { throw CommandError("MPI could not start: \(error)") }
    do {
      try body(world)
      try world.completeSends()
      MPICommunicator.finalize()
    } catch let i as Interrupted {
      if world.rank == 0 { FileHandle.standardError.write(Data("\(i)\n".utf8)) }
      MPICommunicator.finalize()
      exit(i.status)
    } catch let s as JobStalled {
      // Every rank that can still act reached this; the lowest that answered prints, then all end the job. When the
      // silent ranks are all on other hosts, the link may be what failed: MPI_Abort would then queue messages to
      // their daemons that never arrive, and mpirun would wait for them for many minutes. The runtime's own link
      // probes (scripts/cluster sets TCP keepalive) end such a job within seconds if left alone; only if it is still
      // running after 8 s does this rank abort it.
      let me = MPICommunicator.hostNames.indices.contains(world.rank) ? MPICommunicator.hostNames[world.rank] : ""
      let elsewhere = !s.stall.hosts.isEmpty && !s.stall.hosts.contains(me)
      if world.rank == s.stall.reporter {
        FileHandle.standardError.write(Data("\(s)\n".utf8))
        if elsewhere { usleep(8_000_000) }
        MPICommunicator.abort(message: "")
      }
      usleep(elsewhere ? 10_000_000 : 2_000_000)
      MPICommunicator.abort(message: "")
    } catch let error as RaisedOnEveryRank {
      if world.rank == 0 { FileHandle.standardError.write(Data("Error: \(error)\n".utf8)) }
      MPICommunicator.finalize()
      exit(1)
    } catch {
      MPICommunicator.abort(message: "Error: rank \(world.rank) of \(world.size): \(error)")
    }
  }

  /// Every training step frees and reallocates the same few large buffers (batches, activations, im2col columns).
  /// glibc serves blocks above its mmap threshold with fresh mappings and returns freed heap tops to the kernel, so
  /// each step page-faults its buffers in again (13% of a CNN epoch's time here). Raised thresholds keep freed
  /// memory in the process for the next step; peak memory is unchanged.
  static func keepFreedMemory() {
    // mallopt is declared in <malloc.h>, which Swift's Glibc module does not import: look it up.
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
    let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
    let M_TRIM_THRESHOLD: Int32 = -1, M_MMAP_THRESHOLD: Int32 = -3  // <malloc.h>
    _ = mallopt(M_MMAP_THRESHOLD, 512 << 20)
    _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
  }

  /// One BLAS thread per core: with OPENBLAS_NUM_THREADS unset, each of the node's ranks gets cores / ranks threads.
  static func setBLASThreadsPerRank() {
    let env = ProcessInfo.processInfo.environment
    guard env["OPENBLAS_NUM_THREADS"] == nil else { return }
    let local = Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "1") ?? 1
    let cores = sysconf(Int32(_SC_NPROCESSORS_ONLN))
    BLASThreads.set(max(1, cores / max(local, 1)))
  }
}

/// A command-line failure with its one-line message.
struct CommandError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// Text output of rank 0: the table on stdout (stderr with --json), and on a terminal a progress bar with the epoch's
/// remaining time, redrawn in place on stderr (none when stderr is a file or a pipe).
struct Console {
  let isRoot: Bool
  let jsonOutput: Bool
  let progressEnabled: Bool
  private var lastDraw = 0.0
  private var epochStart = (epoch: 0, step: 0, time: 0.0)

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

  /// "epoch 2 [=========              ] 140/469  31% 12 s left", at most ten times a second.
  mutating func progress(epoch: Int, step: Int, steps: Int) {
    guard progressEnabled else { return }
    let now = ProcessInfo.processInfo.systemUptime
    if epochStart.epoch != epoch { epochStart = (epoch, step, now) }  // timed from the first step it saw
    guard step == steps || now - lastDraw > 0.1 else { return }
    lastDraw = now
    let width = 30, filled = width * step / max(steps, 1)
    let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
    let done = step - epochStart.step
    let left = done > 0 ? (now - epochStart.time) / Double(done) * Double(steps - step) : nil
    let eta = left.map { $0 >= 60 ? String(format: " %d min %02d s left", Int($0) / 60, Int($0) % 60) : String(format: " %.0f s left", $0) } ?? ""
    FileHandle.standardError.write(Data("\r\u{1B}[Kepoch \(epoch) [\(bar)] \(step)/\(steps) \(100 * step / max(steps, 1))%\(eta)".utf8))
  }

  func clearProgress() {
    guard progressEnabled else { return }
    FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
  }
}
