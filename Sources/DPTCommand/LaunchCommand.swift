import ArgumentParser
import Foundation
import _Support

/// `dpt launch`: mpirun with dpt's settings, and automatic restarts from the last checkpoint when a rank dies or
/// stalls (torchrun's --max-restarts, for MPI jobs).
struct LaunchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "launch",
    abstract: "Run dpt train or dpt sweep under mpirun, restarting from the last checkpoint when a rank dies or stalls.",
    discussion: """
      Runs mpirun with --bind-to core, one BLAS thread per rank, mpirun's as-root variables only when running as
      root, and the TCP interface restriction when --tcp-interface is given. When the job fails because a rank died
      (mpirun reports a process that exited on a signal) or stalled (dpt's watchdog names a rank that stopped
      answering), it is relaunched with --resume: dpt train from its --checkpoint-dir, dpt sweep from its --log-dir,
      up to --max-restarts times. Any other failure (a usage error, a diverged loss, a bad file) would only repeat
      and ends the launch at once. The launch exits with the job's status.

      SIGINT (Ctrl-C) and SIGTERM to the launch are passed to mpirun, which passes them to the ranks: they stop
      after the same step, write their checkpoint, and the launch ends with 130 or 143 and the command that
      resumes. mpirun dies with the launch (kill -9 of the launch ends the job too). Arguments after `--` go to
      mpirun; with --oversubscribe among them the ranks are not bound to cores.

        dpt launch -np 2 --max-restarts 3 train --dataset fashion-mnist --epochs 20 --checkpoint-dir runs/ck
        dpt launch -np 4 --hostfile hosts sweep --dataset mnist --weight-decay 1e-3,1e-4 --log-dir runs/wd
        dpt launch -np 4 train --dataset mnist --checkpoint-dir runs/ck -- --oversubscribe --mca btl self,vader
      """.reflowed)

  @Option(name: .customLong("np", withSingleDash: true), help: ArgumentHelp("Ranks (mpirun -np; default: mpirun's, one a slot).", valueName: "n"))
  var np: Int?

  @Option(help: ArgumentHelp("mpirun's hostfile.", valueName: "file"))
  var hostfile: String?

  @Option(parsing: .unconditional, help: ArgumentHelp("Relaunches after a rank died or stalled (default 3: a crash is recovered from without asking; 0 turns restarts off).", valueName: "k"))
  var maxRestarts: Int = 3

  @Option(help: ArgumentHelp("Keep MPI's traffic on this network interface or subnet (btl_tcp_if_include, oob_tcp_if_include).", valueName: "interface"))
  var tcpInterface: String?

  @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("train ARGS... or sweep ARGS..., then -- MPIRUN-ARGS... for mpirun", valueName: "command"))
  var arguments: [String] = []

  /// The dpt command and its arguments: everything before a `--`.
  var command: [String] { arguments.firstIndex(of: "--").map { Array(arguments[..<$0]) } ?? arguments }
  /// mpirun's own arguments: everything after the first `--`.
  var mpirunExtra: [String] { arguments.firstIndex(of: "--").map { Array(arguments[($0 + 1)...]) } ?? [] }

  /// mpirun's own ending of a job (kill -9 of the launch, whose mpirun then gets SIGTERM; a signal the ranks did not
  /// act on): SIGCONT, this many seconds, SIGTERM, as many again, SIGKILL (its default is 1 s, too short for a
  /// checkpoint and a sweep's summary.json and report.html).
  static let killTimeout = 10
  /// Seconds the ranks have to stop after the launch passes them a signal, before it has mpirun end them.
  static let stopGrace = 60.0

  func validate() throws {
    // The command's arguments are passed through untouched, so --help before it is this command's own.
    if let first = command.first, first == "--help" || first == "-h" { throw CleanExit.helpRequest(self) }
    guard let first = command.first, ["train", "sweep"].contains(first) else {
      throw ValidationError("give the command to launch: dpt launch [-np N] train ARGS... (or sweep ARGS...)")
    }
    if let np, np < 1 { throw ValidationError("-np must be at least 1 (got \(np))") }
    if maxRestarts < 0 { throw ValidationError("--max-restarts must be at least 0 (got \(maxRestarts))") }
    if maxRestarts > 0 && resumeFolder(of: command) == nil {
      throw ValidationError(command[0] == "train"
        ? "restarts resume from a checkpoint: add --checkpoint-dir DIR to the train arguments (or --max-restarts 0)"
        : "restarts resume a sweep from its folder: add --log-dir DIR to the sweep arguments (or --max-restarts 0)")
    }
  }

  /// The folder a restart resumes from: train's --checkpoint-dir, a sweep's --log-dir.
  func resumeFolder(of arguments: [String]) -> String? {
    let flag = arguments.first == "train" ? "--checkpoint-dir" : "--log-dir"
    for (i, a) in arguments.enumerated() {
      if a == flag, i + 1 < arguments.count { return arguments[i + 1] }
      if a.hasPrefix(flag + "=") { return String(a.dropFirst(flag.count + 1)) }
    }
    return nil
  }

  /// Whether a restart has something to resume from.
  func canResume(_ folder: String) -> Bool {
    FileManager.default.fileExists(atPath: Files.join(folder, command[0] == "train" ? "checkpoint.dptc" : "sweep.json"))
  }

  /// The arguments of a relaunch: train's own with --resume DIR (replacing any --resume); a sweep's --resume DIR alone
  /// (its other arguments come from DIR/sweep.json), keeping --json and --stall-timeout.
  func resumed(_ folder: String) -> [String] {
    if command[0] == "train" {
      var out: [String] = [], skip = false
      for a in command {
        if skip { skip = false; continue }
        if a == "--resume" { skip = true; continue }
        if a.hasPrefix("--resume=") { continue }
        out.append(a)
      }
      return out + ["--resume", folder]
    }
    var kept: [String] = []
    for (i, a) in command.enumerated() {
      if a == "--json" || a.hasPrefix("--stall-timeout=") { kept.append(a) }
      if a == "--stall-timeout", i + 1 < command.count { kept += [a, command[i + 1]] }
    }
    return ["sweep", "--resume", folder] + kept
  }

  /// Where a job runs: mpirun's -np and hostfile (both optional).
  struct Placement {
    var np: Int?
    var hostfile: String?
  }

  func mpirunArguments(_ arguments: [String], on placement: Placement) -> [String] {
    let extra = mpirunExtra
    // Oversubscribed ranks bound to one core each would share cores where the machine has idle ones.
    let oversubscribed = extra.contains { $0 == "--oversubscribe" || $0 == "-oversubscribe" }
      || ProcessInfo.processInfo.environment["OMPI_MCA_rmaps_base_oversubscribe"].map { ["1", "true", "yes"].contains($0) } == true
    var a = ["mpirun", "--bind-to", oversubscribed ? "none" : "core", "-x", "OPENBLAS_NUM_THREADS=1", "-x", "\(LaunchedBy.variable)=\(getpid())"]
    if Console.stderrIsTerminal { a += ["-x", "\(LaunchedBy.terminal)=1"] }
    if !extra.contains("odls_base_sigkill_timeout") { a += ["--mca", "odls_base_sigkill_timeout", String(Self.killTimeout)] }
    if let np = placement.np { a += ["-np", String(np)] }
    if let hostfile = placement.hostfile { a += ["--hostfile", hostfile] }
    return a + tcpArguments + extra + [CommandLine.arguments[0]] + arguments
  }

  var tcpArguments: [String] {
    tcpInterface.map { ["--mca", "btl_tcp_if_include", $0, "--mca", "oob_tcp_if_include", $0] } ?? []
  }

  /// mpirun's environment: its as-root variables only as root, one BLAS thread a rank.
  static var environment: [String: String] {
    var environment = ProcessInfo.processInfo.environment
    if getuid() == 0 {
      environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
      environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    }
    environment["OPENBLAS_NUM_THREADS"] = "1"
    return environment
  }

  /// The hosts of a hostfile with their slots (1 when not given), in order; comments and blank lines left out.
  static func hosts(inHostfile text: String) -> [(name: String, slots: Int)] {
    text.split(separator: "\n").compactMap { raw in
      let line = raw.prefix { $0 != "#" }.split(separator: " ").map(String.init)
      guard let name = line.first else { return nil }
      let slots = line.dropFirst().first { $0.hasPrefix("slots=") }.flatMap { Int($0.dropFirst(6)) } ?? 1
      return (name, max(slots, 1))
    }
  }

  /// Whether mpirun can start a process on `host` within `seconds` (through the same launcher as the job's: ssh, or
  /// whatever plm_rsh_agent names).
  func answers(_ host: String, within seconds: Double = 15) -> Bool {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["mpirun", "-np", "1", "--host", host, "--bind-to", "none"] + tcpArguments + ["true"]
    p.environment = Self.environment
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return false }
    let deadline = Date().addingTimeInterval(seconds)
    while p.isRunning && Date() < deadline { usleep(100_000) }
    if p.isRunning {
      p.terminate()
      usleep(500_000)
      if p.isRunning { kill(p.processIdentifier, SIGKILL) }
      p.waitUntilExit()
      return false
    }
    return p.terminationStatus == 0
  }

  /// The placement of a relaunch: with a hostfile, the hosts that still answer (a hostfile of their own, in the
  /// temporary folder) and at most their slots as ranks; without one, the same. Nil when no host answers.
  func survivingPlacement(_ current: Placement) throws -> Placement? {
    guard let hostfile = current.hostfile else { return current }
    let text = (try? Files.read(hostfile, limit: 1 << 20, missing: "check --hostfile")).map { String(decoding: $0, as: UTF8.self) } ?? ""
    let all = Self.hosts(inHostfile: text)
    let alive = all.filter { answers($0.name) }
    if alive.count == all.count { return current }
    guard !alive.isEmpty else { return nil }
    let gone = all.filter { h in !alive.contains { $0.name == h.name } }.map(\.name)
    let slots = alive.reduce(0) { $0 + $1.slots }
    let np = min(current.np ?? all.reduce(0) { $0 + $1.slots }, slots)
    // Outside the run's folders, which hold only what dpt's runs list as theirs.
    let path = Files.join(NSTemporaryDirectory(), "dpt-launch-hosts-\(getpid())")
    try Data(alive.map { "\($0.name) slots=\($0.slots)\n" }.joined().utf8).write(to: URL(fileURLWithPath: path))
    LaunchCommand.say("dpt launch: \(gone.joined(separator: ", ")) no longer answer\(gone.count == 1 ? "s" : ""); relaunching on \(alive.map(\.name).joined(separator: ", ")) with \(np) rank\(np == 1 ? "" : "s")\n")
    return Placement(np: np, hostfile: path)
  }

  /// A line of the launch's own on stderr, on a line of its own (a rank's progress bar, passed through, may have left
  /// the cursor at the end of its line).
  static func say(_ text: String) {
    FileHandle.standardError.write(Data(((Console.stderrIsTerminal ? "\r\u{1B}[K" : "") + text).utf8))
  }

  /// Runs mpirun, passing its output through, and returns its status with the end of its stderr.
  func runJob(_ arguments: [String], on placement: Placement) throws -> (status: Int32, stderr: String) {
    let p = Process()
    // mpirun dies with the launch: setpriv (util-linux, in every Debian) sets its parent-death signal before exec,
    // so kill -9 of the launch sends mpirun SIGTERM, which ends the ranks.
    let setpriv = "/usr/bin/setpriv"
    if FileManager.default.isExecutableFile(atPath: setpriv) {
      p.executableURL = URL(fileURLWithPath: setpriv)
      p.arguments = ["--pdeathsig", "TERM", "--"] + mpirunArguments(arguments, on: placement)
    } else {
      p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      p.arguments = mpirunArguments(arguments, on: placement)
    }
    let environment = Self.environment
    p.environment = environment
    let pipe = Pipe()
    p.standardError = pipe
    final class Tail: @unchecked Sendable {
      private var data = Data()
      private let lock = NSLock()
      func append(_ chunk: Data) {
        lock.lock()
        defer { lock.unlock() }
        data.append(chunk)
        if data.count > 1 << 16 { data = data.suffix(1 << 15) }
      }
      var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
      }
    }
    let tail = Tail()
    let done = DispatchSemaphore(value: 0)
    Thread {
      let handle = pipe.fileHandleForReading
      while true {
        let chunk = handle.availableData
        if chunk.isEmpty { break }
        FileHandle.standardError.write(chunk)
        tail.append(chunk)
      }
      done.signal()
    }.start()
    do { try p.run() } catch { throw CommandError("mpirun could not start: \(error) (is openmpi-bin installed?)") }
    // SIGINT and SIGTERM to the launch reach every rank at once as SIGUSR2 and SIGUSR1, which mpirun forwards (its
    // own SIGTERM would first wait its kill timeout); the ranks stop after the same step and save. If they have not
    // ended `stopGrace` seconds later, or a second signal comes, mpirun gets SIGTERM and ends them.
    LaunchSignals.forward(to: p.processIdentifier)
    var escalated = false
    while p.isRunning {
      usleep(50_000)
      if !escalated, let since = LaunchSignals.since, LaunchSignals.count > 1 || WallClock.now() - since > Self.stopGrace {
        kill(p.processIdentifier, SIGTERM)
        escalated = true
      }
    }
    p.waitUntilExit()
    LaunchSignals.forward(to: 0)
    // A daemon left on a host that lost its link may hold the pipe open: its last words are not waited for long.
    _ = done.wait(timeout: .now() + 2)
    return (p.terminationStatus, tail.text)
  }

  /// The signal that stopped the ranks when it did not come through the launch (a scheduler's SIGTERM to every
  /// task): rank 0 says "interrupted (SIGTERM) ...", and under a launch the ranks then end with status 0.
  static func interruption(_ stderr: String) -> Int32? {
    for line in stderr.split(separator: "\n").reversed() {
      if line.hasPrefix("interrupted (SIGTERM)") { return SIGTERM }
      if line.hasPrefix("interrupted (SIGINT)") { return SIGINT }
    }
    return nil
  }

  /// Why the job failed, when it is a failure a restart recovers from: a rank that died or stopped answering.
  static func recoverable(_ stderr: String) -> String? {
    let lines = stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    func clean(_ line: String) -> String {
      var l = line.hasPrefix("Error: ") ? String(line.dropFirst(7)) : line
      if let end = l.range(of: "; ending the job") { l = String(l[..<end.lowerBound]) }
      return l.hasSuffix(".") ? String(l.dropLast()) : l
    }
    if let died = lines.first(where: { $0.contains("exited on signal") }) { return clean(died) }
    if let stalled = lines.first(where: { $0.contains("stopped answering") }) { return clean(stalled) }
    if let lost = lines.first(where: { $0.contains("lost contact") || $0.contains("daemon") && $0.contains("died") }) { return clean(lost) }
    return nil
  }

  /// The launch that continues this one from its folder.
  var resumeCommand: String {
    let folder = resumeFolder(of: command).map { resumed($0) } ?? command
    let dpt = CommandLine.arguments[0]
    let options = (np.map { ["-np", String($0)] } ?? []) + (hostfile.map { ["--hostfile", $0] } ?? [])
      + ["--max-restarts", String(maxRestarts)] + (tcpInterface.map { ["--tcp-interface", $0] } ?? [])
    return ([dpt, "launch"] + options + folder + (mpirunExtra.isEmpty ? [] : ["--"] + mpirunExtra)).map(ShellWords.quote).joined(separator: " ")
  }

  /// Ends the launch after a signal: the job has stopped (its ranks checkpointed); 128 + the signal's number.
  func stopped(_ signal: Int32) -> ExitCode {
    let canResume = resumeFolder(of: command).map(canResume) ?? false
    LaunchCommand.say("dpt launch: stopped by \(signal == SIGINT ? "SIGINT" : "SIGTERM")\(canResume ? "; resume with: \(resumeCommand)" : "; nothing was saved to resume from")\n")
    return ExitCode(128 + signal)
  }

  func run() throws {
    LaunchSignals.install()
    var arguments = command
    var placement = Placement(np: np, hostfile: hostfile)
    var restarts = 0
    while true {
      if let signal = LaunchSignals.received { throw stopped(signal) }
      let (status, stderr) = try runJob(arguments, on: placement)
      if let signal = LaunchSignals.received ?? Self.interruption(stderr) { throw stopped(signal) }
      if status == 0 { return }
      guard let reason = LaunchCommand.recoverable(stderr) else { throw ExitCode(status) }
      guard restarts < maxRestarts else {
        LaunchCommand.say("dpt launch: the job failed again (\(reason)); \(maxRestarts) restart\(maxRestarts == 1 ? "" : "s") used, giving up\n")
        throw ExitCode(status)
      }
      guard let folder = resumeFolder(of: command), canResume(folder) else {
        LaunchCommand.say("dpt launch: the job failed (\(reason)) before it saved anything to resume from; not restarting\n")
        throw ExitCode(status)
      }
      restarts += 1
      LaunchCommand.say("dpt launch: restart \(restarts) of \(maxRestarts): the job ended with status \(status) because \(reason); relaunching with --resume \(folder)\n")
      guard let surviving = try survivingPlacement(placement) else {
        LaunchCommand.say("dpt launch: no host of \(hostfile ?? "the hostfile") answers; not restarting\n")
        throw ExitCode(status)
      }
      placement = surviving
      arguments = resumed(folder)
    }
  }
}

/// The launch's SIGINT and SIGTERM: recorded, and passed to the running mpirun as SIGUSR2 and SIGUSR1, which it
/// forwards to every rank (its process group is its own, so a terminal's Ctrl-C and a `kill` of the launch's pid
/// would not reach it otherwise; dpt's ranks read SIGUSR1 as SIGTERM and SIGUSR2 as SIGINT). Cells of the C
/// handler, which may not capture or allocate.
enum LaunchSignals {
  /// [the running mpirun's pid (0: none), the first signal received (0: none), signals received]. Unchecked on
  /// purpose: a signal handler may take no lock, so the cells are plain memory, each written whole.
  nonisolated(unsafe) static let state: UnsafeMutablePointer<Int32> = {
    let p = UnsafeMutablePointer<Int32>.allocate(capacity: 3)
    p.initialize(repeating: 0, count: 3)
    return p
  }()
  /// When the first signal was seen by `since` (the handler cannot read the clock).
  static let first = Locked<Double?>(nil)

  static var received: Int32? { state[1] == 0 ? nil : state[1] }
  static var count: Int32 { state[2] }
  /// When the first signal arrived (as first seen here), nil before any.
  static var since: Double? {
    guard received != nil else { return nil }
    return first.withLock { t in
      if t == nil { t = WallClock.now() }
      return t
    }
  }

  /// The signal mpirun forwards to the ranks for `sig`.
  static func forwarded(_ sig: Int32) -> Int32 { sig == SIGINT ? SIGUSR2 : SIGUSR1 }

  static func install() {
    _ = state
    for s in [SIGINT, SIGTERM] {
      signal(s) { sig in
        let p = LaunchSignals.state
        if p[1] == 0 { p[1] = sig }
        p[2] += 1
        if p[0] > 0 && p[2] == 1 { kill(p[0], sig == SIGINT ? SIGUSR2 : SIGUSR1) }
      }
    }
  }

  /// Signals from now on go to `pid` (0: to nobody); one that arrived before it started is passed at once.
  static func forward(to pid: Int32) {
    state[0] = pid
    if pid > 0, let sig = received { kill(pid, forwarded(sig)) }
  }
}
