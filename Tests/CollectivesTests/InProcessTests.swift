import Collectives
import Foundation
import Testing

@Suite struct InProcessTests {
  @Test(arguments: [1, 2, 3, 4])
  func allReduceSumMaxMin(size: Int) throws {
    let results = try InProcessGroup.run(size: size) { comm -> [[Double]] in
      var s = [Double(comm.rank), 1, -Double(comm.rank)]
      try comm.allReduce(&s, .sum)
      var mx = [Double(comm.rank) * 2, -1]
      try comm.allReduce(&mx, .max)
      var mn = [Int64(comm.rank) + 5]
      try comm.allReduce(&mn, .min)
      return [s, mx, [Double(mn[0])]]
    }
    let n = Double(size), total = Double(size * (size - 1) / 2)
    for r in results {
      #expect(r[0] == [total, n, -total])
      #expect(r[1] == [2 * (n - 1), -1])
      #expect(r[2] == [5])
    }
  }

  @Test func floatSumsAddInRankOrderOnEveryRank() throws {
    // 1e8 + 1 - 1e8 in Float depends on the order; every rank must get the same bits.
    let results = try InProcessGroup.run(size: 3) { comm -> Float in
      try comm.allReduce([Float(1e8), 1, -1e8][comm.rank], .sum)
    }
    #expect(Set(results.map(\.bitPattern)).count == 1)
  }

  @Test func broadcastAndAllGather() throws {
    let results = try InProcessGroup.run(size: 3) { comm -> ([Int32], [UInt8], [[UInt8]]) in
      var a: [Int32] = comm.rank == 1 ? [7, 8, 9] : [0, 0, 0]
      try comm.broadcast(&a, root: 1)
      let text = try comm.broadcast(bytes: comm.rank == 2 ? Array("hello".utf8) : [], root: 2)
      let all = try comm.allGather(Array(repeating: UInt8(comm.rank), count: comm.rank))
      return (a, text, all)
    }
    for r in results {
      #expect(r.0 == [7, 8, 9])
      #expect(String(decoding: r.1, as: UTF8.self) == "hello")
      #expect(r.2 == [[], [1], [2, 2]])
    }
  }

  @Test func splitMakesDisjointGroupsThatWorkIndependently() throws {
    let results = try InProcessGroup.run(size: 5) { comm -> (color: Int, rank: Int, size: Int, sum: Int64) in
      let color = comm.rank % 2
      let sub = try comm.split(color: color, key: -comm.rank)  // reversed order inside each group
      let sum = try sub.allReduce(Int64(comm.rank), .sum)
      return (color, sub.rank, sub.size, sum)
    }
    #expect(results.map(\.size) == [3, 2, 3, 2, 3])
    #expect(results.map(\.sum) == [6, 4, 6, 4, 6])
    #expect(results.map(\.rank) == [2, 1, 1, 0, 0])
  }

  @Test func sendAndReceive() throws {
    let results = try InProcessGroup.run(size: 3) { comm -> [String] in
      if comm.rank == 0 {
        var got: [String] = []
        for _ in 0..<2 {
          let m = try comm.receive(from: nil, tag: 9)
          got.append("\(m.source):\(String(decoding: m.bytes, as: UTF8.self))")
        }
        return got.sorted()
      }
      try comm.send(Array("from \(comm.rank)".utf8), to: 0, tag: 9)
      return []
    }
    #expect(results[0] == ["1:from 1", "2:from 2"])
  }

  struct Boom: Error {}

  /// One rank fails before a collective: the others must not hang in it.
  @Test func aFailingRankReleasesTheOthers() {
    let start = Date()
    #expect(throws: Boom.self) {
      _ = try InProcessGroup.run(size: 4) { comm -> Int in
        if comm.rank == 2 { throw Boom() }
        var x = [1.0]
        for _ in 0..<3 { try comm.allReduce(&x, .sum) }
        return 0
      }
    }
    #expect(Date().timeIntervalSince(start) < 5)
  }

  @Test func agreeGivesEveryRankTheLowestFailingRanksMessage() throws {
    struct Bad: Error, CustomStringConvertible { var description: String }
    let results = try InProcessGroup.run(size: 4) { comm -> String in
      do {
        _ = try comm.agree { () throws -> Int in
          if comm.rank >= 2 { throw Bad(description: "cannot read shard \(comm.rank)") }
          return 1
        }
        return "no error"
      } catch let e as RankFailure {
        return "\(e)"
      }
    }
    #expect(results == Array(repeating: "rank 2: cannot read shard 2", count: 4))
    let ok = try InProcessGroup.run(size: 3) { comm in try comm.agree { comm.rank * 10 } }
    #expect(ok == [0, 10, 20])
    let everyone = try InProcessGroup.run(size: 2) { comm -> String in
      do { _ = try comm.agree { () throws -> Int in throw Bad(description: "file missing") }; return "" } catch { return "\(error)" }
    }
    #expect(everyone == ["file missing", "file missing"])
  }

  @Test func localCommunicatorIsTheIdentity() throws {
    let comm = LocalCommunicator()
    var x: [Float] = [1, 2, 3]
    try comm.allReduce(&x, .sum)
    try comm.broadcast(&x, root: 0)
    #expect(x == [1, 2, 3])
    #expect(try comm.allGather([4]) == [[4]])
    #expect(comm.rank == 0 && comm.size == 1)
    let sub = try comm.split(color: 3, key: 0)
    #expect(sub.size == 1)
  }
}
