import Collectives
import Scaling
import Testing
import Training

@Suite struct ScalingTests {
  @Test func linksParse() {
    func close(_ a: Link?, _ latency: Double, _ bandwidth: Double) -> Bool {
      guard let a else { return false }
      return abs(a.latency - latency) <= 1e-15 * max(1, latency) && abs(a.bandwidth - bandwidth) <= 1e-6
    }
    #expect(close(Link("1gbit,50us"), 50e-6, 125e6))
    #expect(close(Link("10Gbit, 0.02ms"), 20e-6, 1.25e9))
    #expect(close(Link("125MB,1ms"), 1e-3, 125e6))
    #expect(close(Link("100mbit,5s"), 5, 12.5e6))
    for bad in ["1gbit", "fast,1us", "1gbit,soon", "-1gbit,1us", ""] { #expect(Link(bad) == nil, "\(bad)") }
  }

  /// 2 (p - 1) alpha + 2 (p - 1)/p n / B + (p - 1)/p n gamma, by hand: p = 4, n = 1 MB, B = 125 MB/s, alpha = 50 us.
  @Test func ringAllReduceCost() {
    let link = Link(latency: 50e-6, bandwidth: 125e6)
    let t = ScalingModel.allReduceSeconds(bytes: 1_000_000, ranks: 4, link: link, reduceSecondsPerByte: 1e-10)
    #expect(abs(t - (6 * 50e-6 + 1.5 * 0.008 + 0.75 * 1e-4)) < 1e-12)
    #expect(ScalingModel.allReduceSeconds(bytes: 1_000_000, ranks: 1, link: link, reduceSecondsPerByte: 1) == 0)
  }

  /// Every kind of collective is priced: a reduce-scatter then an all-gather of the same buffer is the ring
  /// all-reduce, and a bucket small enough goes in one direct round.
  @Test func collectivesArePriced() {
    let link = Link(latency: 50e-6, bandwidth: 125e6)
    func t(_ c: Collective, gamma: Double = 1e-10) -> Double { ScalingModel.seconds(of: c, ranks: 4, link: link, reduceSecondsPerByte: gamma) }
    let n = 1_000_000
    #expect(abs(t(.reduceScatter(bytes: n)) + t(.allGather(bytes: n / 4)) - t(.allReduce(bytes: n))) < 1e-12)
    #expect(t(.bucketReduction(bytes: n)) == t(.allReduce(bytes: n)))
    #expect(abs(t(.bucketReduction(bytes: 1000)) - (50e-6 + 3000 / 125e6 + 3000 * 1e-10)) < 1e-12)
  }

  /// A new codec's traffic comes from the method and the codec alone: top-k 1% sends about 2% of the float32
  /// buckets' bytes, bf16 half, in as many bucket reductions.
  @Test func codecTrafficFollowsTheCodec() throws {
    let network = try ModelSpec(kind: .mlp, hidden: [256]).build(inputShape: [784], outputs: 10, as: Float.self)
    func traffic(_ compression: String) throws -> ExchangeTraffic {
      let spec = ExchangeSpec(compression: try #require(Compression(compression)), bucketBytes: 1 << 20)
      return spec.method(deterministic: false, deterministicChunk: 1, ranks: 2, hosts: 2).traffic(for: network, ranks: 2, hosts: 2)
    }
    let exact = try traffic("none"), half = try traffic("bf16"), sparse = try traffic("topk:0.01")
    #expect(exact.collectives.count == half.collectives.count && half.collectives.count == sparse.collectives.count)
    #expect(abs(Double(half.bytes) / Double(exact.bytes) - 0.5) < 0.01)
    let ratio = Double(sparse.bytes) / Double(exact.bytes)
    #expect(ratio > 0.019 && ratio < 0.025, "\(ratio)")
  }

  /// A step: the compute of the per-rank batch, the optimizer, the exchange's own work and the exposed
  /// communication; overlapped buckets hide the backward pass after the first bucket, never the last bucket's time.
  @Test func stepPrediction() {
    func profile(_ b: Int) -> StepProfile {
      var t = PhaseTimes()
      t.forward = Double(b) * 1e-5
      t.backward = Double(b) * 1e-5
      t.optimizer = 1e-4
      return StepProfile(batch: b, times: t, backwardBeforeFirstBucket: 0.25)
    }
    let link = Link(latency: 0, bandwidth: 1e6)
    let oneRank = 100 / (2e-3 + 1e-4)
    let serial = ExchangeModel(name: "flat", traffic: ExchangeTraffic([.allReduce(bytes: 1000)], overlapsBackward: false),
                               localSeconds: 1e-4, reduceSecondsPerByte: 0)
    let a = ScalingModel.predict(ranks: 2, globalBatch: 100, exchange: serial, link: link, profile: profile,
                                 oneRankSamplesPerSecond: oneRank)
    // compute 50 x 2e-5 = 1e-3, optimizer 1e-4, own work 1e-4, communication 2 x 1/2 x 1000 / 1e6 = 1e-3.
    #expect(a.batchPerRank == 50 && abs(a.stepSeconds - 2.2e-3) < 1e-12)
    #expect(abs(a.efficiency - (100 / 2.2e-3) / (2 * oneRank)) < 1e-12)
    let overlapped = ExchangeModel(name: "buckets", traffic: ExchangeTraffic([.bucketReduction(bytes: 200), .bucketReduction(bytes: 800)], overlapsBackward: true),
                                   localSeconds: 0, reduceSecondsPerByte: 0)
    let b = ScalingModel.predict(ranks: 2, globalBatch: 100, exchange: overlapped, link: link, profile: profile,
                                 oneRankSamplesPerSecond: oneRank)
    // communication 1e-3, of which the backward after the first bucket (0.75 x 5e-4) hides 3.75e-4; the last
    // bucket alone takes 8e-4, so 8e-4 stays exposed.
    #expect(abs(b.communicationSeconds - 8e-4) < 1e-12 && abs(b.stepSeconds - (1e-3 + 1e-4 + 8e-4)) < 1e-12)
    // One rank: no communication, no exchange work.
    let one = ScalingModel.predict(ranks: 1, globalBatch: 100, exchange: serial, link: link, profile: profile,
                                   oneRankSamplesPerSecond: oneRank)
    #expect(abs(one.samplesPerSecond - oneRank) < 1e-6 && one.communicationSeconds == 0)
    // --accumulate 4: four micro-batches' compute, one optimizer step and one exchange a step, on four times the
    // samples: 4 x 1e-3 + 1e-4 + 1e-4 + 1e-3 for 400 samples.
    let four = ScalingModel.predict(ranks: 2, globalBatch: 100, microBatches: 4, exchange: serial, link: link, profile: profile,
                                    oneRankSamplesPerSecond: oneRank)
    #expect(abs(four.stepSeconds - 5.2e-3) < 1e-12 && abs(four.samplesPerSecond - 400 / 5.2e-3) < 1e-6)
    #expect(four.samplesPerSecond > a.samplesPerSecond, "fewer exchanges a sample")
  }
}
