import Foundation

/// Bounds every wait of an MPI collective, so that a rank that stops answering without dying (stopped, swapping, cut
/// off by a lost link) ends the job instead of hanging it.
///
/// While it is armed, MPI collectives are started non-blocking and polled. A wait that lasts `timeout` seconds, or
/// that still lasts half a second after `giveUp` turned true (the job is being ended by a signal, e.g. mpirun's
/// SIGTERM after a rank died), stops waiting and asks every rank, point to point on a communicator of its own,
/// whether it is there: each waiting rank sends a heartbeat to all others and answers the first heartbeat it
/// receives. The ranks not heard from within `grace` seconds are the ones that stopped answering; the wait throws
/// `CollectiveStall` naming them and their hosts.
///
/// Compared with NCCL's watchdog (a thread that aborts the communicator after a timeout, naming the collective and
/// its sequence number, not the rank that is missing) and Horovod's stall inspector (the coordinator names the ranks
/// that have not submitted a tensor, and warns or shuts down after a time), this names the silent ranks like Horovod
/// does, from whichever rank is still able to act, without a coordinator.
public final class Watchdog: @unchecked Sendable {
  /// Seconds a collective may wait before the ranks that did not arrive are declared stalled; nil: not armed (waits
  /// block as long as they need, as outside the training loop).
  public var timeout: Double?
  /// Seconds to collect heartbeats once a wait gave up (at most a quarter of the timeout).
  public var grace: Double
  /// True when the job is being ended (a signal arrived): a wait that does not complete soon gives up.
  public var giveUp: () -> Bool

  /// An unarmed watchdog. The world communicator holds one, shared by every communicator split from it; a program
  /// arms it (`timeout`) around its training loop and tells it how to see that the job is ending (`giveUp`).
  public init(timeout: Double? = nil, grace: Double = 3, giveUp: @escaping () -> Bool = { false }) {
    self.timeout = timeout
    self.grace = grace
    self.giveUp = giveUp
  }

  /// When this process last showed it was running (the polls of a wait): [monotonic seconds, process CPU seconds].
  /// A SIGCONT long after it, with little CPU time used meanwhile, means the process had been stopped (SIGSTOP):
  /// then it was the silent one, and blames nobody (read by a signal handler: plain memory, no allocation; unchecked
  /// on purpose, since a handler may take no lock).
  nonisolated(unsafe) public static let activity: UnsafeMutablePointer<Double> = {
    let p = UnsafeMutablePointer<Double>.allocate(capacity: 2)
    p.initialize(repeating: 0, count: 2)
    return p
  }()

  public static func noteActivity() {
    activity[0] = clock(CLOCK_MONOTONIC)
    activity[1] = clock(CLOCK_PROCESS_CPUTIME_ID)
  }

  /// A clock in seconds (async-signal-safe).
  public static func clock(_ id: clockid_t) -> Double {
    var t = timespec()
    clock_gettime(id, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
  }

  /// Whether a process continued now (SIGCONT) had been stopped since its last activity: more than a second passed,
  /// of which it spent less than half on the CPU.
  public static func wasStopped() -> Bool {
    let wall = clock(CLOCK_MONOTONIC) - activity[0], cpu = clock(CLOCK_PROCESS_CPUTIME_ID) - activity[1]
    return activity[0] > 0 && wall > 1 && cpu < wall / 2
  }
}

/// A wait that gave up: the ranks that did not answer within the grace period, in rank order.
public struct CollectiveStall: Error, CustomStringConvertible {
  public enum Reason: Sendable { case timeout, interrupted }
  /// The world ranks not heard from, and their hosts (the same order).
  public var silentRanks: [Int]
  public var hosts: [String]
  /// How long this rank had waited, in seconds.
  public var waited: Double
  public var reason: Reason
  /// The lowest rank that answered (the one that reports, so that the message is printed once).
  public var reporter: Int

  public init(silentRanks: [Int], hosts: [String], waited: Double, reason: Reason, reporter: Int) {
    self.silentRanks = silentRanks
    self.hosts = hosts
    self.waited = waited
    self.reason = reason
    self.reporter = reporter
  }

  public var description: String {
    let who = zip(silentRanks, hosts).map { "rank \($0) (host \($1))" }
    let names = who.isEmpty ? "no rank is silent, yet a collective did not complete"
      : who.count == 1 ? who[0] : who.dropLast().joined(separator: ", ") + " and " + who.last!
    return "\(names) stopped answering: a collective waited \(String(format: "%.0f", waited)) s"
  }
}
