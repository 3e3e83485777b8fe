import ArgumentParser
import Collectives
import Datasets
import Foundation
import Scaling
import _Support
import TensorCore
import Training

struct ScalingCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "scaling",
    abstract: "Predict samples/s and scaling efficiency on N hosts for each gradient exchange, before renting them.",
    discussion: """
      Measures this machine's time per step for the model at every per-rank batch size (forward, loss, backward,
      data, optimizer, and each exchange's own conversions or products), then predicts the step on N hosts, one rank
      each, with the alpha-beta model of a ring all-reduce: 2 (p-1) alpha + 2 (p-1)/p n / B, plus the adds of the
      received values. Overlapped buckets hide at most the backward pass after the first bucket is final.

      The link is given (--link 1gbit,50us) or measured with a ping-pong of several sizes between ranks 0 and 1
      (run under mpirun with a hostfile that puts them on two hosts: --measure-link).

        dpt scaling --dataset fashion-mnist --link 1gbit,50us
        mpirun -np 2 --hostfile hosts dpt scaling --dataset fashion-mnist \\
          --measure-link
      """.reflowed)

  @OptionGroup var options: ScalingOptions

  @Option(help: "The link between hosts, RATE,LATENCY: e.g. 1gbit,50us, 10gbit,20us, 125MB,0.1ms.")
  var link: String?

  @Flag(help: "Measure the link between ranks 0 and 1 with a ping-pong (under mpirun, on two hosts).")
  var measureLink = false

  @Option(parsing: .unconditional, help: "Rank counts to predict, one rank per host.")
  var ranks: String = "1,2,4,8,16,32,64,128,256,512"

  @Option(help: "Grow the global batch with the ranks: this many samples per rank (weak scaling). Default: the --batch-size global batch is shared by the ranks (strong scaling).")
  var perRankBatch: Int?

  @Option(help: "The exchanges to compare: all-reduce, buckets, bf16, fp16, topk:F, powersgd:R.")
  var exchanges: String = "all-reduce,buckets,bf16,powersgd:4"

  @Flag(help: "Print the predictions as one JSON object on stdout.")
  var json = false

  func validate() throws {
    try options.requireSingleValues()
    if link == nil && !measureLink { throw ValidationError("give the link between hosts (--link 1gbit,50us) or --measure-link under mpirun") }
    if link != nil && measureLink { throw ValidationError("--link and --measure-link exclude each other") }
    if let l = link, Link(l) == nil { throw ValidationError("--link '\(l)': use RATE,LATENCY such as 1gbit,50us or 125MB,0.1ms") }
    _ = try rankCounts()
    _ = try exchangeSpecs()
    if let b = perRankBatch, b < 1 { throw ValidationError("--per-rank-batch must be at least 1 (got \(b))") }
    if perRankBatch != nil && options.step.batchSize != nil { throw ValidationError("--per-rank-batch and --batch-size exclude each other") }
  }

  func rankCounts() throws -> [Int] {
    let values = ranks.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
      throw ValidationError("--ranks must list positive counts such as 1,2,4 (got '\(ranks)')")
    }
    return values.map { $0! }
  }

  /// (name, spec) of each exchange to compare.
  func exchangeSpecs() throws -> [(String, ExchangeSpec)] {
    try exchanges.split(separator: ",").map { raw -> (String, ExchangeSpec) in
      let name = raw.trimmingCharacters(in: .whitespaces)
      switch name {
      case "all-reduce": return (name, ExchangeSpec(bucketBytes: 0))
      case "buckets": return (name, ExchangeSpec(bucketBytes: ExchangeSpec.defaultBucketBytes(.none)))
      default:
        guard let c = Compression(name), c != .none else {
          throw ValidationError("--exchanges: '\(name)' is not one of all-reduce | buckets | \(GradientCodecs.syntax) | powersgd:R")
        }
        return (name, ExchangeSpec(compression: c))
      }
    }
  }

  func run() throws {
    var config = try options.makeConfig()
    config.exchange = ExchangeSpec(bucketBytes: 0)
    try Launch.withWorld { comm in try scale(config, comm) }
  }

  func scale(_ base: TrainingConfig, _ comm: any Communicator) throws {
    let console = Console(isRoot: comm.isRoot, jsonOutput: json)
    // The link first: every rank takes part in the ping-pong.
    var chosen: Link
    var probe: [(bytes: Int, seconds: Double)] = []
    var linkNote = "given"
    if measureLink {
      guard comm.size >= 2 else {
        throw CommandError("--measure-link needs two ranks on two hosts: mpirun -np 2 --hostfile HOSTS dpt scaling --measure-link ...")
      }
      let hosts = try comm.allGather(Array(ProcessInfo.processInfo.hostName.utf8)).map { String(decoding: $0, as: UTF8.self) }
      probe = try LinkProbe.pingPong(comm)
      chosen = LinkProbe.fit(probe)
      linkNote = "measured between \(hosts[0]) and \(hosts[1])"
      if hosts[0] == hosts[1] { linkNote += " (one host: this is shared memory, not a network)" }
    } else {
      chosen = Link(link!)!
    }
    // Everything else on rank 0 alone; the other ranks wait for it.
    defer { try? comm.barrier() }
    guard comm.isRoot else { return }
    let data = try options.data.load(validation: 0)
    let counts = try rankCounts()
    let specs = try exchangeSpecs()
    let batch = min(perRankBatch ?? base.batchSize, data.train.count)
    /// The global batch on p ranks.
    func global(_ p: Int) -> Int { perRankBatch.map { min($0 * p, data.train.count) } ?? batch }
    var profiles: [Int: StepProfile] = [:]
    func profile(_ b: Int) throws -> StepProfile {
      if let p = profiles[b] { return p }
      var c = base
      c.batchSize = b
      c.accumulate = nil  // one micro-batch's forward and backward: a step repeats it N times
      let t = try Trainer<Float>(config: c, data: data, communicator: LocalCommunicator())
      var p = StepProfile(batch: b, times: try t.profileSteps(max(10, min(200, 4096 / b))))
      p.backwardBeforeFirstBucket = t.backwardFractionBeforeFirstBucket(
        blockElements: ExchangeSpec.defaultBucketBytes(.none) / MemoryLayout<Float>.stride)
      profiles[b] = p
      return p
    }
    let one = try profile(batch)
    // With --accumulate N, one rank also takes N micro-batches a step and one optimizer step.
    let n = Double(base.microBatches)
    let oneRank = n * Double(batch) / (n * one.compute + one.times.optimizer)
    let gamma = Self.addSecondsPerByte()
    var models: [ExchangeModel] = []
    for (name, spec) in specs {
      var c = base
      c.exchange = spec
      c.batchSize = batch
      c.accumulate = nil
      let t = try Trainer<Float>(config: c, data: data, communicator: LocalCommunicator())
      // The exchange's own work on one rank: conversions, PowerSGD's products (its warm-up steps skipped).
      let local = spec.compression.isExact && spec.bucketBytes == 0 ? 0 : try t.profileSteps(20, warmup: spec.effectiveWarmupSteps + 3).exchange
      // An encoded exchange's adds are in its measured local work already.
      let coded = spec.compression.codec != nil
      models.append(ExchangeModel(name: name, traffic: spec.method(deterministic: c.deterministic, deterministicChunk: c.deterministicChunk, ranks: 1, hosts: 1).traffic(for: t.network, ranks: 1, hosts: 1), localSeconds: local,
                                  reduceSecondsPerByte: coded ? 0 : gamma))
    }
    for p in counts { _ = try profile(ScalingModel.batchPerRank(globalBatch: global(p), ranks: p)) }
    var rows: [[ScalingPrediction]] = []
    for p in counts {
      rows.append(models.map {
        ScalingModel.predict(ranks: p, globalBatch: global(p), microBatches: base.microBatches, exchange: $0, link: chosen,
                             profile: { profiles[$0]! },
                             oneRankSamplesPerSecond: oneRank)
      })
    }
    if json {
      console.result(Self.json(link: chosen, probe: probe, oneRank: oneRank, models: models, rows: rows).serialized())
    }
    let t = one.times
    let batchNote = (perRankBatch.map { "\($0) samples per rank (the global batch grows with the ranks)" } ?? "global batch \(batch)")
      + (base.microBatches > 1 ? ", \(base.microBatches) micro-batches a step (--accumulate: one exchange every \(base.microBatches))" : "")
    console.say("dpt scaling: \(base.model) on \(data.name), \(batchNote), one rank per host")
    console.say(String(format: "this machine, one rank: %.3f ms a step (data %.3f, forward %.3f, loss %.3f, backward %.3f, optimizer %.3f) = %.0f samples/s",
                       1e3 * (one.compute + t.optimizer), 1e3 * t.data, 1e3 * t.forward, 1e3 * t.loss, 1e3 * t.backward,
                       1e3 * t.optimizer, oneRank))
    console.say("link: \(chosen) (\(linkNote))")
    if !probe.isEmpty {
      console.say("  ping-pong, one way: " + probe.map { String(format: "%@ %.1f us", Self.bytes($0.bytes), $0.seconds * 1e6) }.joined(separator: ", "))
    }
    for m in models {
      let rounds = m.traffic.collectives.count
      var line = "  \(m.name): \(Self.bytes(m.traffic.bytes)) a step in \(rounds) reduction\(rounds == 1 ? "" : "s")"
      if m.traffic.overlapsBackward { line += ", overlapped with the backward pass" }
      if m.localSeconds > 0 { line += String(format: ", %.3f ms of its own work", m.localSeconds * 1e3) }
      console.say(line)
    }
    console.say("")
    console.say("ranks  batch/rank" + models.map { $0.name.padding(toLength: 22, withPad: " ", startingAt: 0) }.map { "  " + $0 }.joined())
    console.say("                  " + models.map { _ in "  samples/s  efficiency  " }.joined())
    for row in rows {
      var line = String(format: "%5d  %10d", row[0].ranks, row[0].batchPerRank)
      for r in row { line += String(format: "  %9.0f  %9.0f%%  ", r.samplesPerSecond, 100 * r.efficiency) }
      console.say(line + (row[0].ranks > global(row[0].ranks) ? "  (only \(global(row[0].ranks)) ranks get a sample)" : ""))
    }
    console.say("")
    for (k, m) in models.enumerated() {
      // The count with the most samples/s: beyond it adding hosts stops paying off.
      let best = rows.indices.max { rows[$0][k].samplesPerSecond < rows[$1][k].samplesPerSecond }!
      let r = rows[best][k]
      if r.samplesPerSecond <= oneRank * 1.0001 {
        let two = rows.first { $0[k].ranks > 1 }?[k]
        console.say("\(m.name): adding hosts does not pay off on this link" + (two.map { String(format: " (%d ranks: %.2fx one rank)", $0.ranks, $0.samplesPerSecond / oneRank) } ?? ""))
      } else {
        console.say(String(format: "%@: best at %d ranks, %.0f samples/s = %.2fx one rank (efficiency %.0f%%)", m.name, r.ranks,
                           r.samplesPerSecond, r.samplesPerSecond / oneRank, 100 * r.efficiency))
      }
    }
  }

  /// Seconds per byte of adding one float buffer into another (the reduce of a reduce-scatter), measured here.
  static func addSecondsPerByte() -> Double {
    let n = 1 << 20
    var x = [Float](repeating: 1, count: n), y = [Float](repeating: 2, count: n)
    let reps = 20
    let start = WallClock.now()
    for _ in 0..<reps {
      x.withUnsafeBufferPointer { x in y.withUnsafeMutableBufferPointer { Float.add(x.baseAddress!, into: $0.baseAddress!, count: n) } }
    }
    let seconds = (WallClock.now() - start) / Double(reps)
    x[0] = y[0]  // keep the loop
    return seconds / Double(n * 4)
  }

  /// "814 KB", "4.2 MB", "8 B" (decimal units, as link rates are).
  static func bytes(_ n: Int) -> String {
    n >= 1_000_000 ? String(format: "%.1f MB", Double(n) / 1e6) : n >= 1000 ? String(format: "%.0f KB", Double(n) / 1e3) : "\(n) B"
  }

  static func json(link: Link, probe: [(bytes: Int, seconds: Double)], oneRank: Double, models: [ExchangeModel],
                   rows: [[ScalingPrediction]]) -> JSON {
    let linkJSON = JSON.object([("latency_seconds", JSON(link.latency)), ("bandwidth_bytes_per_sec", JSON(link.bandwidth))])
    let pings: [JSON] = probe.map { .object([("bytes", JSON($0.bytes)), ("seconds", JSON($0.seconds))]) }
    let exchanges: [JSON] = models.map { m in
      .object([("name", JSON(m.name)), ("bytes_per_step", JSON(m.traffic.bytes)),
               ("reductions", JSON(m.traffic.collectives.count)), ("local_seconds", JSON(m.localSeconds))])
    }
    let predictions: [JSON] = rows.flatMap { $0 }.map { r in
      .object([("ranks", JSON(r.ranks)), ("batch_per_rank", JSON(r.batchPerRank)), ("exchange", JSON(r.exchange)),
               ("step_seconds", JSON(r.stepSeconds)), ("communication_seconds", JSON(r.communicationSeconds)),
               ("samples_per_sec", JSON(r.samplesPerSecond)), ("efficiency", JSON(r.efficiency))])
    }
    return .object([("link", linkJSON), ("ping_pong", .array(pings)), ("one_rank_samples_per_sec", JSON(oneRank)),
                    ("exchanges", .array(exchanges)), ("predictions", .array(predictions))])
  }
}
