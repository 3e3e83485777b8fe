import Foundation
import TensorCore
import Testing
import _Support
import _TestSupport

extension BinaryTests {
  /// The BLAS kernel dpt runs (issue 33): OpenBLAS's fallback replaced by the widest kernel this CPU runs and passes
  /// the self-check, under mpirun too; a user's OPENBLAS_CORETYPE kept; DPT_BLAS_KERNEL=keep keeps OpenBLAS's choice.
  @Suite struct BLASKernelCommandTests {
    let run = ["train", "--dataset", "corn", "--epochs", "1", "--json"]

    func blas(_ r: Subprocess.Result) -> (kernel: String, line: String) {
      let o = (try? JSON.parse(r.stdout.split(separator: "\n").last.map(String.init) ?? "")) ?? .null
      return (o["blas_kernel"]?.string ?? "", o["blas"]?.string ?? "")
    }

    /// The kernel the environment forces (the full tier also runs under OPENBLAS_CORETYPE=Prescott, Haswell and
    /// SkylakeX), which every run must keep.
    static var forced: String? { ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 } }

    @Test func theKernelIsChosenForTheCPU() throws {
      if let forced = Self.forced {
        // A user's kernel is kept, with or without DPT_BLAS_KERNEL=keep, on every rank.
        for r in [DPTBinary.run(run), DPTBinary.run(run, environment: ["DPT_BLAS_KERNEL": "keep"]), DPTBinary.mpirun(2, run)] {
          let b = blas(r)
          #expect(b.kernel.caseInsensitiveCompare(forced) == .orderedSame && b.line.hasSuffix("(OPENBLAS_CORETYPE=\(forced))"), "\(b)")
        }
        return
      }
      let keep = blas(DPTBinary.run(run, environment: ["DPT_BLAS_KERNEL": "keep"]))
      let openblas = keep.kernel
      #expect(!openblas.isEmpty && keep.line.contains("DPT_BLAS_KERNEL=keep"), "\(keep)")
      let chosen = blas(DPTBinary.run(run))
      let upgrades = BLASKernel.upgrades(from: openblas, cpu: .current)
      if let best = upgrades.first {
        #expect(chosen.kernel == best && chosen.line.contains("(OpenBLAS chose \(openblas) for this CPU)"), "\(chosen)")
      } else {
        #expect(chosen.kernel == openblas && !chosen.line.contains("chose"), "\(chosen)")
      }
      // Every rank runs it under mpirun (each chooses before MPI starts; the pid stays mpirun's child's).
      let ranks = DPTBinary.mpirun(2, run)
      #expect(ranks.status == 0 && blas(ranks).kernel == chosen.kernel, "\(ranks.stderr)")
      // A user's OPENBLAS_CORETYPE is kept, and said.
      let forced = blas(DPTBinary.run(run, environment: ["OPENBLAS_CORETYPE": "Prescott"]))
      #expect(forced.kernel == "Prescott" && forced.line.hasSuffix("(OPENBLAS_CORETYPE=Prescott)"), "\(forced)")
    }

    /// A kernel whose check fails gives way to the next, and when every one fails OpenBLAS's own comes back. (The
    /// re-executed process finds a kernel other than the one it was started for: that is a failed check.)
    @Test func aFailedKernelGivesWayToTheNext() {
      let upgrades = BLASKernel.upgrades(from: "Prescott", cpu: .current)
      guard upgrades.count >= 2 else { return }  // a CPU with nothing to choose between
      let next = blas(DPTBinary.run(run, environment: ["OPENBLAS_CORETYPE": "Prescott", "DPT_BLAS_CHOICE": "\(upgrades[0]);Prescott;"]))
      #expect(next.kernel == upgrades[1] && next.line.hasSuffix("(OpenBLAS chose Prescott for this CPU; \(upgrades[0]) failed dpt's self-check)"),
              "\(next)")
      let all = upgrades.dropLast().joined(separator: ",")
      let none = blas(DPTBinary.run(run, environment: ["OPENBLAS_CORETYPE": "Prescott", "DPT_BLAS_CHOICE": "\(upgrades.last!);Prescott;\(all)"]))
      // The run began as OpenBLAS's choice of Prescott (DPT_BLAS_CHOICE says so), whatever this CPU's own choice is.
      #expect(none.kernel == "Prescott" && none.line.contains("failed dpt's self-check") && none.line.contains(upgrades.last!), "\(none)")
    }

    /// The self-check passes with every kernel this machine runs (`dpt --blas-self-check` under each).
    @Test func everyKernelOfThisMachinePassesTheSelfCheck() {
      for kernel in ["Prescott"] + BLASKernel.candidates(for: .current) {
        let r = DPTBinary.run(["--blas-self-check"], environment: ["OPENBLAS_CORETYPE": kernel, "OPENBLAS_NUM_THREADS": "1"])
        #expect(r.status == 0 && r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).caseInsensitiveCompare(kernel) == .orderedSame,
                "\(kernel): \(r.status) \(r.stdout) \(r.stderr)")
      }
    }
  
    /// `dpt --version`: dpt's version and the commit the checkout is at (scripts/test builds through scripts/lib.sh,
    /// which has the linker record it; a plain `swift build` records none and says so, never another commit), then
    /// OpenBLAS with its kernel and OpenMPI.
    @Test func theVersionNamesTheCommitAndTheLibraries() throws {
      let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      let git = Subprocess.run(["git", "-C", root.path, "rev-parse", "HEAD"])
      let commit = git.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
      try #require(git.status == 0 && commit.count == 40, "git rev-parse HEAD: \(git.stderr)")
      let r = DPTBinary.run(["--version"])
      let lines = r.stdout.split(separator: "\n").map(String.init)
      #expect(r.status == 0 && lines.count == 3, "\(r.stdout) \(r.stderr)")
      let first = lines.first ?? ""
      #expect(first.hasPrefix("dpt 0.") && (first.contains("(commit \(commit.prefix(12))") || first.contains("(no commit recorded: ")), "\(lines)")
      #expect(lines.dropFirst().first?.hasPrefix("blas: OpenBLAS 0.") == true, "\(lines)")
      #expect(lines.last?.hasPrefix("mpi: Open MPI v") == true, "\(lines)")
    }

    /// `dpt doctor` alone, as JSON, and under mpirun: the CPU, the kernel and its speed, MPI, shared memory, and one
    /// row a rank with the slowest named.
    @Test func theDoctorReports() throws {
      let alone = DPTBinary.run(["doctor"])
      #expect(alone.status == 0, "\(alone.stderr)")
      for line in ["CPU: ", "vector extensions: ", "BLAS: OpenBLAS ", "sgemm: ", "MPI: Open MPI v", "shared memory: ", "BLAS threads a rank gets: "] {
        #expect(alone.stdout.contains(line), "\(line) in \(alone.stdout)")
      }
      #expect(alone.stdout.contains("nothing to change") || alone.stdout.contains("to change: "))
      let j = try JSON.parse(DPTBinary.run(["doctor", "--json"]).stdout)
      if let forced = Self.forced {
        #expect(j["blas_kernel"]?.string?.caseInsensitiveCompare(forced) == .orderedSame, "\(j)")
      } else {
        #expect(j["blas_kernel"]?.string == BLASKernel.upgrades(from: j["blas_kernel"]?.string ?? "", cpu: .current).first ?? j["blas_kernel"]?.string)
      }
      #expect((j["sgemm_gflops_1_thread"]?.double ?? 0) > 1 && j["cores"]?.int == ProcessInfo.processInfo.activeProcessorCount)
      let ranks = DPTBinary.mpirun(2, ["doctor"])
      #expect(ranks.status == 0 && ranks.stdout.contains("rank  host") && ranks.stdout.contains("slowest: rank "), "\(ranks.stdout) \(ranks.stderr)")
      #expect(ranks.stdout.components(separatedBy: "CPU: ").count == 2, "printed once, by rank 0")
    }
}
}
