import Foundation
import Testing
import _TestSupport

extension BinaryTests {
  @Suite struct ScalingCommandTests {
    /// `dpt scaling` measures this machine and predicts every exchange for each rank count; the JSON has a row per
    /// (ranks, exchange), one rank's row at 100% efficiency.
    @Test func predictsEveryExchange() throws {
      let r = DPTBinary.run(["scaling", "--dataset", "mnist", "--hidden", "32", "--link", "1gbit,50us", "--ranks", "1,2,8",
                             "--json"])
      #expect(r.status == 0, "\(r.stderr)")
      let o = try jsonObject(r.stdout)
      let rows = try #require(o["predictions"] as? [[String: Any]])
      #expect(rows.count == 3 * 4)
      for row in rows where row["ranks"] as? Double == 1 { #expect(abs((row["efficiency"] as? Double ?? 0) - 1) < 1e-9) }
      #expect(r.stderr.contains("powersgd:4") && r.stderr.contains("link: 1 Gbit/s, 50 us (given)"), "\(r.stderr)")
      let bad = DPTBinary.run(["scaling", "--dataset", "mnist", "--link", "fast"])
      #expect(bad.status != 0 && bad.stderr.contains("--link 'fast': use RATE,LATENCY"), "\(bad.stderr)")
      let none = DPTBinary.run(["scaling", "--dataset", "mnist"])
      #expect(none.status != 0 && none.stderr.contains("--measure-link"), "\(none.stderr)")
    }

    /// --measure-link ping-pongs between ranks 0 and 1; on one host it says that this is shared memory.
    @Test func measuresTheLinkUnderMPI() throws {
      let r = DPTBinary.mpirun(2, ["scaling", "--dataset", "mnist", "--hidden", "32", "--measure-link", "--ranks", "1,2"])
      #expect(r.status == 0, "\(r.stderr)")
      #expect(r.stdout.contains("ping-pong, one way: 8 B") && r.stdout.contains("shared memory, not a network"), "\(r.stdout)")
    }
  }
}
