import FileFormats
import Foundation
import Testing
import _TestSupport

extension BinaryTests {
  /// Two hosts on this machine (network namespaces on a switch, scripts/cluster): training across them gives the
  /// same result as on one host with the same exchange. Across hosts the default exchange is overlapped buckets
  /// (one host's default is shared memory, whose sums round differently in the last bits).
  @Suite struct ClusterTests {
    static let cluster = Package.root + "/scripts/cluster"

    /// Runs `body` on a two-host cluster (scripts/cluster up, then down); a machine that cannot make one fails.
    func onTwoHosts(_ body: (_ cluster: String) throws -> Void) rethrows {
      let up = Subprocess.run(["bash", Self.cluster, "up"], timeout: 60)
      defer { _ = Subprocess.run(["bash", Self.cluster, "down"], timeout: 60) }
      guard up.status == 0 else {
        Issue.record("network namespaces cannot be created here, so the two-host test cannot run: \(up.stderr)")
        return
      }
      try body(Self.cluster)
    }

    /// scripts/train.sbatch on a Slurm of two nodes, one per namespace host (`scripts/slurm-cluster up --cluster`):
    /// `sbatch --wait -N 2 -n 2` puts a task on each host, mpirun inside the allocation starts its daemon on the
    /// other host through Slurm, and the epoch table is plain mpirun's on one host.
    @Test func aSlurmJobSpansTwoHosts() throws {
      try onTwoHosts { cluster in
        let slurm = Package.root + "/scripts/slurm-cluster"
        let up = Subprocess.run(["bash", slurm, "up", "--cluster"], timeout: 900)
        defer { _ = Subprocess.run(["bash", slurm, "down", "--cluster"], timeout: 120) }
        guard up.status == 0, let line = up.stdout.split(separator: "\n").first(where: { $0.hasPrefix("export SLURM_CONF=") }) else {
          Issue.record("scripts/slurm-cluster up --cluster failed: \(up.stdout)\n\(up.stderr)")
          return
        }
        let conf = String(line.dropFirst("export SLURM_CONF=".count))
        let dir = TemporaryDirectory(), out = dir.file("job.out")
        let train = ["--dataset", "corn", "--epochs", "3", "--batch-size", "2", "--lr", "0.01", "--bucket-size", "262144"]
        let expected = SlurmTests.table(DPTBinary.mpirun(2, ["train"] + train).stdout)
        #expect(expected.count == 3)
        let subnet = "10.77.0.0/24"
        let job = Subprocess.run(
          ["bash", cluster, "exec", "dpt-hostA", "env", "SLURM_CONF=\(conf)", "DPT=\(DPTBinary.path)",
           "OMPI_MCA_btl=self,vader,tcp", "OMPI_MCA_btl_tcp_if_include=\(subnet)", "OMPI_MCA_oob_tcp_if_include=\(subnet)",
           "sbatch", "--wait", "-N", "2", "-n", "2", "-o", out, "-D", dir.path, Package.root + "/scripts/train.sbatch"] + train,
          timeout: 300)
        let log = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(job.status == 0 && !job.timedOut, "\(job.stderr)\n\(log)")
        #expect(log.contains("2 tasks on dpt-hostA,dpt-hostB") || log.contains("2 tasks on dpt-host[A-B]"), "\(log)")
        #expect(log.contains("on 2 hosts (dpt-hostA, dpt-hostB)"), "\(log)")
        #expect(SlurmTests.table(log) == expected, "the job's epochs\n\(log)\nagainst plain mpirun's \(expected)")
      }
    }

    @Test func trainingAcrossTwoHostsEqualsOneHost() throws {
      try onTwoHosts { cluster in
        // A process of the hosts that is not the job's (a Slurm daemon, another run) outlives `run`: it ends only
        // what it started (issue 28, item 22; it had killed everything in every host).
        let bystander = Subprocess.launch(["bash", cluster, "exec", "dpt-hostB", "sleep", "600"])
        defer { _ = Subprocess.run(["sh", "-c", "ip netns pids dpt-hostB | xargs -r kill -9"], timeout: 10); _ = bystander.wait(timeout: 10) }
        usleep(300_000)
        let before = Subprocess.run(["sh", "-c", "ip netns pids dpt-hostB | wc -l"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let run = ["train", "--dataset", "mnist", "--hidden", "32", "--epochs", "2", "--json"]
        let across = Subprocess.run(["bash", cluster, "run"] + run, environment: ["DPT": DPTBinary.path], timeout: 180)
        #expect(across.status == 0 && !across.timedOut, "\(across.stderr)")
        #expect(across.stderr.contains("on 2 hosts (dpt-hostA, dpt-hostB)"), "\(across.stderr)")
        #expect(across.stderr.contains("1 overlapped bucket of up to 256 KiB"), "\(across.stderr)")
        let after = Subprocess.run(["sh", "-c", "ip netns pids dpt-hostB | wc -l"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(before != "0" && after == before, "processes in dpt-hostB before the job: \(before), after: \(after)")
        let local = DPTBinary.mpirun(2, run + ["--bucket-size", "262144"])
        #expect(local.status == 0)
        let a = try jsonObject(across.stdout), b = try jsonObject(local.stdout)
        for key in ["train_loss", "train_acc", "test_loss", "test_acc"] {
          #expect(a[key] as? Double == b[key] as? Double, "\(key): \(a[key]!) across two hosts, \(b[key]!) on one")
      }
      // Two ranks a host: each host's pair reduces through shared memory and each local rank carries its shard of the
      // sum to its peer on the other host (hierarchical). The sums group differently from four ranks on one host:
      // equal up to float rounding.
      let four = Subprocess.run(["bash", cluster, "run", "-np", "4"] + run, environment: ["DPT": DPTBinary.path], timeout: 180)
      #expect(four.status == 0 && !four.timedOut, "\(four.stderr)")
      #expect(four.stderr.contains("shared memory (2 ranks a host, sharded optimizer step) | shards across 2 hosts"), "\(four.stderr)")
      let oneHost = DPTBinary.mpirun(4, run)
      #expect(oneHost.status == 0, "\(oneHost.stderr)")
      if four.status == 0 && oneHost.status == 0 {
        let c = try jsonObject(four.stdout), d = try jsonObject(oneHost.stdout)
        for key in ["train_loss", "test_loss"] {
          let x = try #require(c[key] as? Double), y = try #require(d[key] as? Double)
          #expect(abs(x - y) <= 1e-4 * abs(y), "\(key): \(x) on 2 hosts x 2 ranks, \(y) on one host")
        }
      }
      // A lasting link failure: hostB's interface goes down mid-run. With --stall-timeout 4 the job ends within the
      // timeout + 10 s, and hostA's rank names the host it lost.
      let long = ["train", "--dataset", "fashion-mnist", "--hidden", "64", "--epochs", "40", "--stall-timeout", "4"]
      let job = Subprocess.launch(["bash", cluster, "run"] + long, environment: ["DPT": DPTBinary.path])
      usleep(4_000_000)
      let cutAt = Date()
      _ = Subprocess.run(["ip", "-n", "dpt-hostB", "link", "set", "dpt-eth0", "down"], timeout: 10)
      let cut = job.wait(timeout: 60)
      let seconds = Date().timeIntervalSince(cutAt)
      _ = Subprocess.run(["ip", "-n", "dpt-hostB", "link", "set", "dpt-eth0", "up"], timeout: 10)
      #expect(!cut.timedOut && cut.status != 0, "\(cut.stderr)")
      #expect(seconds < 4 + 10, "the job took \(seconds) s to end after the link went down")
      #expect(cut.stderr.contains("rank 1 (host dpt-hostB) stopped answering"), "\(cut.stderr)")
      let status = Subprocess.run(["bash", cluster, "status"])
      #expect(status.stdout.contains("dpt-hostA"))
      }
    }

    /// dpt launch on the two hosts: hostB fails mid-run (its link down for good, its processes killed). The launch
    /// finds that hostB no longer answers and relaunches from the last checkpoint on hostA alone, with one
    /// rank; every epoch is logged once and, with --deterministic, the run ends bitwise where an uninterrupted run on
    /// one host ends.
    @Test func launchRelaunchesOnTheHostsThatStillAnswer() throws {
      try onTwoHosts { cluster in
        let dir = TemporaryDirectory("dpt-launch-hosts")
        let hostfile = dir.file("hosts"), ck = dir.file("ck"), logs = dir.file("logs"), whole = dir.file("whole")
        try "dpt-hostA slots=1\ndpt-hostB slots=1\n".write(toFile: hostfile, atomically: true, encoding: .utf8)
        // MPI's launcher for the namespaces (scripts/cluster-agent in place of ssh) and its settings, as environment.
        let mca = ["OMPI_MCA_plm_rsh_agent": Package.root + "/scripts/cluster-agent", "OMPI_MCA_btl": "self,vader,tcp",
                   "OMPI_MCA_mpi_yield_when_idle": "1", "OMPI_MCA_oob_tcp_keepalive_time": "6",
                   "OMPI_MCA_oob_tcp_keepalive_intvl": "2", "OMPI_MCA_oob_tcp_keepalive_probes": "3"]
        let run = ["train", "--dataset", "fashion-mnist", "--hidden", "64", "--epochs", "6", "--deterministic"]
        let env = ["env"] + mca.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let job = Subprocess.launch(["bash", cluster, "exec", "dpt-hostA"] + env + [
          DPTBinary.path, "launch", "-np", "2", "--hostfile", hostfile, "--tcp-interface", "10.77.0.0/24",
        ] + run + ["--stall-timeout", "4", "--checkpoint-dir", ck, "--log-dir", logs])
        // Two epochs done (a checkpoint to resume from), then the link goes.
        let deadline = Date().addingTimeInterval(120)
        while ((try? String(contentsOfFile: logs + "/metrics.jsonl", encoding: .utf8))?.split(separator: "\n").count ?? 0) < 2,
              Date() < deadline { usleep(100_000) }
        // hostB fails: its link goes down and what ran there dies (a daemon left on it would hold the job's pipes).
        _ = Subprocess.run(["ip", "-n", "dpt-hostB", "link", "set", "dpt-eth0", "down"], timeout: 10)
        _ = Subprocess.run(["sh", "-c", "ip netns pids dpt-hostB | xargs -r kill -9"], timeout: 10)
        let r = job.wait(timeout: 300)
        _ = Subprocess.run(["ip", "-n", "dpt-hostB", "link", "set", "dpt-eth0", "up"], timeout: 10)
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)")
        #expect(r.stderr.contains("dpt launch: restart 1 of 3: the job ended with status"), "\(r.stderr)")
        #expect(r.stderr.contains("dpt launch: dpt-hostB no longer answers; relaunching on dpt-hostA with 1 rank"), "\(r.stderr)")
        let epochs = try String(contentsOfFile: logs + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
          .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }.compactMap { $0["epoch"] as? Int }
        #expect(epochs == [1, 2, 3, 4, 5, 6], "every epoch logged once: \(epochs)")
        let uninterrupted = DPTBinary.mpirun(2, run + ["--checkpoint-dir", whole])
        #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")
        func parameters(_ folder: String) throws -> [UInt8] {
          try #require(try Checkpoint(decoding: try Checkpoint.readBytes(folder), path: folder).section("parameters"))
      }
      #expect(try parameters(ck) == parameters(whole), "bitwise the uninterrupted run's parameters")
      }
    }
  }
}
