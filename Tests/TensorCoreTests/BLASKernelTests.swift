import Testing
import TensorCore

/// Which OpenBLAS kernel dpt asks for on each CPU family, from flag sets recorded on real machines (/proc/cpuinfo),
/// the self-check's fallback, and that OpenBLAS's own choice stays where it is not a fallback.
@Suite struct BLASKernelTests {
  /// Recorded flag sets, the vector extensions of each (other flags left out).
  static let xeon207 = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx_vnni avx512_bf16 avx512_vnni avx512_fp16"
  static let skylakeSP = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512cd avx512bw avx512vl"
  static let epycZen2 = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 sha_ni"
  static let zen5 = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512_vnni"
  static let ivyBridge = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c"
  static let core2 = "fpu sse sse2 ssse3"

  func cpu(_ vendor: String, _ family: Int, _ model: Int, _ flags: String) -> CPUFeatures {
    CPUFeatures(cpuinfo: "processor\t: 0\nvendor_id\t: \(vendor)\ncpu family\t: \(family)\nmodel\t\t: \(model)\nmodel name\t: test\nflags\t\t: \(flags)\n\nprocessor\t: 1\nflags\t\t: fpu\n")
  }

  @Test func cpuinfoIsRead() {
    let c = cpu("GenuineIntel", 6, 207, Self.xeon207)
    #expect(c.vendor == "GenuineIntel" && c.family == 6 && c.model == 207 && c.avx512 && c.avx512bf16 && c.avx2 && !c.isAMD)
    #expect(c.vectorExtensions == "SSE4.2, AVX, AVX2, FMA, AVX-512 F/BW/DQ/VL, AVX512_BF16, AVX512_FP16")
    #expect(!cpu("AuthenticAMD", 23, 49, Self.epycZen2).avx512)
  }

  @Test(arguments: [
    // A current Xeon that OpenBLAS 0.3.21 does not know: it falls back to Prescott; Cooperlake (SkylakeX's kernels and
    // bf16) first, then SkylakeX, Haswell, Sandybridge.
    ("GenuineIntel", 6, 207, xeon207, "Prescott", ["Cooperlake", "SkylakeX", "Haswell", "Sandybridge"]),
    ("GenuineIntel", 6, 85, skylakeSP, "Prescott", ["SkylakeX", "Haswell", "Sandybridge"]),
    ("GenuineIntel", 6, 85, skylakeSP, "Sandybridge", ["SkylakeX", "Haswell"]),
    // OpenBLAS's own choice of a wide kernel stays: it is not a fallback.
    ("GenuineIntel", 6, 85, skylakeSP, "SkylakeX", []),
    ("GenuineIntel", 6, 207, xeon207, "Haswell", []),
    ("AuthenticAMD", 23, 49, epycZen2, "Zen", []),
    ("AuthenticAMD", 26, 2, zen5, "Zen", []),
    // An AMD CPU an old build does not know: Zen's kernels first.
    ("AuthenticAMD", 23, 49, epycZen2, "Barcelona", ["Zen", "Haswell", "Sandybridge"]),
    ("GenuineIntel", 6, 58, ivyBridge, "Prescott", ["Sandybridge"]),
    ("GenuineIntel", 6, 58, ivyBridge, "Sandybridge", []),
    ("GenuineIntel", 6, 15, core2, "Core2", []),
  ] as [(String, Int, Int, String, String, [String])])
  func upgradesFollowTheCPU(vendor: String, family: Int, model: Int, flags: String, chose: String, expected: [String]) {
    #expect(BLASKernel.upgrades(from: chose, cpu: cpu(vendor, family, model, flags)) == expected)
  }

  /// A candidate that fails the self-check is passed over for the next; when all fail, OpenBLAS's own stays.
  @Test func theSelfCheckFallsBack() {
    let xeon = cpu("GenuineIntel", 6, 207, Self.xeon207)
    var asked: [String] = []
    let (kernel, failed) = BLASKernel.choose(chose: "Prescott", cpu: xeon) { asked.append($0); return $0 == "Haswell" }
    #expect(kernel == "Haswell" && failed == ["Cooperlake", "SkylakeX"] && asked == ["Cooperlake", "SkylakeX", "Haswell"])
    let none = BLASKernel.choose(chose: "Prescott", cpu: xeon) { _ in false }
    #expect(none.kernel == nil && none.failed == ["Cooperlake", "SkylakeX", "Haswell", "Sandybridge"])
    #expect(BLASKernel.choose(chose: "Cooperlake", cpu: xeon) { _ in Issue.record("nothing to check"); return true }.kernel == nil)
  }

  /// The self-check passes with the kernel this process runs (whichever it is).
  @Test func theKernelInUsePassesTheSelfCheck() {
    #expect(BLASKernel.selfCheck(), "\(BLASKernel.current)")
    #expect(BLASKernel.version.hasPrefix("OpenBLAS "))
  }
}
