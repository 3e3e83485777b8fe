import Training
import Collectives
import Datasets
import Foundation
import TensorCore
import _Support

/// Seconds one rank spends per step in each phase, at one per-rank batch size, on this machine.
public struct StepProfile: Sendable {
  public var batch: Int
  public var times: PhaseTimes
  /// The time until the first gradient bucket is final, as a fraction of the backward pass (the last layer's part).
  public var backwardBeforeFirstBucket = 0.0
  /// Forward, loss, backward and gathering the batch: the work that shrinks as ranks are added.
  public var compute: Double { times.data + times.forward + times.loss + times.backward }

  public init(batch: Int, times: PhaseTimes, backwardBeforeFirstBucket: Double = 0) {
    self.batch = batch
    self.times = times
    self.backwardBeforeFirstBucket = backwardBeforeFirstBucket
  }
}

/// One exchange as the cost model sees it: what it sends and what it computes on each rank per step.
public struct ExchangeModel: Sendable {
  public var name: String
  public var traffic: ExchangeTraffic
  /// Seconds of local work per step (16-bit conversions, PowerSGD's products), measured on one rank.
  public var localSeconds: Double
  /// Seconds per byte of adding received values (the reduce in reduce-scatter); 0 when `localSeconds` has it.
  public var reduceSecondsPerByte: Double

  public init(name: String, traffic: ExchangeTraffic, localSeconds: Double, reduceSecondsPerByte: Double) {
    self.name = name
    self.traffic = traffic
    self.localSeconds = localSeconds
    self.reduceSecondsPerByte = reduceSecondsPerByte
  }
}

/// One prediction: `ranks` ranks, one per host, each with `batchPerRank` samples of the global batch.
public struct ScalingPrediction: Sendable {
  public var ranks: Int
  public var batchPerRank: Int
  public var exchange: String
  public var stepSeconds: Double
  public var communicationSeconds: Double
  public var samplesPerSecond: Double
  /// samples/s over (ranks x one rank's samples/s).
  public var efficiency: Double
}

/// The alpha-beta model of data-parallel steps across hosts (one rank per host, every link alike).
///
/// A ring all-reduce of n bytes over p ranks costs
///
///     2 (p - 1) alpha + 2 (p - 1) / p * n / B + (p - 1) / p * n * gamma
///
/// (a reduce-scatter then an all-gather, each p - 1 rounds of one message of n/p bytes; gamma the cost of adding a
/// received byte). dpt's buckets send the same bytes in the same number of rounds (each phase is one all-to-all or
/// all-gather of n/p blocks), so they follow the same formula, except small ones, which go in one direct round:
/// alpha + (p - 1) n / B + (p - 1) n gamma (see `BucketReduction`). A step costs
///
///     N compute(batch / p) + optimizer + exchange compute + exposed communication
///
/// for N micro-batches a step (`--accumulate N`; 1 without), where the communication of overlapped buckets is hidden
/// by the part of the last micro-batch's backward pass after the first bucket is final, but never below the last
/// bucket's own time; other exchanges' collectives run one after the other. A step trains on N global batches.
public enum ScalingModel {
  /// Each rank's share of a global batch (the largest, as `Sharding.slice` cuts it), at least 1.
  public static func batchPerRank(globalBatch: Int, ranks p: Int) -> Int { max(1, (globalBatch + p - 1) / p) }

  public static func allReduceSeconds(bytes n: Int, ranks p: Int, link: Link, reduceSecondsPerByte gamma: Double) -> Double {
    guard p > 1 else { return 0 }
    let fraction = Double(p - 1) / Double(p)
    return 2 * Double(p - 1) * link.latency + 2 * fraction * Double(n) / link.bandwidth + fraction * Double(n) * gamma
  }

  /// One direct round: every rank sends its n bytes to every other rank.
  public static func directSeconds(bytes n: Int, ranks p: Int, link: Link, reduceSecondsPerByte gamma: Double) -> Double {
    guard p > 1 else { return 0 }
    return link.latency + Double((p - 1) * n) / link.bandwidth + Double((p - 1) * n) * gamma
  }

  /// A reduce-scatter of n bytes (p - 1 rounds of n/p bytes, each added on arrival), or an all-gather of p pieces
  /// of n/p (`gamma` 0: nothing is added).
  public static func halfRingSeconds(bytes n: Int, ranks p: Int, link: Link, reduceSecondsPerByte gamma: Double) -> Double {
    guard p > 1 else { return 0 }
    let fraction = Double(p - 1) / Double(p)
    return Double(p - 1) * link.latency + fraction * Double(n) / link.bandwidth + fraction * Double(n) * gamma
  }

  /// The seconds of one collective on p ranks.
  public static func seconds(of collective: Collective, ranks p: Int, link: Link, reduceSecondsPerByte gamma: Double) -> Double {
    switch collective {
    case .allReduce(let n): allReduceSeconds(bytes: n, ranks: p, link: link, reduceSecondsPerByte: gamma)
    case .bucketReduction(let n):
      BucketReduction<Float>.usesDirect(wireBytes: n, ranks: p)
        ? directSeconds(bytes: n, ranks: p, link: link, reduceSecondsPerByte: gamma)
        : allReduceSeconds(bytes: n, ranks: p, link: link, reduceSecondsPerByte: gamma)
    case .reduceScatter(let n): halfRingSeconds(bytes: n, ranks: p, link: link, reduceSecondsPerByte: gamma)
    case .allGather(let n): halfRingSeconds(bytes: p * n, ranks: p, link: link, reduceSecondsPerByte: 0)
    }
  }

  /// The predicted step of `exchange` on `ranks` ranks with a global (micro-)batch of `globalBatch`, `microBatches` a
  /// step, from the step profiles of this machine (`profile(b)` for per-rank batch b).
  public static func predict(ranks p: Int, globalBatch: Int, microBatches: Int = 1, exchange: ExchangeModel, link: Link,
                             profile: (Int) -> StepProfile, oneRankSamplesPerSecond: Double) -> ScalingPrediction {
    let n = Double(max(microBatches, 1))
    let b = batchPerRank(globalBatch: globalBatch, ranks: p)
    let step = profile(b)
    var communication = 0.0, exposed = 0.0
    if p > 1 {
      let traffic = exchange.traffic, gamma = exchange.reduceSecondsPerByte
      let each = traffic.collectives.map { Self.seconds(of: $0, ranks: p, link: link, reduceSecondsPerByte: gamma) }
      communication = each.reduce(0, +)
      if exchange.traffic.overlapsBackward, let last = each.last {
        let hidden = step.times.backward * (1 - step.backwardBeforeFirstBucket)
        exposed = max(communication - hidden, last)
      } else {
        exposed = communication
      }
    }
    let local = p > 1 ? exchange.localSeconds : 0
    let seconds = n * step.compute + step.times.optimizer + local + exposed
    let samples = n * Double(min(globalBatch, b * p)) / seconds
    return ScalingPrediction(ranks: p, batchPerRank: b, exchange: exchange.name, stepSeconds: seconds,
                             communicationSeconds: exposed, samplesPerSecond: samples,
                             efficiency: samples / (Double(p) * oneRankSamplesPerSecond))
  }
}
