import Collectives
import Datasets
import Foundation
import Layers
import Optimizers
import Testing
import Training
import _Support
import _TestSupport

@Suite struct DeterministicTests {
  func config(_ deterministic: Bool, optimizer: OptimizerKind = .sgd) -> TrainingConfig {
    var c = TrainingConfig(model: ModelSpec(kind: .cnn, hidden: [8], activation: .prelu, channels: [2], kernel: 3),
                           loss: .crossEntropy, optimizer: OptimizerSpec(kind: optimizer, learningRate: optimizer == .lbfgs ? 1 : 0.05,
                                                                         momentum: optimizer == .sgd ? 0.9 : 0),
                           batchSize: optimizer == .lbfgs ? 48 : 20, epochs: 2, seed: 7)
    c.deterministic = deterministic
    c.deterministicChunk = 4
    return c
  }

  func run(size: Int, _ c: TrainingConfig) throws -> (parameters: [Float], metrics: [EpochRecord]) {
    let data = syntheticImages(count: 50)
    return try InProcessGroup.run(size: size) { comm -> ([Float], [EpochRecord]) in
      let t = try Trainer<Float>(config: c, data: data, communicator: comm)
      var m: [EpochRecord] = []
      for _ in 0..<c.epochs {
        var row = try t.runEpoch().record
        (row.seconds, row.samplesPerSecond, row.evaluationSeconds) = (nil, nil, nil)  // timings differ from run to run
        m.append(row)
      }
      return (t.parameters + t.buffers, m)
    }[0]
  }

  /// Every new layer of a list keeps --deterministic bitwise for any number of ranks: BatchNorm's sums are exact
  /// (fixed point) over the chunks of every rank, dropout's masks are functions of the sample.
  @Test(arguments: ["conv2d(3, 3, padding=1), batchnorm, relu, avgpool2d(2), flatten, dropout(0.3), dense(8), batchnorm(momentum=0.2), prelu, dense(3)",
                    "flatten, dense(6), sigmoid, dropout(0.5), dense(3), tanh, dense(3)",
                    "flatten, dense(8, bias=false), layernorm, gelu(tanh), dense(8), gelu, layernorm(eps=0.001), dense(3)"])
  func newLayersStayBitwiseForAnyWorldSize(list: String) throws {
    var c = config(true)
    c.model = ModelSpec(layers: try LayerList.parse(list))
    let one = try run(size: 1, c)
    for size in [2, 3] {
      let many = try run(size: size, c)
      #expect(many.parameters == one.parameters, "\(list) on \(size) ranks")
      #expect(many.metrics == one.metrics)
    }
    // Without --deterministic: the same steps up to summation order.
    c.deterministic = false
    let plain = try run(size: 3, c)
    #expect(zip(plain.parameters, one.parameters).map { abs($0 - $1) }.max()! < 1e-4)
  }

  /// --deterministic: bitwise the same parameters and metrics for 1, 2, 3 and 4 ranks (batches of 20 in chunks of 4
  /// over 50 samples: the last batch of 10 has 3 chunks, so some ranks get none).
  @Test(arguments: [OptimizerKind.sgd, .adam, .lbfgs])
  func bitwiseTheSameForAnyWorldSize(optimizer: OptimizerKind) throws {
    let one = try run(size: 1, config(true, optimizer: optimizer))
    for size in 2...4 {
      let many = try run(size: size, config(true, optimizer: optimizer))
      #expect(many.parameters == one.parameters, "\(optimizer) on \(size) ranks")
      #expect(many.metrics == one.metrics, "\(optimizer) metrics on \(size) ranks")
    }
  }

  /// --accumulate N: N micro-batches of B make the step on the batch of N B. With --deterministic it is bitwise
  /// that step, on any number of ranks and with any optimizer (L-BFGS's trial points accumulate too); without, equal
  /// up to summation order. Dropout's masks follow the sample, so a list with dropout accumulates exactly as well.
  @Test(arguments: [OptimizerKind.sgd, .adam, .lbfgs])
  func accumulatingMicroBatchesTakesTheLargerBatchesStep(optimizer: OptimizerKind) throws {
    var whole = config(true, optimizer: optimizer)
    whole.model = ModelSpec(layers: try LayerList.parse("conv2d(2, 3, padding=1), relu, flatten, dropout(0.3), dense(8), prelu, dense(3)"))
    var micro = whole
    micro.batchSize = whole.batchSize / 4
    micro.accumulate = 4
    #expect(micro.stepBatchSize == whole.batchSize)
    let reference = try run(size: 1, whole)
    for size in [1, 2, 3] {
      let accumulated = try run(size: size, micro)
      let gap = zip(accumulated.parameters, reference.parameters).map { abs($0 - $1) }.max()!
      #expect(gap == 0, "\(optimizer), 4 micro-batches on \(size) ranks: parameters differ by up to \(gap)")
      #expect(accumulated.metrics == reference.metrics)
    }
    whole.deterministic = false
    micro.deterministic = false
    let plain = try run(size: 2, whole), plainMicro = try run(size: 2, micro)
    #expect(zip(plainMicro.parameters, plain.parameters).map { abs($0 - $1) }.max()! < 1e-4)
  }

  /// --accumulate far beyond the samples a step holds costs nothing per micro-batch that would be empty: 16,777,216
  /// micro-batches of 1 take the same step as 50 of 1 (every micro-batch one sample), with and without
  /// --deterministic (issue 28, item 15: it had built 16 million empty micro-batches a step, past 100 s and 1.2 GB).
  @Test(.timeLimit(.minutes(1)), arguments: [true, false])
  func accumulatingBeyondTheBatchCostsNothing(deterministic: Bool) throws {
    var huge = config(deterministic)
    huge.batchSize = 1
    huge.accumulate = 16_777_216
    huge.epochs = 1
    var exact = huge
    exact.accumulate = 50
    let a = try run(size: 2, huge)
    let b = try run(size: 2, exact)
    #expect(a.parameters == b.parameters && a.metrics == b.metrics)
  }

  /// Batch statistics of a micro-batch are not the batch's: --accumulate with BatchNorm is refused, naming both.
  @Test func accumulatingWithBatchNormIsRefused() throws {
    var c = config(true)
    c.model = ModelSpec(layers: try LayerList.parse("flatten, dense(6), batchnorm, relu, dense(3)"))
    c.accumulate = 2
    #expect(throws: ConfigurationProblem.accumulateWithBatchStatistics(microBatches: 2)) {
      _ = try Trainer<Float>(config: c, data: syntheticImages(count: 50), communicator: LocalCommunicator())
    }
  }

  /// The default mode is not bitwise across world sizes (only to ~1e-6), which is what --deterministic is for.
  @Test func theDefaultModeDiffersInTheLastBits() throws {
    let one = try run(size: 1, config(false)), three = try run(size: 3, config(false))
    let difference = zip(one.parameters, three.parameters).map { abs($0 - $1) }.max()!
    #expect(difference < 1e-4)
  }

  /// Same seed and world size: bitwise the same run, in both modes.
  @Test func sameSeedSameWorldSizeIsBitwiseRepeatable() throws {
    for deterministic in [false, true] {
      let a = try run(size: 2, config(deterministic)), b = try run(size: 2, config(deterministic))
      #expect(a.parameters == b.parameters && a.metrics == b.metrics)
    }
  }

  /// Deterministic mode computes the same step as the default one, up to rounding.
  @Test func deterministicAndDefaultAgree() throws {
    let d = try run(size: 1, config(true)), f = try run(size: 1, config(false))
    let difference = zip(d.parameters, f.parameters).map { abs($0 - $1) }.max()!
    #expect(difference < 1e-4)
  }

  @Test func fixedPointSumsAreExact() throws {
    // 1e8 + 1 - 1e8 is 0 or 1 in floating point depending on the order; in fixed point it is 1 in every order.
    let values: [[Double]] = [[1e8], [1], [-1e8]]
    let results = try InProcessGroup.run(size: 3) { comm in
      try FixedPoint.exactSum([values[comm.rank]], width: 1, terms: 3, communicator: comm)
    }
    #expect(results.allSatisfy { $0 == [1] })
  }
}
