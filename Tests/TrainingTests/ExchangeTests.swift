import Collectives
import Datasets
import Foundation
import Layers
import Optimizers
import Testing
import TensorCore
import Training
import _Support
import _TestSupport

@Suite struct ExchangeTests {
  func config(_ exchange: ExchangeSpec, epochs: Int = 2) -> TrainingConfig {
    var c = TrainingConfig(model: ModelSpec(kind: .mlp, hidden: [12, 7], activation: .tanh),
                           loss: .crossEntropy, optimizer: OptimizerSpec(learningRate: 0.2, momentum: 0.9, weightDecay: 1e-3),
                           batchSize: 16, epochs: epochs, seed: 11)
    c.exchange = exchange
    return c
  }

  /// The reducer `spec` chooses for `network` on `comm` (with a line-search optimizer, so the step is not sharded).
  func reducer<T: TrainingScalar>(_ spec: ExchangeSpec, _ network: Network<T>, _ comm: any Communicator, seed: UInt64 = 0) throws
    -> any Reducer<T>
  {
    try spec.method(deterministic: false, deterministicChunk: 1, ranks: comm.size, hosts: comm.hostCount)
      .makeReducer(for: network, communicator: comm, seed: seed, shardStep: false)
  }

  /// Runs one step of `reducer` with the gradient `values` (P) and loss sum `loss`: the reduced gradient and loss.
  func reduce<T: TrainingScalar>(_ reducer: any Reducer<T>, _ network: Network<T>, _ values: [T], loss: Double) throws -> ([T], Double) {
    let buffer = reducer.begin(pieces: 1, piecesInBatch: 1)[0]
    for (i, v) in values.enumerated() { buffer[i] = v }
    reducer.setLossSums([loss])
    for block in network.gradientBlocks(blockElements: reducer.blockElements) { reducer.ready(block) }
    let lossSum = try reducer.finish()
    return (Array(reducer.gradient), lossSum)
  }

  /// Parameters after training on `size` in-process ranks; every replica must hold the same bits.
  func train<T: TrainingScalar>(_ type: T.Type, size: Int, hosts: Int = 1, _ c: TrainingConfig,
                                data: DataSplit = syntheticImages(count: 50), exchange: ((String) -> Void)? = nil) throws -> [T]
  {
    let results = try InProcessGroup.run(size: size, hosts: hosts) { comm -> [T] in
      let t = try Trainer<T>(config: c, data: data, communicator: comm)
      if comm.rank == 0 { exchange?(t.reducer.summary) }
      for _ in 0..<c.epochs { try t.trainEpoch() }
      return t.parameters
    }
    for r in results.dropFirst() { #expect(r == results[0], "every replica applies the same bits") }
    return results[0]
  }

  func relative<T: BinaryFloatingPoint>(_ a: [T], _ b: [T]) -> Double {
    let scale = b.map { abs(Double($0)) }.max()!
    return zip(a, b).map { abs(Double($0) - Double($1)) }.max()! / scale
  }

  /// Overlapped buckets (tiny ones: the 36 x 12 weight gradient is cut into blocks of rows, and a short last batch of
  /// 2 samples leaves some ranks without any) give the flat all-reduce's result: in Double up to summation order.
  /// A wider first layer (36 x 512: 150 KB of Double gradient) puts the large buckets on the two-phase path.
  @Test(arguments: [2, 3, 4])
  func bucketsEqualTheFlatAllReduce(size: Int) throws {
    for hidden in [[12, 7], [512]] {
      var base = config(ExchangeSpec(bucketBytes: 0))
      base.model.hidden = hidden
      let flat = try train(Double.self, size: 1, base)
      for bytes in [64, 256, 1 << 20] {
        var c = base
        c.exchange = ExchangeSpec(bucketBytes: bytes)
        let buckets = try train(Double.self, size: size, c)
        #expect(relative(buckets, flat) < 1e-13, "buckets of \(bytes) bytes on \(size) ranks, hidden \(hidden)")
      }
    }
  }

  /// Ranks of one host (the default when a host runs several) sum through shared memory and each steps its shard of
  /// one shared parameter buffer; across pretended hosts each shard crosses to the same local rank of the others.
  /// The result is the plain exchange's: bitwise (both add the ranks' gradients in rank order, on one host), and in
  /// Double up to summation order against one rank. Hosts with unequal rank counts fall back to the messages.
  @Test(arguments: [(2, 1), (3, 1), (4, 1), (4, 2), (6, 3), (3, 2)])
  func sharedMemoryEqualsThePlainExchange(size: Int, hosts: Int) throws {
    for kind in [OptimizerKind.sgd, .adam, .lbfgs] {
      var c = config(ExchangeSpec())
      c.optimizer = OptimizerSpec(kind: kind, learningRate: kind == .lbfgs ? 1 : kind == .adam ? 0.01 : 0.2,
                                  momentum: kind == .sgd ? 0.9 : 0, weightDecay: 1e-3)
      c.batchSize = kind == .lbfgs ? 50 : 16
      var summary = ""
      let shared = try train(Double.self, size: size, hosts: hosts, c) { summary = $0 }
      let even = size % hosts == 0
      #expect(summary.contains("shared memory (\(size / hosts) ranks a host") == even, "\(summary)")
      #expect(summary.contains("sharded optimizer step") == (even && kind != .lbfgs), "\(summary)")
      #expect(summary.contains("across \(hosts) hosts") == (even && hosts > 1), "\(summary)")
      c.exchange = ExchangeSpec(bucketBytes: 0)
      let one = try train(Double.self, size: 1, c)
      #expect(relative(shared, one) < 1e-12, "\(kind) on \(size) ranks, \(hosts) hosts")
      if hosts == 1 {
        c.exchange = ExchangeSpec(sharedMemory: false)
        var f = c
        f.exchange = ExchangeSpec()
        #expect(try train(Float.self, size: size, f) == (try train(Float.self, size: size, c)), "\(kind) on \(size) ranks")
      }
    }
  }

  /// With --compress bf16 and --shared-memory the shards cross hosts in 16 bits: repeatable, close to exact.
  @Test func sharedMemoryShardsCrossHostsCompressed() throws {
    var summary = ""
    let spec = ExchangeSpec(compression: .bfloat16, sharedMemory: true)
    let a = try train(Float.self, size: 4, hosts: 2, config(spec)) { summary = $0 }
    let b = try train(Float.self, size: 4, hosts: 2, config(spec))
    let exact = try train(Float.self, size: 4, hosts: 2, config(ExchangeSpec()))
    #expect(summary.hasSuffix("across 2 hosts as bf16"), "\(summary)")
    #expect(a == b && a != exact)
    #expect(relative(a, exact) < 0.05)
  }

  /// The buckets are cut from the order the backward pass finishes the gradient: the loss slot and the last layer
  /// first, a large weight gradient in blocks of whole rows, contiguous and descending, covering everything once.
  @Test func bucketPlanFollowsTheBackwardPass() throws {
    let network: Network<Float> = try ModelSpec(kind: .mlp, hidden: [64], activation: .relu).build(inputShape: [100], outputs: 10)
    let P = network.parameterCount  // 100 x 64 + 64 + 64 x 10 + 10 = 7114
    let buckets = try #require(try reducer(ExchangeSpec(bucketBytes: 4 * 1024), network, LocalCommunicator()) as? BucketedReducer<Float>).buckets
    #expect(buckets.first!.upperBound == P + 1 && buckets.last!.lowerBound == 0)
    for (a, b) in zip(buckets, buckets.dropFirst()) { #expect(b.upperBound == a.lowerBound) }
    #expect(buckets.allSatisfy { $0.count <= 1024 } || buckets.filter { $0.count > 1024 }.count <= 1)
    // The first layer's 100 x 64 weight gradient is split in blocks of 16 rows (1024 elements), from the last row up.
    #expect(buckets.contains(5376..<6400) && buckets.contains(4352..<5376) && buckets.contains(0..<256))
    #expect(buckets.count >= 7)
  }

  /// The traffic `dpt scaling` models is what the reducers send: on two ranks a bucket's two phases move one copy
  /// of it (a ring all-reduce's 2 (p - 1) / p), so the bytes sent equal the modelled bytes; the flat all-reduce is
  /// modelled as a ring.
  @Test(arguments: [ExchangeSpec(bucketBytes: 0), ExchangeSpec(bucketBytes: 4 * 1024), ExchangeSpec(compression: .bfloat16)])
  func theTrafficModelIsWhatTheReducerSends(spec: ExchangeSpec) throws {
    let network: Network<Float> = try ModelSpec(kind: .mlp, hidden: [64], activation: .relu).build(inputShape: [100], outputs: 10)
    let traffic = spec.method(deterministic: false, deterministicChunk: 1, ranks: 2, hosts: 2).traffic(for: network, ranks: 2, hosts: 2)
    let sent = try InProcessGroup.run(size: 2, hosts: 2) { comm -> Int in
      let r: any Reducer<Float> = try self.reducer(spec, network, comm)
      _ = try self.reduce(r, network, [Float](repeating: 0.5, count: network.parameterCount), loss: 1)
      return r.bytesSent
    }
    #expect(sent[0] == sent[1])
    #expect(sent[0] == traffic.bytes, "\(spec): sent \(sent[0]) bytes, modelled \(traffic.bytes)")
    #expect(traffic.overlapsBackward == (spec.bucketBytes != 0))
  }

  /// --timeline draws every bucket of every step, from its start to its end, on a track of its own beside the
  /// step's phases, and each starts before the backward pass of its step ends (but for the last).
  @Test func theTimelineHasEveryBucket() throws {
    var c = config(ExchangeSpec(bucketBytes: 4 * 1024), epochs: 1)
    c.batchSize = 25
    c.model.hidden = [256, 64]  // 19 KB of gradient: several buckets of 4 KiB
    let spans = try InProcessGroup.run(size: 2) { comm -> [Timeline.Span] in
      let t = try Trainer<Float>(config: c, data: syntheticImages(count: 50), communicator: comm)
      t.timeline = Timeline()
      try t.trainEpoch()
      return t.timeline!.spans
    }[0]
    let buckets = spans.filter { $0.category == "exchange" && $0.track == 1 }
    let steps = spans.filter { $0.name == "backward" }.count
    #expect(steps == 2)
    let perStep = try #require(buckets.first.flatMap { Int($0.name.split(separator: " ")[3]) })
    #expect(perStep >= 2 && buckets.count == perStep * steps, "\(buckets.map(\.name))")
    #expect(buckets.allSatisfy { $0.end >= $0.start })
    let firstBackward = try #require(spans.first { $0.name == "backward" })
    #expect(buckets[0].start < firstBackward.end, "the first bucket starts while the backward pass runs")
  }

  /// 16-bit values on the wire: not the exact sum, but every replica applies the same bits, a run repeats bitwise
  /// for the same seed and world size, and it stays close to the exact run.
  @Test(arguments: [Compression.bfloat16, .float16])
  func sixteenBitExchangesRepeatAndStayClose(compression: Compression) throws {
    let exact = try train(Float.self, size: 2, config(ExchangeSpec(bucketBytes: 0)))
    let a = try train(Float.self, size: 2, config(ExchangeSpec(compression: compression)))
    let b = try train(Float.self, size: 2, config(ExchangeSpec(compression: compression)))
    #expect(a == b)
    #expect(a != exact)
    #expect(relative(a, exact) < (compression == .bfloat16 ? 0.05 : 0.01), "\(compression)")
  }

  /// config.json names the compression as `--compress` spells it, and reads the keyed form earlier versions wrote.
  @Test func compressionIsWrittenAsItsSpelling() throws {
    for text in ["none", "bf16", "fp16", "topk:0.01", "powersgd:3"] {
      let c = try #require(Compression(text))
      let json = String(decoding: try JSONEncoder().encode([c]), as: UTF8.self)
      #expect(json == "[\"\(text)\"]")
      #expect(try JSONDecoder().decode([Compression].self, from: Data(json.utf8)) == [c])
    }
    let earlier = #"[{"none":{}}, {"bfloat16":{}}, {"float16":{}}, {"powerSGD":{"rank":2}}]"#
    #expect(try JSONDecoder().decode([Compression].self, from: Data(earlier.utf8)) == [.none, .bfloat16, .float16, .powerSGD(rank: 2)])
    #expect(throws: DecodingError.self) { try JSONDecoder().decode([Compression].self, from: Data(#"["gzip"]"#.utf8)) }
    #expect(Compression("topk:2") == nil && Compression("bf17") == nil)
  }

  /// Top-k with error feedback: every replica applies the same bits, a run repeats bitwise, and it trains: the
  /// training loss falls to a few times the exact run's (1.08 untrained, 0.059 top-k 10%, 0.027 exact when written).
  @Test func topKTrains() throws {
    var c = config(ExchangeSpec(compression: try #require(Compression("topk:0.1"))), epochs: 4)
    c.optimizer = OptimizerSpec(learningRate: 0.1, momentum: 0.9)
    let data = syntheticImages(count: 50)
    func loss(_ c: TrainingConfig) throws -> [Double] {
      try InProcessGroup.run(size: 2) { comm -> Double in
        let t = try Trainer<Float>(config: c, data: data, communicator: comm)
        for _ in 0..<c.epochs { try t.trainEpoch() }
        return try t.evaluate(data.train)!.loss
      }
    }
    let a = try train(Float.self, size: 2, c), b = try train(Float.self, size: 2, c)
    #expect(a == b)
    var exact = c
    exact.exchange = ExchangeSpec(bucketBytes: 0)
    let untrained = try InProcessGroup.run(size: 1) { comm in
      try Trainer<Float>(config: c, data: data, communicator: comm).evaluate(data.train)!.loss
    }[0]
    let sparse = try loss(c)[0], full = try loss(exact)[0]
    #expect(sparse < untrained / 5 && sparse < full * 4, "untrained \(untrained), top-k \(sparse), exact \(full)")
  }

  /// The network of the PowerSGD tests: one dense layer, a 40 x 30 weight (compressible at ranks up to 8) and a bias.
  func denseLayer() throws -> Network<Double> {
    try ModelSpec(kind: .linear).build(inputShape: [40], outputs: 30)
  }

  /// Runs one exchange of `gradients(rank)` (P + 1 values with the loss last) on `size` in-process ranks.
  func exchange(_ spec: ExchangeSpec, size: Int, steps: Int = 1, _ gradients: @escaping (Int, Int) -> [Double]) throws
    -> [[Double]]
  {
    let network = try denseLayer()
    return try InProcessGroup.run(size: size) { comm -> [Double] in
      let e = try self.reducer(spec, network, comm, seed: 3)
      var out: [Double] = []
      for step in 0..<steps {
        let g = gradients(comm.rank, step)
        let (sum, loss) = try self.reduce(e, network, Array(g.dropLast()), loss: g.last!)
        out = sum + [loss]
      }
      return out
    }
  }

  /// A rank-r gradient u v^T (40 x 30) on each rank, a bias and a loss: P + 1 values.
  func lowRank(_ rank: Int, step: Int, terms: Int) -> [Double] {
    var rng = RandomSource(seed: UInt64(100 * rank + step), stream: 9)
    var w = [Double](repeating: 0, count: 40 * 30)
    for _ in 0..<terms {
      let u = (0..<40).map { _ in rng.uniform(-1, 1) }, v = (0..<30).map { _ in rng.uniform(-1, 1) }
      for i in 0..<40 { for j in 0..<30 { w[i * 30 + j] += u[i] * v[j] } }
    }
    return w + (0..<30).map { _ in rng.uniform(-1, 1) } + [Double(rank + 1)]
  }

  func plainSum(size: Int, step: Int = 0, terms: Int) -> [Double] {
    (0..<size).map { lowRank($0, step: step, terms: terms) }.reduce([Double](repeating: 0, count: 40 * 30 + 31)) {
      zip($0, $1).map(+)
    }
  }

  /// PowerSGD of a matrix whose rank is at most R is exact: two ranks with rank-1 gradients sum to rank 2, and
  /// rank-2 PowerSGD returns that sum (the bias and the loss travel uncompressed, exactly).
  @Test func powerSGDOfALowRankMatrixIsExact() throws {
    let out = try exchange(ExchangeSpec(compression: .powerSGD(rank: 2), warmupSteps: 0), size: 2) { r, s in
      self.lowRank(r, step: s, terms: 1)
    }
    let expected = plainSum(size: 2, terms: 1)
    #expect(out[0] == out[1])
    #expect(Reference.maxRelativeDifference(out[0], expected) < 1e-10)
    // A rank-3 sum is not: rank-2 PowerSGD leaves an error behind.
    let lossy = try exchange(ExchangeSpec(compression: .powerSGD(rank: 2), warmupSteps: 0), size: 3) { r, s in
      self.lowRank(r, step: s, terms: 1)
    }
    #expect(Reference.maxRelativeDifference(lossy[0], plainSum(size: 3, terms: 1)) > 1e-3)
  }

  /// Error feedback: what a step leaves out is added back the next step, so over k steps the applied gradients sum
  /// to the true sum minus only the last step's errors; with the same gradient every step the average converges.
  @Test func powerSGDErrorFeedbackCatchesUp() throws {
    let spec = ExchangeSpec(compression: .powerSGD(rank: 1), warmupSteps: 0)
    let truth = plainSum(size: 2, terms: 3)
    var applied: [[Double]] = []
    for steps in [1, 30] {
      let sums = try InProcessGroup.run(size: 2) { comm -> [Double] in
        let network = try self.denseLayer()
        let e = try self.reducer(spec, network, comm, seed: 3)
        var total = [Double](repeating: 0, count: network.parameterCount + 1)
        for _ in 0..<steps {
          let g = self.lowRank(comm.rank, step: 0, terms: 3)
          let (sum, loss) = try self.reduce(e, network, Array(g.dropLast()), loss: g.last!)
          total = zip(total, sum + [loss]).map(+)
        }
        return total.map { $0 / Double(steps) }
      }
      applied.append(sums[0])
    }
    let one = Reference.maxRelativeDifference(applied[0], truth), many = Reference.maxRelativeDifference(applied[1], truth)
    #expect(one > 0.05, "a rank-1 approximation of a rank-6 sum is far off")
    #expect(many < one / 5, "the average over 30 steps with error feedback (\(many)) beats one step (\(one))")
  }

  /// The warm-up steps are the plain exchange.
  @Test func powerSGDStartsUncompressed() throws {
    let out = try exchange(ExchangeSpec(compression: .powerSGD(rank: 1), warmupSteps: 2), size: 2, steps: 2) { r, s in
      self.lowRank(r, step: s, terms: 3)
    }
    #expect(Reference.maxRelativeDifference(out[0], plainSum(size: 2, step: 1, terms: 3)) < 1e-14)
  }

  /// A PowerSGD run trains: every replica holds the same bits, runs repeat bitwise, and the loss falls.
  @Test func powerSGDTrainsTheSameReplicas() throws {
    var c = config(ExchangeSpec(compression: .powerSGD(rank: 2), warmupSteps: 1), epochs: 3)
    c.model.hidden = [24]
    let a = try train(Float.self, size: 2, c), b = try train(Float.self, size: 2, c)
    #expect(a == b)
    let data = syntheticImages(count: 50)
    let losses = try InProcessGroup.run(size: 2) { comm -> [Double] in
      let t = try Trainer<Float>(config: c, data: data, communicator: comm)
      let before = try t.evaluate(data.train)!.loss
      for _ in 0..<c.epochs { try t.trainEpoch() }
      return [before, try t.evaluate(data.train)!.loss]
    }
    #expect(losses[0][1] < losses[0][0] * 0.8, "\(losses[0])")
  }

  /// L-BFGS and sweeps take whichever exchange the run chooses: bf16 L-BFGS keeps the replicas equal.
  @Test func lbfgsRunsOnACompressedExchange() throws {
    var c = config(ExchangeSpec(compression: .bfloat16))
    c.optimizer = OptimizerSpec(kind: .lbfgs, learningRate: 1)
    c.batchSize = 50
    let p = try train(Float.self, size: 3, c)
    #expect(p.allSatisfy { $0.isFinite })
  }

  /// `--trace` records the gradient every rank applies, whole, under every exact exchange and any number of ranks
  /// and hosts: the same values as one rank's trace (in Double, up to summation order). Under shared memory with a
  /// sharded optimizer step each rank's slot holds the full sum over its own shard only, and the trace once wrote
  /// rank 0's partial sums for the other shards (issue 28, item 1).
  @Test func theTraceIsOneRanksUnderEveryExchange() throws {
    let data = Fixtures.regression(count: 24)
    func trace(_ exchange: ExchangeSpec, deterministic: Bool = false, size: Int, hosts: Int = 1) throws -> [JSON] {
      var c = TrainingConfig(model: ModelSpec(layers: try LayerList.parse("dense(3), relu, dense(1), tanh")), loss: .halfMSE,
                             optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.5), batchSize: 8, epochs: 1, seed: 3)
      c.lossReduction = .sum
      c.exchange = exchange
      c.deterministic = deterministic
      c.deterministicChunk = 2
      let lines = try InProcessGroup.run(size: size, hosts: hosts) { comm -> [String] in
        var out: [String] = []
        let t = try Trainer<Double>(config: c, data: data, communicator: comm)
        t.trace = StepTrace(steps: 3, limit: nil, write: comm.rank == 0 ? { out.append($0) } : nil)
        try t.trainEpoch()
        return out
      }
      return try lines[0].map { try JSON.parse($0) }
    }
    func numbers(_ j: JSON) -> [Double] {
      switch j {
      case .number(let x): [x]
      case .array(let a): a.flatMap(numbers)
      case .object(let o): o.flatMap { numbers($0.1) }
      default: []
      }
    }
    let one = try trace(ExchangeSpec(), size: 1)
    #expect(one.count == 3 * 5 && one[2]["grad_bias"] != nil)
    let cases: [(String, ExchangeSpec, Bool, Int, Int)] = [
      ("shared memory", ExchangeSpec(), false, 2, 1), ("shared memory", ExchangeSpec(), false, 3, 1),
      ("shared memory, 2 hosts", ExchangeSpec(), false, 4, 2), ("flat", ExchangeSpec(bucketBytes: 0, sharedMemory: false), false, 2, 1),
      ("buckets", ExchangeSpec(bucketBytes: 64, sharedMemory: false), false, 3, 1), ("deterministic", ExchangeSpec(), true, 3, 1),
    ]
    for (name, exchange, deterministic, size, hosts) in cases {
      let other = try trace(exchange, deterministic: deterministic, size: size, hosts: hosts)
      #expect(other.count == one.count, "\(name) on \(size) ranks")
      for (a, b) in zip(one, other) {
        #expect(a.keys == b.keys, "\(name) on \(size) ranks: \(b.keys ?? [])")
        let (x, y) = (numbers(a), numbers(b))
        #expect(x.count == y.count && Reference.maxRelativeDifference(y, x) < 1e-12,
                "\(name) on \(size) ranks, \(a["name"]?.string ?? "loss") of step \(a["step"]?.int ?? 0): \(b.serialized()) against \(a.serialized())")
      }
    }
  }
}
