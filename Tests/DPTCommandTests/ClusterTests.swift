import Foundation
import Testing
import _TestSupport

extension DPTCommandTests {
  /// Two hosts on this machine (network namespaces on a switch, scripts/cluster): training across them gives the
  /// same result as on one host with the same exchange. Across hosts the default exchange is overlapped buckets
  /// (one host's default is one flat all-reduce, whose sums round differently in the last bits).
  @Suite struct ClusterTests {
    @Test func trainingAcrossTwoHostsEqualsOneHost() throws {
      let cluster = Package.root + "/scripts/cluster"
      let up = Subprocess.run(["bash", cluster, "up"], timeout: 60)
      defer { _ = Subprocess.run(["bash", cluster, "down"], timeout: 60) }
      guard up.status == 0 else {
        Issue.record("network namespaces cannot be created here, so the two-host test cannot run: \(up.stderr)")
        return
      }
      let run = ["train", "--dataset", "mnist", "--hidden", "32", "--epochs", "2", "--json"]
      let across = Subprocess.run(["bash", cluster, "run"] + run, environment: ["DPT": DPTBinary.path], timeout: 180)
      #expect(across.status == 0 && !across.timedOut, "\(across.stderr)")
      #expect(across.stderr.contains("on 2 hosts (dpt-hostA, dpt-hostB)"), "\(across.stderr)")
      #expect(across.stderr.contains("overlapped buckets of up to 256 KiB"), "\(across.stderr)")
      let local = DPTBinary.mpirun(2, run + ["--bucket-size", "262144"])
      #expect(local.status == 0)
      let a = try jsonObject(across.stdout), b = try jsonObject(local.stdout)
      for key in ["train_loss", "train_acc", "test_loss", "test_acc"] {
        #expect(a[key] as? Double == b[key] as? Double, "\(key): \(a[key]!) across two hosts, \(b[key]!) on one")
      }
      let status = Subprocess.run(["bash", cluster, "status"])
      #expect(status.stdout.contains("dpt-hostA"))
    }
  }
}
