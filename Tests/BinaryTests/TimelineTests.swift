import Foundation
import Testing
import _Support
import _TestSupport

extension BinaryTests {
  /// --timeline: every rank's spans in Chrome's trace format, one process per rank named by its host; --profile
  /// names the slowest rank of each epoch from every rank's compute time.
  @Suite struct TimelineTests {
    static let dir = TemporaryDirectory("dpt-timeline")

    @Test func everyRankSpansGatheredToRankZero() throws {
      let file = Self.dir.file("trace.json")
      let r = DPTBinary.mpirun(2, ["train", "--dataset", "mnist", "--hidden", "16", "--epochs", "2", "--checkpoint-dir",
                                   Self.dir.file("ck"), "--timeline", file, "--profile"])
      #expect(r.status == 0, "\(r.stderr)")
      #expect(r.stdout.components(separatedBy: "slowest: rank ").count == 3, "one straggler line an epoch: \(r.stdout)")
      let events = try #require(try JSON.parse(try String(contentsOfFile: file, encoding: .utf8))["traceEvents"]?.array)
      let names = events.filter { $0["name"]?.string == "process_name" }.compactMap { $0["args"]?["name"]?.string }
      #expect(names.count == 2 && names[0].hasPrefix("rank 0 on ") && names[1].hasPrefix("rank 1 on "), "\(names)")
      // 4,000 training rows in batches of 128: 32 steps an epoch, 64 in all.
      for rank in 0..<2 {
        let spans = events.filter { $0["ph"]?.string == "X" && $0["pid"]?.int == rank }
        func count(_ name: String) -> Int { spans.filter { $0["name"]?.string == name }.count }
        for phase in ["data", "forward", "loss", "backward", "exchange", "optimizer"] { #expect(count(phase) == 64, "rank \(rank) \(phase)") }
        #expect(count("evaluation") == 2 && count("checkpoint") == 2, "rank \(rank)")
        // A step's phases follow one another.
        let first = ["data", "forward", "loss", "backward", "exchange", "optimizer"].compactMap { name in
          spans.first { $0["name"]?.string == name }.flatMap { $0["ts"]?.double }
        }
        #expect(first.count == 6 && first == first.sorted() && first[0] >= 0, "rank \(rank): \(first)")
      }
    }
  }
}
