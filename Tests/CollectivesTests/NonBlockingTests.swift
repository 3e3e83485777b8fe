import Collectives
import Foundation
import Testing

@Suite struct NonBlockingTests {
  /// Three all-reduces in flight at once, completed in the reverse order: each gets its own sum.
  @Test(arguments: [1, 2, 3])
  func allReducesInFlightCompleteInAnyOrder(size: Int) throws {
    let results = try InProcessGroup.run(size: size) { comm -> [[Double]] in
      var buffers = (0..<3).map { k in [Double(comm.rank + 1) * Double(k + 1), 1] }
      var requests: [any CollectiveRequest] = []
      for k in 0..<3 {
        requests.append(try buffers[k].withUnsafeMutableBufferPointer { try comm.startAllReduce($0, .sum) })
      }
      for r in requests.reversed() { try r.wait() }
      #expect(try requests.allSatisfy { try $0.test() })
      return buffers
    }
    let ranks = Double(size * (size + 1) / 2)
    for r in results { #expect(r == (0..<3).map { [ranks * Double($0 + 1), Double(size)] }) }
  }

  /// All-to-all with blocks of different sizes, and the in-place all-gather.
  @Test(arguments: [1, 2, 3])
  func allToAllAndAllGather(size: Int) throws {
    let results = try InProcessGroup.run(size: size) { comm -> ([UInt8], [UInt8]) in
      // Rank r sends j + 1 bytes of value 10 r + j to rank j.
      let sendCounts = (0..<size).map { $0 + 1 }
      let send = (0..<size).flatMap { j in [UInt8](repeating: UInt8(10 * comm.rank + j), count: j + 1) }
      var receive = [UInt8](repeating: 0, count: size * (comm.rank + 1))
      let a2a = try send.withUnsafeBytes { s in
        try receive.withUnsafeMutableBytes { r in
          try comm.startAllToAll(send: s.baseAddress!, sendCounts: sendCounts, receive: r.baseAddress!,
                                 receiveCounts: [Int](repeating: comm.rank + 1, count: size))
        }
      }
      try a2a.wait()
      // Rank r's block of the gather is r + 1 bytes of value r.
      var gathered = [UInt8](repeating: 255, count: size * (size + 1) / 2)
      let offset = comm.rank * (comm.rank + 1) / 2
      for i in 0...comm.rank { gathered[offset + i] = UInt8(comm.rank) }
      let gather = try gathered.withUnsafeMutableBytes { try comm.startAllGather($0.baseAddress!, counts: sendCounts) }
      while try !gather.test() {}
      return (receive, gathered)
    }
    for (rank, r) in results.enumerated() {
      #expect(r.0 == (0..<size).flatMap { k in [UInt8](repeating: UInt8(10 * k + rank), count: rank + 1) })
      #expect(r.1 == (0..<size).flatMap { k in [UInt8](repeating: UInt8(k), count: k + 1) })
    }
  }

  @Test func aFailingRankReleasesARankWaitingOnARequest() {
    #expect(throws: (any Error).self) {
      _ = try InProcessGroup.run(size: 2) { comm -> Int in
        if comm.rank == 1 { throw CollectiveError("rank 1 gives up") }
        var b = [1.0]
        let r = try b.withUnsafeMutableBufferPointer { try comm.startAllReduce($0, .sum) }
        try r.wait()
        return 0
      }
    }
  }

  /// The exact reductions give the sum the plain all-reduce gives, for sizes that do not divide evenly: small
  /// buckets in one direct phase, large ones in two. Both add the ranks' values in rank order, so they agree bitwise.
  @Test(arguments: [1, 2, 3, 4])
  func exactBucketsSumLikeTheAllReduce(size: Int) throws {
    for n in [11, 40_001] {
      try exactBucket(size: size, count: n)
    }
  }

  func exactBucket(size: Int, count n: Int) throws {
    let results = try InProcessGroup.run(size: size) { comm -> ([Double], [Double]) in
      let values = (0..<n).map { Double($0 * 7 + comm.rank * 3 % 5) / 3 }
      var bucket = values, plain = values
      let reduction = BucketReduction<Double>(communicator: comm, count: n, codec: nil)
      #expect(reduction.direct == (size == 1 || n == 11))
      for _ in 0..<2 {  // reused: the second round starts from the first's result
        try bucket.withUnsafeMutableBufferPointer { b in
          try reduction.start(b.baseAddress!)
          while try !reduction.progress() {}
        }
        try comm.allReduce(&plain)
      }
      return (bucket, plain)
    }
    for r in results { #expect(Reference.relative(r.0, r.1) < 1e-15) }
  }

  /// bfloat16 on the wire: every rank ends with the same bits, each value within bfloat16's rounding of the exact
  /// sum (each term rounded once, the sum once more, each by at most 2^-8 relative: |error| <= 2^-7 (sum of |terms|)), and the exact tail (the loss)
  /// is exact.
  @Test(arguments: [1, 2, 3], [1001, 40_001])
  func bfloat16RoundTripsWithinItsPrecision(size: Int, n: Int) throws {
    func term(_ i: Int, _ rank: Int) -> Float {
      let s = Float(sin(Double(i * (rank + 2))))
      return s * Float(1 << (i % 20)) / 1000
    }
    let results = try InProcessGroup.run(size: size) { comm -> [Float] in
      var x = (0..<n).map { term($0, comm.rank) }
      x[n - 1] = 1 + Float(comm.rank) * 1e-7  // the tail: bf16 would round it to 1
      let reduction = BucketReduction<Float>(communicator: comm, count: n, codec: BFloat16Codec(), exactTail: 1)
      try x.withUnsafeMutableBufferPointer { b in
        try reduction.start(b.baseAddress!)
        try reduction.wait()
      }
      #expect(reduction.direct == (size == 1 || n == 1001))
      // Two phases send 2 (p-1)/p of the bucket, at 2 bytes a value rather than 4.
      let exactBytes = n * 4 * 2 * (size - 1) / size
      #expect(reduction.direct || reduction.bytesSent < exactBytes * 6 / 10)
      return x
    }
    let bits: [[UInt32]] = results.map { $0.map { $0.bitPattern } }
    for b in bits.dropFirst() { #expect(b == bits[0]) }
    for i in 0..<(n - 1) {
      var exact = 0.0, magnitude = 0.0
      for k in 0..<size {
        let v = Double(term(i, k))
        exact += v
        magnitude += abs(v)
      }
      #expect(abs(Double(results[0][i]) - exact) <= magnitude / 128 + 1e-30, "element \(i)")
    }
    let tail = (0..<size).reduce(0.0) { $0 + Double(1 + Float($1) * 1e-7) }
    #expect(abs(Double(results[0][n - 1]) - tail) < 1e-6)
  }

  /// float16 on the wire: a block's power-of-two scale keeps values far outside half precision's range (1e-9, 1e6)
  /// from underflowing or overflowing.
  @Test func float16ScalesItsBlocks() throws {
    for magnitude in [1e-9, 1e6] as [Float] {
      let results = try InProcessGroup.run(size: 2) { comm -> [Float] in
        var x = (0..<64).map { Float($0 + 1) * magnitude * (comm.rank == 0 ? 1 : -0.5) }
        let reduction = BucketReduction<Float>(communicator: comm, count: 64, codec: Float16Codec())
        try x.withUnsafeMutableBufferPointer { b in
          try reduction.start(b.baseAddress!)
          try reduction.wait()
        }
        return x
      }
      for (i, v) in results[0].enumerated() {
        let exact = Float(i + 1) * magnitude * 0.5
        #expect(abs(v - exact) <= exact / 1000, "\(magnitude): element \(i) is \(v), the sum \(exact)")
      }
    }
  }

  /// Top-k keeps the ceil(F n) values largest in magnitude (ties in index order, NaN above every number) and
  /// decodes the rest as zeros; a block's bytes are its entries and nothing more.
  @Test func topKKeepsTheLargestValues() throws {
    let codec = try #require(TopKCodec.parse("topk:0.25"))
    #expect(TopKCodec.parse("topk:0") == nil && TopKCodec.parse("topk:1.5") == nil && TopKCodec.parse("topk") == nil)
    #expect(codec.kept(10) == 3 && codec.kept(1) == 1 && codec.kept(0) == 0 && codec.blockBytes(count: 10) == 8 + 3 * 8)
    func roundTrip(_ x: [Float]) -> [Float] {
      var block = [UInt8](repeating: 0xAB, count: codec.blockBytes(count: x.count))
      var y = [Float](repeating: 7, count: x.count)
      block.withUnsafeMutableBytes { b in
        codec.encode(x, count: x.count, into: b.baseAddress!)
        y.withUnsafeMutableBufferPointer { codec.decode(UnsafeRawPointer(b.baseAddress!), count: x.count, into: $0.baseAddress!) }
      }
      return y
    }
    #expect(roundTrip([1, -9, 3, 0.5, 8, -2, 0, 4, -7, 6]) == [0, -9, 0, 0, 8, 0, 0, 0, -7, 0])
    #expect(roundTrip([2, -2, 2, 2, 1, 2, 0, 0, 0, 0]) == [2, -2, 2, 0, 0, 0, 0, 0, 0, 0])
    let withNaN = roundTrip([1, .nan, 3, 0, 0, 0, 0, 0, 9, 0])
    #expect(withNaN[1].isNaN && withNaN[8] == 9 && withNaN[2] == 3 && withNaN[0] == 0)
    // The k-th largest agrees with sorting, on random blocks of every size up to 300.
    var g = SystemRandomNumberGenerator()
    for n in 1...300 {
      let x = (0..<n).map { _ in Float(Int.random(in: -20...20, using: &g)) / 4 }
      for k in [1, (n + 1) / 2, n] {
        let t = x.withUnsafeBufferPointer { TopKCodec.largest(k, of: $0.baseAddress!, count: n) }
        #expect(t == x.map { abs($0) }.sorted(by: >)[k - 1], "n \(n), k \(k)")
      }
    }
  }

  /// Top-k drops most of a step's values but, with error feedback, delays rather than loses them: after T steps of
  /// the same gradients the sum of what every rank received approaches T times the exact sum, where one step alone
  /// is far from it. Every rank receives the same bits, and a step sends a few percent of the float32 bytes.
  @Test(arguments: [1, 2, 3])
  func topKFeedsBackWhatItDropped(size: Int) throws {
    let n = 40_001, steps = 60
    func term(_ i: Int, _ rank: Int) -> Float { Float(sin(Double(i * (rank + 3)) * 0.37)) * Float(1 + i % 7) }
    let codec = try #require(TopKCodec(fraction: 0.05))
    let results = try InProcessGroup.run(size: size) { comm -> (first: [Float], total: [Double], bytes: Int) in
      let reduction = BucketReduction<Float>(communicator: comm, count: n, codec: codec, exactTail: 1)
      var first: [Float] = [], total = [Double](repeating: 0, count: n)
      for step in 0..<steps {
        var x = (0..<n).map { term($0, comm.rank) }
        x[n - 1] = 1
        try x.withUnsafeMutableBufferPointer { b in
          try reduction.start(b.baseAddress!)
          try reduction.wait()
        }
        if step == 0 { first = x }
        for i in 0..<n { total[i] += Double(x[i]) }
        #expect(x[n - 1] == Float(size), "the loss travels exactly")
      }
      return (first, total, reduction.bytesSent)
    }
    for r in results.dropFirst() { #expect(r.total == results[0].total && r.first == results[0].first) }
    let exact = (0..<(n - 1)).map { i in (0..<size).reduce(0.0) { $0 + Double(term(i, $1)) } }
    func error(_ got: [Double], times t: Double) -> Double {
      zip(got, exact).map { abs($0 - t * $1) }.reduce(0, +) / exact.map { abs(t * $0) }.reduce(0, +)
    }
    let once = error(results[0].first.dropLast().map(Double.init), times: 1)
    let averaged = error(Array(results[0].total.dropLast()), times: Double(steps))
    #expect(once > 0.5 && averaged < once / 5, "one step \(once), \(steps) steps \(averaged)")
    if size > 1 { #expect(results[0].bytes < n * 4 * 2 * (size - 1) / size / 5) }
  }

  /// The 16-bit codes: exact on values they can hold, nearest-even rounding, infinities and NaN kept.
  @Test func wireCodes() {
    for v: Float in [0, 1, -2, 0.5, 65504, 6.1035156e-05, 5.9604645e-08, -3.0517578e-05] {
      #expect(WireCodes.value(float16: WireCodes.float16(v)) == v, "float16 \(v)")
    }
    for v: Float in [0, 1, -2, 0x1p127, 0x1p-126, 0.15625, -0x1.fep100] {
      #expect(WireCodes.value(bfloat16: WireCodes.bfloat16(v)) == v, "bfloat16 \(v)")
    }
    // Near 1 float16's spacing is 2^-10: half of it is a tie, to the even neighbour 1; one and a half ulps is a
    // tie between 1 + 2^-10 (odd) and 1 + 2^-9 (even); three quarters of one rounds up.
    #expect(WireCodes.value(float16: WireCodes.float16(1 + 0x1p-11)) == 1)
    #expect(WireCodes.value(float16: WireCodes.float16(1 + 3 * 0x1p-11)) == 1 + 0x1p-9)
    #expect(WireCodes.value(float16: WireCodes.float16(1 + 3 * 0x1p-12)) == 1 + 0x1p-10)
    #expect(WireCodes.value(float16: WireCodes.float16(70000)) == .infinity)
    #expect(WireCodes.value(float16: WireCodes.float16(-.infinity)) == -.infinity)
    #expect(WireCodes.value(float16: WireCodes.float16(.nan)).isNaN)
    #expect(WireCodes.value(bfloat16: WireCodes.bfloat16(.nan)).isNaN)
    #expect(WireCodes.value(bfloat16: WireCodes.bfloat16(1 + 1.0 / 256)) == 1)  // a tie: to even
    // Every float16 code decodes to a value that encodes back to the same code (NaNs to the quiet NaN).
    for c in 0...UInt16.max {
      let v = WireCodes.value(float16: c)
      if !v.isNaN { #expect(WireCodes.float16(v) == c, "code \(c)") }
    }
  }
}

enum Reference {
  static func relative(_ a: [Double], _ b: [Double]) -> Double {
    zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
  }
}
