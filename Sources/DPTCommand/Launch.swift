import Collectives
import DPT
import Foundation
import TensorCore
import _Support

/// Running a command in the world (`World`): how each way a job can end is shown and exits.
enum Launch {
  /// Arms the watchdog of `comm` (shared with the world and every communicator split from it) for a training loop:
  /// each collective waits at most `timeout` seconds (nil: as long as it needs), and gives up soon once a signal
  /// arrived. Returns the disarming, for a `defer`.
  static func armWatchdog(_ comm: any Communicator, timeout: Double?) -> () -> Void {
    guard let mpi = comm as? MPICommunicator else { return {} }
    mpi.watchdog.timeout = timeout
    mpi.watchdog.giveUp = { Signals.received }
    return { mpi.watchdog.timeout = nil }
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
    let world: MPICommunicator
    do { world = try World.start() as! MPICommunicator } catch { throw CommandError("MPI could not start: \(error)") }
    do {
      try body(world)
      try World.finish(world)
    } catch let i as Interrupted {
      if world.rank == 0 { FileHandle.standardError.write(Data("\(i)\n".utf8)) }
      MPICommunicator.finalize()
      // Under `dpt launch`, which tells the status itself, the ranks end cleanly: a non-zero rank would make mpirun
      // abort the job, sleeping its kill timeout twice before it exits.
      exit(ProcessInfo.processInfo.environment[LaunchedBy.variable] != nil ? 0 : i.status)
    } catch let s as JobStalled {
      // Every rank that can still act reached this; the lowest that answered prints, then all end the job. When the
      // silent ranks are all on other hosts, the link may be what failed: MPI_Abort would then queue messages to
      // their daemons that never arrive, and mpirun would wait for them for many minutes. The runtime's own link
      // probes (scripts/cluster sets TCP keepalive) end such a job within seconds if left alone; only if it is still
      // running after 8 s does this rank abort it.
      let me = MPICommunicator.hostNames.indices.contains(world.rank) ? MPICommunicator.hostNames[world.rank] : ""
      let elsewhere = !s.stall.hosts.isEmpty && !s.stall.hosts.contains(me)
      // A rank that was itself stopped (SIGSTOP) and woken as the job ends was the silent one: it blames nobody.
      if world.rank == s.stall.reporter && !Signals.continued {
        FileHandle.standardError.write(Data("\(s)\n".utf8))
        if elsewhere { usleep(8_000_000) }
        MPICommunicator.abort(message: "")
      }
      usleep(elsewhere ? 10_000_000 : 2_000_000)
      MPICommunicator.abort(message: "")
    } catch let error as RaisedOnEveryRank {
      if world.rank == 0 { FileHandle.standardError.write(Data("Error: \(ErrorMessages.line(error))\n".utf8)) }
      MPICommunicator.finalize()
      exit(1)
    } catch {
      // The same error on every rank (a run every rank was told has diverged) is printed once, by rank 0, and the
      // job ends with MPI_Finalize; an error some rank does not share ends the job through MPI_Abort.
      if MPICommunicator.failedTogether(within: 3) {
        if world.rank == 0 { FileHandle.standardError.write(Data("Error: \(ErrorMessages.line(error))\n".utf8)) }
        MPICommunicator.finalize()
        exit(1)
      }
      MPICommunicator.abort(message: "Error: rank \(world.rank) of \(world.size): \(ErrorMessages.line(error))")
    }
  }
}

/// The environment variable `dpt launch` sets for its ranks (`-x`), by which they know a launcher reports the job's
/// status.
enum LaunchedBy {
  static let variable = "DPT_LAUNCHED_BY"
  /// Set by `dpt launch` when its own stderr is a terminal: rank 0's progress bar then reaches it through the pipe
  /// the launch reads mpirun's stderr from.
  static let terminal = "DPT_LAUNCH_TERMINAL"
}
