import Foundation
import _CBLAS

/// What this CPU can run, as the operating system reports it (/proc/cpuinfo: CPUID's feature flags that the kernel
/// enabled, so AVX-512 is listed only where its registers are saved on a context switch).
public struct CPUFeatures: Equatable, Sendable {
  public var vendor: String
  public var family: Int
  public var model: Int
  public var modelName: String
  public var flags: Set<String>

  public init(vendor: String, family: Int, model: Int, modelName: String, flags: Set<String>) {
    self.vendor = vendor
    self.family = family
    self.model = model
    self.modelName = modelName
    self.flags = flags
  }

  /// The first processor's entry of /proc/cpuinfo's text.
  public init(cpuinfo text: String) {
    var fields: [String: String] = [:]
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
      if line.trimmingCharacters(in: .whitespaces).isEmpty && !fields.isEmpty { break }
      guard let colon = line.firstIndex(of: ":") else { continue }
      let key = line[..<colon].trimmingCharacters(in: .whitespaces), value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      if fields[key] == nil { fields[key] = value }
    }
    self.init(vendor: fields["vendor_id"] ?? "unknown", family: Int(fields["cpu family"] ?? "") ?? 0,
              model: Int(fields["model"] ?? "") ?? 0, modelName: fields["model name"] ?? "unknown",
              flags: Set((fields["flags"] ?? "").split(separator: " ").map(String.init)))
  }

  /// This machine's (empty flags where /proc/cpuinfo cannot be read).
  public static let current: CPUFeatures = {
    CPUFeatures(cpuinfo: (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")
  }()

  public var avx: Bool { flags.contains("avx") }
  public var avx2: Bool { flags.contains("avx2") && flags.contains("fma") }
  /// AVX-512 Foundation with the byte/word, doubleword/quadword and vector-length extensions (Skylake-SP and later,
  /// Zen 4 and later): what OpenBLAS's SkylakeX kernels and dpt's 16-float kernels use.
  public var avx512: Bool { ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) }
  public var avx512bf16: Bool { flags.contains("avx512_bf16") }
  public var amx: Bool { flags.contains("amx_tile") }
  public var isAMD: Bool { vendor == "AuthenticAMD" }

  /// "AVX2, FMA, AVX-512 F/BW/DQ/VL, AVX512_BF16" as a person reads the list.
  public var vectorExtensions: String {
    var out: [String] = []
    if flags.contains("sse4_2") { out.append("SSE4.2") }
    if avx { out.append("AVX") }
    if avx2 { out.append("AVX2, FMA") }
    if avx512 { out.append("AVX-512 F/BW/DQ/VL") }
    if avx512bf16 { out.append("AVX512_BF16") }
    if flags.contains("avx512_fp16") { out.append("AVX512_FP16") }
    if amx { out.append("AMX") }
    return out.isEmpty ? "none beyond SSE2" : out.joined(separator: ", ")
  }
}

/// OpenBLAS's kernel: which one it runs (it picks one per CPU at start-up; `OPENBLAS_CORETYPE` overrides it), and
/// which one this CPU could run.
///
/// Debian's OpenBLAS 0.3.21 does not know every CPU: on a current Intel Xeon (family 6, model 207) it falls back to
/// its Prescott kernel (SSE3, 2004), 26 GFLOP/s of sgemm on one core where its SkylakeX kernel gives 137. A program
/// cannot change the kernel once OpenBLAS has loaded, so `dpt` re-executes itself once with `OPENBLAS_CORETYPE` set
/// (see `BLASKernelChoice` in the command line), after a self-check of the candidate in a child process.
public enum BLASKernel {
  /// The kernel OpenBLAS runs in this process ("Prescott", "SkylakeX", "Zen", ...).
  public static var current: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

  /// "OpenBLAS 0.3.21" (from its build configuration).
  public static var version: String {
    let config = openblas_get_config().map { String(cString: $0) } ?? ""
    let words = config.split(separator: " ")
    return words.count >= 2 ? "\(words[0]) \(words[1])" : "OpenBLAS"
  }

  /// The widest vector extension a kernel family uses: 0 SSE (Prescott, Core2, Nehalem, Barcelona, Atom, ...),
  /// 1 AVX (Sandybridge, Bulldozer, Piledriver, Steamroller), 2 AVX2 (Haswell, Zen, Excavator, SkylakeX without its
  /// AVX-512 would be Haswell), 3 AVX-512 (SkylakeX, Cooperlake, SapphireRapids).
  public static func tier(_ kernel: String) -> Int {
    switch kernel.lowercased() {
    case "skylakex", "cooperlake", "sapphirerapids": 3
    case "haswell", "zen", "excavator", "skylake": 2
    case "sandybridge", "bulldozer", "piledriver", "steamroller": 1
    default: 0
    }
  }

  /// The widest tier `cpu` supports.
  public static func tier(of cpu: CPUFeatures) -> Int { cpu.avx512 ? 3 : cpu.avx2 ? 2 : cpu.avx ? 1 : 0 }

  /// The kernels worth asking for on `cpu`, best first, each one this OpenBLAS has (0.3.21's DYNAMIC_ARCH list):
  /// Cooperlake where AVX512_BF16 is there (SkylakeX's kernels plus bf16 ones), SkylakeX with AVX-512, Zen on AMD
  /// with AVX2, Haswell with AVX2, Sandybridge with AVX.
  public static func candidates(for cpu: CPUFeatures) -> [String] {
    var out: [String] = []
    if cpu.avx512 && cpu.avx512bf16 { out.append("Cooperlake") }
    if cpu.avx512 { out.append("SkylakeX") }
    if cpu.avx2 { out += cpu.isAMD ? ["Zen", "Haswell"] : ["Haswell"] }
    if cpu.avx { out.append("Sandybridge") }
    return out
  }

  /// The kernels to try instead of OpenBLAS's own choice `chose` on `cpu`, best first: when it fell back to a
  /// generic kernel (SSE, or AVX only) on a CPU that runs a wider one, those of a wider tier than its choice; none
  /// when its choice is already an AVX2 or AVX-512 kernel (Zen on a Zen 4 is OpenBLAS's own decision, not a
  /// fallback: old builds misbehave on some AMD CPUs with SkylakeX's kernels).
  public static func upgrades(from chose: String, cpu: CPUFeatures) -> [String] {
    guard tier(chose) < 2 else { return [] }
    return candidates(for: cpu).filter { tier($0) > tier(chose) }
  }

  /// The kernel to use in place of `chose` on `cpu`: the first upgrade that passes `check` (nil: keep OpenBLAS's),
  /// with the upgrades that failed it before. (dpt checks each candidate in its own re-executed process: see
  /// `BLASKernelChoice`; this is the order it takes them in.)
  public static func choose(chose: String, cpu: CPUFeatures, check: (String) -> Bool) -> (kernel: String?, failed: [String]) {
    var failed: [String] = []
    for candidate in upgrades(from: chose, cpu: cpu) {
      if check(candidate) { return (candidate, failed) }
      failed.append(candidate)
    }
    return (nil, failed)
  }

  /// sgemm's rate in GFLOP/s on `threads` BLAS threads: 512 x 512 x 512 products repeated for `seconds`, the best of
  /// three spans (the process's thread count is restored after).
  public static func sgemmRate(threads: Int, seconds: Double = 0.3) -> Double {
    let n = 512, before = BLASThreads.count
    BLASThreads.set(threads)
    defer { BLASThreads.set(before) }
    let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
    var c = [Float](repeating: 0, count: n * n)
    func product() {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
    }
    product()
    var best = 0.0
    for _ in 0..<3 {
      let start = ProcessInfo.processInfo.systemUptime
      var calls = 0
      while ProcessInfo.processInfo.systemUptime - start < seconds / 3 || calls == 0 {
        product()
        calls += 1
      }
      best = max(best, 2 * Double(n * n * n) * Double(calls) / (ProcessInfo.processInfo.systemUptime - start) / 1e9)
    }
    return best
  }

  /// Whether sgemm and dgemm of odd shapes, with every transpose, agree with a plain triple loop in this process (some
  /// OpenBLAS builds compute wrong results on CPUs they do not know).
  public static func selfCheck() -> Bool {
    var rng = RandomSource(seed: 2026)
    for (m, n, k) in [(37, 29, 53), (64, 48, 96), (5, 131, 17)] {
      for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = (0..<m * k).map { _ in rng.uniform(-1, 1) }, b = (0..<k * n).map { _ in rng.uniform(-1, 1) }
        // Reference: C = op(A) op(B) with A stored (m x k) or, transposed, (k x m); B likewise.
        var reference = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
          for j in 0..<n {
            var s = 0.0
            for p in 0..<k { s += a[ta ? p * m + i : i * k + p] * b[tb ? j * k + p : p * n + j] }
            reference[i * n + j] = s
          }
        }
        let scale = reference.map(abs).max()! + 1
        var d = [Double](repeating: 0, count: m * n)
        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                    a, Int32(ta ? m : k), b, Int32(tb ? k : n), 0, &d, Int32(n))
        let af = a.map { Float($0) }, bf = b.map { Float($0) }
        var s = [Float](repeating: 0, count: m * n)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                    af, Int32(ta ? m : k), bf, Int32(tb ? k : n), 0, &s, Int32(n))
        for i in 0..<m * n {
          guard abs(d[i] - reference[i]) <= 1e-12 * scale * Double(k), abs(Double(s[i]) - reference[i]) <= 1e-5 * scale * Double(k) else {
            return false
          }
        }
      }
    }
    return true
  }
}
