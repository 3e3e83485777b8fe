import ArgumentParser
import Collectives
import DPT
import Foundation
import TensorCore
import _Support

/// `dpt doctor`: what this machine gives a run, and what to change where something is off. The first command to run
/// on a new cluster: under mpirun every rank measures itself at once (as in training) and rank 0 prints one table of
/// all hosts, naming the slowest.
struct DoctorCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "doctor",
    abstract: "Check this machine (or, under mpirun, every host): CPU, BLAS kernel and speed, MPI, shared memory, threads.",
    discussion: """
      Prints the CPU and its vector extensions, OpenBLAS's version and kernel (and the one dpt picks), sgemm's
      GFLOP/s on one thread and on every core (about a second), OpenMPI's version and the interfaces its TCP
      transport and mpirun would use, the shared memory free, the BLAS threads a rank gets under mpirun and under
      Slurm, and what to change where something is off.

        dpt doctor
        mpirun -np 4 --hostfile hosts dpt doctor      # one row per rank, the slowest named
      """.reflowed)

  @Flag(help: "Print the facts as one JSON object (under mpirun: one per rank, in a list).")
  var json = false

  /// One rank's facts.
  struct Facts {
    var host: String
    var rank: Int
    var cpu: CPUFeatures
    var cores: Int
    var kernel: String
    var blas: String
    var wouldPick: String
    var gflopsOneThread: Double
    var gflopsAllCores: Double?
    var threads: Int

    var json: JSON {
      .object([("host", JSON(host)), ("rank", JSON(rank)), ("cpu", JSON(cpu.modelName)), ("family", JSON(cpu.family)),
               ("model", JSON(cpu.model)), ("cores", JSON(cores)), ("vector_extensions", JSON(cpu.vectorExtensions)),
               ("blas_kernel", JSON(kernel)), ("blas", JSON(blas)), ("blas_kernel_for_this_cpu", JSON(wouldPick)),
               ("sgemm_gflops_1_thread", JSON(gflopsOneThread)), ("sgemm_gflops_all_cores", JSON(gflopsAllCores)),
               ("blas_threads", JSON(threads))])
    }

    init(host: String, rank: Int, allCores: Bool) {
      self.host = host
      self.rank = rank
      cpu = CPUFeatures.current
      cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
      kernel = BLASKernel.current
      blas = BLASKernelChoice.summary
      // What dpt picks here: OpenBLAS's own choice upgraded where it is a fallback (this process may already run it).
      let own = ProcessInfo.processInfo.environment[BLASKernelChoice.choiceVariable]?.split(separator: ";").dropFirst().first.map(String.init) ?? kernel
      wouldPick = BLASKernel.upgrades(from: own, cpu: cpu).first ?? own
      threads = BLASThreads.count
      gflopsOneThread = BLASKernel.sgemmRate(threads: 1)
      gflopsAllCores = allCores && cores > 1 ? BLASKernel.sgemmRate(threads: cores) : nil
    }

    init?(json j: JSON) {
      guard let host = j["host"]?.string, let rank = j["rank"]?.int else { return nil }
      self.host = host
      self.rank = rank
      cpu = CPUFeatures(vendor: "", family: j["family"]?.int ?? 0, model: j["model"]?.int ?? 0, modelName: j["cpu"]?.string ?? "?", flags: [])
      cores = j["cores"]?.int ?? 0
      kernel = j["blas_kernel"]?.string ?? "?"
      blas = j["blas"]?.string ?? "?"
      wouldPick = j["blas_kernel_for_this_cpu"]?.string ?? "?"
      gflopsOneThread = j["sgemm_gflops_1_thread"]?.double ?? 0
      gflopsAllCores = j["sgemm_gflops_all_cores"]?.double
      threads = j["blas_threads"]?.int ?? 0
    }
  }

  func run() throws {
    try Launch.withWorld { comm in
      let host = World.hostNames(comm)[comm.rank]
      // Every rank measures one thread at once, as ranks compute in training; alone, every core is measured too.
      let mine = Facts(host: host, rank: comm.rank, allCores: comm.size == 1)
      let all = try comm.allGather(Array(mine.json.serialized().utf8)).compactMap { try? JSON.parse(bytes: $0) }.compactMap(Facts.init(json:))
      guard comm.isRoot else { return }
      if json {
        print((comm.size == 1 ? mine.json : JSON.array(all.map(\.json))).serialized())
        return
      }
      for line in report(mine, all: all, ranks: comm.size) { print(line) }
    }
  }

  /// The lines `dpt doctor` prints on rank 0.
  func report(_ me: Facts, all: [Facts], ranks: Int) -> [String] {
    var lines: [String] = []
    var advice: [String] = []
    let cpu = me.cpu
    lines.append("CPU: \(cpu.modelName) (family \(cpu.family), model \(cpu.model)), \(counted(me.cores, "core"))")
    lines.append("  vector extensions: \(cpu.vectorExtensions)")
    lines.append("BLAS: \(me.blas)")
    if BLASKernel.tier(me.kernel) < BLASKernel.tier(me.wouldPick) {
      lines.append("  dpt would pick \(me.wouldPick) on this CPU")
      advice.append("the BLAS kernel \(me.kernel) is narrower than this CPU runs (\(me.wouldPick)): unset OPENBLAS_CORETYPE and \(BLASKernelChoice.keepVariable), or set OPENBLAS_CORETYPE=\(me.wouldPick)")
    }
    var speed = String(format: "sgemm: %.0f GFLOP/s on 1 thread", me.gflopsOneThread)
    if let a = me.gflopsAllCores { speed += String(format: ", %.0f on %d threads (%.2fx)", a, me.cores, a / max(me.gflopsOneThread, 1)) }
    lines.append(speed + (ranks > 1 ? " (every rank measuring at once)" : ""))
    if let a = me.gflopsAllCores, me.cores > 1, a < 1.4 * me.gflopsOneThread {
      advice.append(String(format: "%d cores gave %.2fx one core's sgemm: the cores are shared or unequal here (a busy host, or vCPUs on one physical core); expect ranks to wait for each other", me.cores, a / max(me.gflopsOneThread, 1)))
    }
    lines.append("MPI: \(MPICommunicator.libraryVersion)")
    let env = ProcessInfo.processInfo.environment
    let interfaces = Self.interfaces()
    lines.append("  interfaces: " + interfaces.map { "\($0.name) \($0.address)" }.joined(separator: ", "))
    if let tcp = env["OMPI_MCA_btl_tcp_if_include"] {
      lines.append("  TCP transport between hosts on: \(tcp) (OMPI_MCA_btl_tcp_if_include)")
    } else {
      lines.append("  TCP transport between hosts on: every interface but lo (name one with --mca btl_tcp_if_include IFACE)")
    }
    lines.append("  mpirun's own listener: every address, whatever oob_tcp_if_include says (docs/SECURITY.md)")
    if interfaces.contains(where: { !$0.name.hasPrefix("lo") && !Self.isPrivate($0.address) }) {
      advice.append("this host has a public address: keep MPI off it (docs/SECURITY.md: --mca btl_tcp_if_include, or a network namespace for one-host runs)")
    }
    var fs = statvfs()
    if statvfs("/dev/shm", &fs) == 0 {
      let free = Double(fs.f_bavail) * Double(fs.f_frsize), total = Double(fs.f_blocks) * Double(fs.f_frsize)
      lines.append("shared memory: /dev/shm \(ByteCount.text(free)) free of \(ByteCount.text(total)) (ranks of a host sum gradients there)")
      if free < 256e6 {
        advice.append("/dev/shm has \(ByteCount.text(free)) free: ranks of one host exchange through it; enlarge it (mount -o remount,size=2G /dev/shm) or pass --no-shared-memory")
      }
    } else {
      lines.append("shared memory: /dev/shm is missing (ranks of a host then exchange messages: --no-shared-memory)")
    }
    lines.append("BLAS threads a rank gets: under mpirun, cores / ranks on the host (1 with -np \(me.cores) here, \(me.cores) with -np 1); under Slurm, SLURM_CPUS_PER_TASK (-c); OPENBLAS_NUM_THREADS overrides both\(env["OPENBLAS_NUM_THREADS"].map { " (set here: \($0))" } ?? "")")
    if let t = env["OPENBLAS_NUM_THREADS"].flatMap(Int.init), ranks > 1, t * ranks > me.cores {
      advice.append("OPENBLAS_NUM_THREADS=\(t) with \(ranks) ranks on \(me.cores) cores oversubscribes them: unset it (dpt gives each rank its share)")
    }
    if all.count > 1 {
      lines.append("")
      lines.append("rank  host                  kernel        sgemm GFLOP/s (1 thread)  CPU")
      for f in all {
        lines.append(RunText.pad("\(f.rank)", 6, left: true) + RunText.pad(f.host, 22, left: true) + RunText.pad(f.kernel, 14, left: true)
                     + RunText.pad(String(format: "%.0f", f.gflopsOneThread), 26, left: true) + f.cpu.modelName)
      }
      let rates = all.map(\.gflopsOneThread).sorted()
      let median = rates.count % 2 == 1 ? rates[rates.count / 2] : (rates[rates.count / 2 - 1] + rates[rates.count / 2]) / 2
      if let slowest = all.min(by: { $0.gflopsOneThread < $1.gflopsOneThread }) {
        lines.append(String(format: "slowest: rank %d on %@: %.0f GFLOP/s, %.2fx the median (%.0f)", slowest.rank, slowest.host,
                            slowest.gflopsOneThread, slowest.gflopsOneThread / max(median, 1), median))
        if slowest.gflopsOneThread < 0.7 * median {
          advice.append("rank \(slowest.rank) on \(slowest.host) is much slower than the others: every step waits for it (check its kernel, \(slowest.kernel), and what else runs there)")
        }
      }
      for f in all where BLASKernel.tier(f.kernel) < BLASKernel.tier(f.wouldPick) {
        advice.append("rank \(f.rank) on \(f.host) runs \(f.kernel) where its CPU runs \(f.wouldPick)")
      }
    }
    lines.append("")
    lines += advice.isEmpty ? ["nothing to change"] : advice.map { "to change: \($0)" }
    return lines
  }

  /// This host's network interfaces with their IPv4 addresses.
  static func interfaces() -> [(name: String, address: String)] {
    var out: [(String, String)] = []
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0, let first = list else { return [] }
    defer { freeifaddrs(list) }
    var p: UnsafeMutablePointer<ifaddrs>? = first
    while let i = p {
      if let a = i.pointee.ifa_addr, a.pointee.sa_family == sa_family_t(AF_INET) {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        if getnameinfo(a, socklen_t(MemoryLayout<sockaddr_in>.size), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 {
          out.append((String(cString: i.pointee.ifa_name), String(cString: host)))
        }
      }
      p = i.pointee.ifa_next
    }
    return out
  }

  /// Loopback, RFC 1918, link-local and carrier-grade NAT addresses.
  static func isPrivate(_ address: String) -> Bool {
    let o = address.split(separator: ".").compactMap { Int($0) }
    guard o.count == 4 else { return true }
    return o[0] == 10 || o[0] == 127 || (o[0] == 172 && (16...31).contains(o[1])) || (o[0] == 192 && o[1] == 168)
      || (o[0] == 169 && o[1] == 254) || (o[0] == 100 && (64...127).contains(o[1]))
  }
}
