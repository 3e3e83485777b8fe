import Foundation
import Testing
import _Support
import _TestSupport

extension BinaryTests {
  /// The binary a cluster node runs: dpt's Debian package (scripts/package: the Swift runtime linked in) installed
  /// into a fresh Debian root that has no Swift toolchain (scripts/install-test: debootstrap, apt, chroot), trains
  /// the MNIST digits on 2 ranks there, and ends where the dpt the other tests run ends on the same job.
  @Suite struct InstallTests {
    /// debootstrap, chroot and mounts need root (CI runs as root; a user's scripts/test through sudo skips it).
    @Test(.enabled(if: getuid() == 0, "scripts/install-test needs root")) func thePackageTrainsInARootWithoutSwift() throws {
      let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      let r = Subprocess.run(["bash", root.appendingPathComponent("scripts/install-test").path], timeout: 1200)
      try #require(r.status == 0, "scripts/install-test: \(r.status)\n\(r.stderr.suffix(3000))")
      // Its report: the installed binary links nothing of Swift's, and --version names the commit.
      #expect(r.stderr.contains("libmpi.so.40") && r.stderr.contains("libopenblas.so.0") && !r.stderr.contains("libswiftCore"), "\(r.stderr)")
      #expect(r.stderr.contains("dpt 0.") && r.stderr.contains("(commit "), "\(r.stderr)")
      let inside = try JSON.parse(try #require(r.stdout.split(separator: "\n").last.map(String.init)))
      let here = DPTBinary.mpirun(2, ["train", "--dataset", "mnist", "--epochs", "2", "--seed", "1", "--json"])
      let mine = try JSON.parse(try #require(here.stdout.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init)))
      #expect(inside["status"]?.string == "finished" && inside["world_size"]?.int == 2 && inside["epoch"]?.int == 2, "\(inside)")
      let a = try #require(inside["train_loss"]?.double), b = try #require(mine["train_loss"]?.double)
      #expect(abs(a - b) <= 1e-9 * abs(b) && inside["test_acc"]?.double == mine["test_acc"]?.double,
              "the packaged dpt ends at \(a), the tested one at \(b)")
    }
  }
}
