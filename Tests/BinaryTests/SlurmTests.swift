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
      guard let (conf, down) = Self.slurm() else { return }
      defer { down() }
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

    /// Issue 32, item 4: a job requeued mid-epoch (`scontrol requeue`, as a pre-emption with PreemptMode=REQUEUE does)
    /// gets SIGTERM, which train.sbatch passes on: dpt writes a checkpoint at the step it reached and exits 143. The
    /// requeued job starts the script again, which finds the checkpoint and adds --resume: every epoch is logged once
    /// (the output file appended to, metrics.csv one row an epoch), and the run ends bitwise where an uninterrupted one
    /// does (--deterministic). Slurm holds a requeued job about 158 s before it runs again (measured here); the test
    /// releases it at once (`scontrol update StartTime=now`, as an administrator may).
    @Test func aRequeuedJobResumesFromItsCheckpoint() throws {
      guard let (conf, down) = Self.slurm() else { return }
      defer { down() }
      let slurm = ["SLURM_CONF": conf]
      let dir = TemporaryDirectory()
      let train = ["--dataset", "fashion-mnist", "--epochs", "4", "--deterministic", "--seed", "3"]
      let out = dir.file("job.out")
      let submit = Subprocess.run(["sbatch", "--parsable", "-n", "2", "-o", out, Package.root + "/scripts/train.sbatch"] + train
                                    + ["--checkpoint-dir", dir.file("ck"), "--log-dir", dir.file("log")],
                                  environment: slurm.merging(["DPT": DPTBinary.path]) { $1 }, timeout: 60, directory: dir.path)
      let job = submit.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
      try #require(submit.status == 0 && !job.isEmpty, "\(submit.stderr)")
      defer { _ = Subprocess.run(["scancel", job], environment: slurm, timeout: 30) }
      func log() -> String { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }
      func state() -> String { Subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], environment: slurm, timeout: 30).stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
      func waitFor(_ what: String, seconds: Double, _ done: () -> Bool) throws {
        let start = Date()
        while !done() {
          try #require(Date().timeIntervalSince(start) < seconds, "\(what) within \(seconds) s\n\(log())")
          Thread.sleep(forTimeInterval: 0.2)
        }
      }
      // Mid-epoch: the first epoch's line, then into the second (an epoch takes about 2.6 s here).
      try waitFor("the first epoch", seconds: 180) { Self.table(log()).count >= 1 }
      Thread.sleep(forTimeInterval: 0.8)
      let requeue = Subprocess.run(["scontrol", "requeue", job], environment: slurm, timeout: 30)
      try #require(requeue.status == 0, "\(requeue.stderr)")
      try waitFor("the requeued job pending", seconds: 90) { state() == "PENDING" }
      _ = Subprocess.run(["scontrol", "update", "JobId=\(job)", "StartTime=now"], environment: slurm, timeout: 30)
      try waitFor("the job's end", seconds: 240) { state().isEmpty }
      let text = log()
      #expect(text.contains("DUE TO JOB REQUEUE") && text.contains("train.sbatch: SIGTERM at"), "\(text)")
      #expect(text.contains("(restart 1)") && text.contains("resuming from \(dir.file("ck"))"), "\(text)")
      let resumed = text.range(of: #"resumed from .*: 1 epoch and (\d+) batch"#, options: .regularExpression).map { String(text[$0]) } ?? ""
      let batches = Int(resumed.split(separator: " ").dropLast().last ?? "") ?? 0
      #expect(batches > 0, "stopped mid-epoch, after some batches of epoch 2: \(resumed)\n\(text)")
      // Every epoch once, in the job's output and in metrics.csv, ending where the uninterrupted run ends.
      let rows = Self.table(text)
      #expect(rows.map { $0.split(separator: " ").first.map(String.init) ?? "" } == ["1", "2", "3", "4"], "\(text)")
      let csv = (try? String(contentsOfFile: dir.file("log/metrics.csv"), encoding: .utf8)) ?? ""
      #expect(csv.split(separator: "\n").dropFirst().map { $0.split(separator: ",").first.map(String.init) ?? "" } == ["1", "2", "3", "4"], "\(csv)")
      let plain = Self.table(DPTBinary.mpirun(2, ["train"] + train).stdout)
      #expect(rows.last == plain.last && plain.count == 4, "\(rows) against an uninterrupted run's \(plain)")
    }

    /// The one-node Slurm of scripts/slurm-cluster, up: its SLURM_CONF, and what brings it down again, which does so
    /// only when this test brought it up (a Slurm someone started stays). Nil, with the issue recorded, when it fails.
    static func slurm() -> (conf: String, down: () -> Void)? {
      let script = Package.root + "/scripts/slurm-cluster"
      let before = Subprocess.run(["bash", script, "status"], timeout: 30)
      let up = Subprocess.run(["bash", script, "up"], timeout: 900)
      let down = { if !before.stdout.contains("slurmctld: running") { _ = Subprocess.run(["bash", script, "down"], timeout: 60) } }
      guard up.status == 0, let line = up.stdout.split(separator: "\n").first(where: { $0.hasPrefix("export SLURM_CONF=") }) else {
        Issue.record("scripts/slurm-cluster up failed: \(up.stderr)")
        down()
        return nil
      }
      return (String(line.dropFirst("export SLURM_CONF=".count)), down)
    }

    /// The rows of an epoch table without their timings (seconds and samples/s).
    static func table(_ text: String) -> [String] {
      text.split(separator: "\n").filter { $0.range(of: #"^\s+\d+\s"#, options: .regularExpression) != nil && $0.contains("   ") }
        .map { $0.split(separator: " ").dropLast(2).joined(separator: " ") }
    }
  }
}
