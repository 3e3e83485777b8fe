import Collectives
import Datasets
import Foundation
import Layers
import Optimizers
import Testing
import Training
import _Support
import _TestSupport

/// ResNet blocks and a character GPT trained data-parallel (issue 29): N ranks take the 1-rank steps (bitwise with
/// --deterministic, for 1, 2 and 3 ranks, clipping included), and the text data set's windows, vocabulary and split.
@Suite struct OpenModelTrainingTests {
  static let dir = TemporaryDirectory("dpt-open-models")
  static let text = String(repeating: "the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\n", count: 3)

  static func textData(context: Int = 8, testFraction: Double = 0.25) throws -> DataSplit {
    let path = dir.write("fox.txt", text)
    return try Catalog.load(.text(path: path, context: context), testFraction: testFraction)
  }

  static let resnet = """
    conv2d(4, 3, padding=1, bias=false), batchnorm, relu, \
    residual(conv2d(4, 3, padding=1, bias=false), batchnorm, relu, conv2d(4, 3, padding=1, bias=false), batchnorm), relu, \
    residual(conv2d(8, 3, stride=2, padding=1, bias=false), batchnorm, relu, conv2d(8, 3, padding=1, bias=false), batchnorm, \
    shortcut=[conv2d(8, 1, stride=2, bias=false), batchnorm]), relu, avgpool2d(3), flatten, dense(3)
    """

  func run(size: Int, _ c: TrainingConfig, _ data: DataSplit) throws -> (parameters: [Float], metrics: [EpochRecord]) {
    try InProcessGroup.run(size: size) { comm -> ([Float], [EpochRecord]) in
      let t = try Trainer<Float>(config: c, data: data, communicator: comm)
      var m: [EpochRecord] = []
      for _ in 0..<c.epochs {
        var row = try t.runEpoch().record
        (row.seconds, row.samplesPerSecond, row.evaluationSeconds) = (nil, nil, nil)
        m.append(row)
      }
      return (t.parameters + t.buffers, m)
    }[0]
  }

  func gptConfig() -> TrainingConfig {
    var c = TrainingConfig(model: ModelSpec(gpt: GPTShape(layers: 2, width: 16, heads: 4)), loss: .crossEntropy,
                           optimizer: OptimizerSpec(kind: .adamw, learningRate: 0.01), batchSize: 8, epochs: 2, seed: 3)
    c.optimizer.decoupledWeightDecay = 0.1
    c.clipGradNorm = 0.5
    c.deterministicChunk = 2
    return c
  }

  func resnetConfig() throws -> TrainingConfig {
    var c = TrainingConfig(model: ModelSpec(layers: try LayerList.parse(Self.resnet)), loss: .crossEntropy,
                           optimizer: OptimizerSpec(learningRate: 0.05, momentum: 0.9), batchSize: 20, epochs: 2, seed: 7)
    c.deterministicChunk = 4
    return c
  }

  @Test(arguments: ["gpt", "resnet", "attention-not-causal"])
  func bitwiseForAnyWorldSizeWithDeterministic(model: String) throws {
    var c = model == "resnet" ? try resnetConfig() : gptConfig()
    if model == "attention-not-causal" {
      c.model = ModelSpec(layers: try LayerList.parse("embedding(16), position-embedding, residual(layernorm, attention(4, causal=false)), layernorm, dense(30)"))
    }
    let data = model == "resnet" ? syntheticImages(count: 50) : try Self.textData()
    c.deterministic = true
    let one = try run(size: 1, c, data)
    for size in [2, 3] {
      let many = try run(size: size, c, data)
      #expect(many.parameters == one.parameters, "\(model) on \(size) ranks")
      #expect(many.metrics == one.metrics, "\(model) metrics on \(size) ranks")
    }
    // Without --deterministic: the same steps up to summation order. (With SGD: Adam turns the rounding noise of
    // gradients that are exactly 0, such as attention's key bias, into steps of lr.)
    c.deterministic = false
    c.optimizer = OptimizerSpec(learningRate: 0.05, momentum: 0.9)
    c.deterministic = true
    let reference = try run(size: 1, c, data)
    c.deterministic = false
    let plain = try run(size: 2, c, data)
    let difference = zip(plain.parameters, reference.parameters).map { abs($0 - $1) }.max()!
    #expect(difference < 1e-4, "\(model): \(difference)")
    #expect(one.metrics.last!.train.loss! < one.metrics.first!.train.loss!, "\(one.metrics)")
  }

  /// Clipping is PyTorch's: g *= X / (||g|| + 1e-6) when the norm is above X, and leaves the step alone otherwise.
  @Test func clippingScalesTheReducedGradient() throws {
    let data = try Self.textData()
    var c = gptConfig()
    c.optimizer = OptimizerSpec(learningRate: 0.1)  // plain SGD: the step is -lr g, so the clipped g shows in it
    c.epochs = 1
    c.batchSize = data.train.count
    func firstStep(clip: Double?) throws -> (delta: [Float], norm: Double?) {
      var cc = c
      cc.clipGradNorm = clip
      return try InProcessGroup.run(size: 2) { comm -> ([Float], Double?) in
        let t = try Trainer<Float>(config: cc, data: data, communicator: comm)
        let before = t.parameters
        try t.trainEpoch()
        return (zip(t.parameters, before).map { $0 - $1 }, t.lastGradientNorm)
      }[0]
    }
    let free = try firstStep(clip: nil)
    let norm = Double(free.delta.reduce(Float(0)) { $0 + $1 * $1 }).squareRoot() / 0.1
    let clipped = try firstStep(clip: norm / 4)
    #expect(abs(clipped.norm! - norm) / norm < 1e-4, "the norm before clipping: \(clipped.norm!) against \(norm)")
    let c4 = (norm / 4) / (clipped.norm! + 1e-6)
    let worst = zip(clipped.delta, free.delta).map { abs(Double($0) - c4 * Double($1)) }.max()!
    #expect(worst < 1e-6, "\(worst)")
    let loose = try firstStep(clip: norm * 4)
    #expect(loose.delta == free.delta)
  }

  @Test func textWindowsVocabularyAndSplit() throws {
    let data = try Self.textData(context: 8, testFraction: 0.25)
    let vocabulary = Array(Set(Self.text.unicodeScalars)).sorted { $0.value < $1.value }.map { String($0) }
    #expect(data.train.classNames == vocabulary && data.train.classCount == vocabulary.count)
    let ids = Self.text.unicodeScalars.map { vocabulary.firstIndex(of: String($0))! }
    let windows = (ids.count - 1) / 8, tests = Int((Double(windows) * 0.25).rounded())
    #expect(data.train.count == windows - tests && data.test.count == tests)
    // Train window i is characters [8i, 8i + 8]; the test set is the last windows, in order.
    #expect(data.train.features(at: [1], as: Double.self).scalars == ids[8..<16].map(Double.init))
    #expect(data.train.labels(at: [1]) == ids[9...16].map(Int32.init))
    let firstTest = windows - tests
    #expect(data.test.features(at: [0], as: Double.self).scalars == ids[8 * firstTest..<8 * firstTest + 8].map(Double.init))
    #expect(data.train.labelsPerSample == 8 && data.train.sampleShape == [8])
  }

  @Test func badTextFiles() throws {
    let latin1 = Self.dir.write("latin1.txt", Array("caf".utf8) + [0xE9, 0x20] + Array("au lait".utf8))
    #expect(throws: DataProblem.malformed("\(latin1): byte 3 (0xE9) is not UTF-8: text:FILE reads a UTF-8 text (convert it with iconv -t UTF-8)")) {
      try Catalog.load(.text(path: latin1, context: 2))
    }
    let short = Self.dir.write("short.txt", "abcdefgh")
    #expect {
      try Catalog.load(.text(path: short, context: 4))
    } throws: { "\($0)".contains("8 characters make 1 window of --context 4") }
  }

  /// Accuracy and loss are over every position: B x T predictions, the mean over them.
  @Test func evaluationCountsEveryPosition() throws {
    let data = try Self.textData(testFraction: 0.25)
    var c = gptConfig()
    c.epochs = 1
    let e = try InProcessGroup.run(size: 1) { comm -> Evaluation in
      let t = try Trainer<Float>(config: c, data: data, communicator: comm)
      return try t.evaluate(data.test)!
    }[0]
    #expect(e.count == data.test.count * 8)
    // Untrained, the mean cross-entropy is near log V.
    #expect(abs(e.loss - log(Double(data.train.classCount))) < 0.7, "\(e.loss)")
  }
}
