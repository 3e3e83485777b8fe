import Foundation
import Testing
import _TestSupport

extension BinaryTests {
  /// dpt as a Slurm job on a one-node Slurm of this machine (scripts/slurm-cluster, Debian's slurmctld, slurmd and
  /// munge): scripts/train.sbatch submitted with `sbatch --wait -n 2` trains on the job's two tasks, started by
  /// mpirun inside the allocation and by `srun --mpi=pmix`, and both print the epoch table of the same run under plain
  /// mpirun. A task's BLAS threads are its CPUs (-c).
  @Suite struct SlurmTests {
    @Test func aSlurmJobTrainsOnItsTasks() throws {
      let script = Package.root + "/scripts/slurm-cluster"
      let before = Subprocess.run(["bash", script, "status"], timeout: 30)
      let up = Subprocess.run(["bash", script, "up"], timeout: 900)
      // Brought down only when this test brought it up (a Slurm someone started stays).
      defer { if !before.stdout.contains("slurmctld: running") { _ = Subprocess.run(["bash", script, "down"], timeout: 60) } }
      guard up.status == 0, let line = up.stdout.split(separator: "\n").first(where: { $0.hasPrefix("export SLURM_CONF=") }) else {
        Issue.record("scripts/slurm-cluster up failed: \(up.stderr)")
        return
      }
      let conf = String(line.dropFirst("export SLURM_CONF=".count))
      let dir = TemporaryDirectory()
      let train = ["--dataset", "corn", "--epochs", "3", "--batch-size", "2", "--lr", "0.01"]
      let expected = Self.table(DPTBinary.mpirun(2, ["train"] + train).stdout)
      #expect(expected.count == 3)
      for launch in ["mpirun", "srun"] {
        let out = dir.file("\(launch).out")
        let job = Subprocess.run(
          ["sbatch", "--wait", "-n", "2", "-o", out, Package.root + "/scripts/train.sbatch"] + train,
          environment: ["SLURM_CONF": conf, "DPT": DPTBinary.path, "DPT_LAUNCH": launch], timeout: 300, directory: dir.path)
        let log = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(job.status == 0 && !job.timedOut, "\(launch): \(job.stderr)\n\(log)")
        #expect(log.contains("2 tasks on") && log.contains("started by \(launch)"), "\(log)")
        #expect(log.contains("| 2 ranks |"), "\(log)")
        #expect(Self.table(log) == expected, "\(launch): the job's epochs\n\(log)\nagainst plain mpirun's \(expected)")
      }
      // -c 2: the task's two CPUs become its BLAS threads (OPENBLAS_NUM_THREADS unset, as on a cluster).
      let threads = Subprocess.run(
        ["srun", "-n", "1", "-c", "2", "env", "-u", "OPENBLAS_NUM_THREADS", DPTBinary.path, "train", "--json"] + train,
        environment: ["SLURM_CONF": conf], timeout: 120, directory: dir.path)
      #expect(threads.status == 0, "\(threads.stderr)")
      #expect(try jsonObject(threads.stdout)["blas_threads"] as? Double == 2, "\(threads.stdout)")
    }

    /// The rows of an epoch table without their timings (seconds and samples/s).
    static func table(_ text: String) -> [String] {
      text.split(separator: "\n").filter { $0.range(of: #"^\s+\d+\s"#, options: .regularExpression) != nil && $0.contains("   ") }
        .map { $0.split(separator: " ").dropLast(2).joined(separator: " ") }
    }
  }
}
