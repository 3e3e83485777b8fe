import Collectives
import Foundation

/// SIGINT and SIGTERM (Ctrl-C, a scheduler's preemption, mpirun passing either on as SIGTERM): the first asks the
/// run to stop at the next step boundary, where every rank agrees (`Trainer.stopRequested`); a second SIGINT ends
/// this process at once. SIGUSR1 and SIGUSR2 are `dpt launch`'s SIGTERM and SIGINT: mpirun forwards those two to
/// every rank at once, where its own SIGTERM path would wait its kill timeout before any rank heard of it.
enum Signals {
  /// [signals received, the first one's number, SIGCONTs received], written by the handlers (C functions: no
  /// captures, no allocation). Unchecked on purpose: a signal handler may take no lock, so the cells are plain
  /// memory, each written whole.
  nonisolated(unsafe) static let state: UnsafeMutablePointer<Int32> = {
    let p = UnsafeMutablePointer<Int32>.allocate(capacity: 3)
    p.initialize(repeating: 0, count: 3)
    return p
  }()

  static var received: Bool { state[0] > 0 }
  /// Whether this process was stopped (SIGSTOP) and continued since `install` (mpirun sends SIGCONT to every rank it
  /// ends, stopped or not: only one that had been stopped counts).
  static var continued: Bool { state[2] > 0 }
  /// The exit status of a run the signal stopped: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
  static var exitStatus: Int32 { 128 + state[1] }
  static var name: String { state[1] == SIGINT ? "SIGINT" : "SIGTERM" }

  static func install() {
    _ = state
    for s in [SIGINT, SIGTERM, SIGUSR1, SIGUSR2] {
      signal(s) { received in
        let sig = received == SIGUSR1 ? SIGTERM : received == SIGUSR2 ? SIGINT : received
        let p = Signals.state
        p[0] += 1
        if p[0] == 1 { p[1] = sig }
        if p[0] > 1 && sig == SIGINT { _exit(128 + SIGINT) }
      }
    }
    signal(SIGCONT) { _ in if Watchdog.wasStopped() { Signals.state[2] += 1 } }
    // A launcher may have started this process with the signals blocked: take them.
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGCONT)
    sigaddset(&set, SIGUSR1)
    sigaddset(&set, SIGUSR2)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
  }
}

/// A run stopped on every rank at a step boundary by a signal: rank 0 prints the message, every rank exits with
/// `status`.
struct Interrupted: Error, CustomStringConvertible {
  var status: Int32
  var description: String
}
