import Collectives
import Datasets
import Foundation
import Layers
import Optimizers
import TensorCore

/// The scalar types a trainer runs in (Float for training, Double for exactness tests).
public typealias TrainingScalar = LayerKernels & OptimizerKernels & Reducible

/// A problem with a training run's settings or files, named with the flag or file to change.
public struct TrainingError: Error, CustomStringConvertible {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// The loss became NaN or infinite. It is computed from all-reduced values, so every rank raises it at the same step.
public struct NonFiniteLoss: RaisedOnEveryRank, CustomStringConvertible {
  public var epoch: Int
  public var step: Int
  public var loss: Double
  public var learningRate: Double
  public var description: String {
    "the training loss became \(loss) at epoch \(epoch), step \(step): lower --lr (now \(learningRate)) or check the data for extreme values"
  }
}

/// Data-parallel training of one model replica per rank.
///
/// Every step: each rank takes its contiguous slice of the global batch (see `Sharding`), computes the gradient of
/// the sum of its samples' losses, scaled by 1 / (global batch size), into the flat gradient buffer; one all-reduce
/// of that buffer (with the batch's loss sum in one extra slot) gives every rank the gradient of the mean loss of
/// the whole batch; every rank takes the same optimizer step. Evaluation is sharded the same way and reduced as sums,
/// so no metric depends on the number of ranks.
public final class Trainer<T: TrainingScalar> {
  public let config: TrainingConfig
  /// The data as trained on (standardised when the config asks for it).
  public let data: DataSplit
  /// The feature scaling applied to `data` (nil when none).
  public let standardization: Standardization?
  public let network: Network<T>
  public let communicator: any Communicator
  /// The flat parameter buffer, identical on every rank.
  public internal(set) var parameters: [T]
  /// The flat gradient buffer plus one slot for the batch's loss sum.
  var gradients: [T]
  public var optimizer: any Optimizer<T>
  /// Called after every optimizer step (a sweep's coordinator answers its messages there).
  public var afterStep: (() throws -> Void)?
  /// Where this rank's training time went since the last `resetPhaseTimes`.
  public internal(set) var phaseTimes = PhaseTimes()
  /// Completed epochs.
  public internal(set) var epoch = 0
  /// Batches already taken in the current epoch (non-zero when resumed from a checkpoint written mid-epoch).
  public internal(set) var batchInEpoch = 0
  /// Batches whose update was skipped because their loss or gradient was not finite (--on-nan skip-batch).
  public internal(set) var skippedBatches = 0
  /// Deterministic mode: one gradient buffer per chunk this rank computes, kept from step to step.
  var chunkGradients: [[T]] = []
  /// Optimizer steps taken.
  public internal(set) var step = 0

  /// Builds the replica. With `synchronize` (the default) rank 0's initial parameters are broadcast at once; pass
  /// false when constructing inside `Communicator.agree` (whose body must not call collectives: a rank that failed
  /// earlier would be waiting elsewhere), then call `synchronizeParameters()` after it.
  public init(config: TrainingConfig, data raw: DataSplit, communicator: any Communicator, synchronize: Bool = true) throws {
    try Trainer.check(config, raw, worldSize: communicator.size)
    self.config = config
    self.communicator = communicator
    if config.standardize, case .reals = raw.train.features {
      let s = Standardization(fitting: raw.train)
      standardization = s
      data = DataSplit(name: raw.name, train: s.apply(raw.train), test: s.apply(raw.test),
                       validation: raw.validation.map(s.apply))
    } else {
      standardization = nil
      data = raw
    }
    let outputs = data.train.task == .classification ? data.train.classCount : data.train.targetWidth
    network = try config.model.build(inputShape: data.train.sampleShape, outputs: outputs)
    parameters = network.initialParameters(seed: config.seed)
    gradients = .zeros(network.parameterCount + 1)
    optimizer = config.optimizer.make(for: network)
    if synchronize { try synchronizeParameters() }
  }

  /// Broadcasts rank 0's parameters. Every rank initialised from the same seed; rank 0's values are broadcast anyway
  /// so that replicas are equal by construction, not by coincidence of floating-point environments.
  public func synchronizeParameters() throws {
    try communicator.broadcast(&parameters, root: 0)
  }

  /// Problems of the config against the data, reported with the flag to change.
  static func check(_ config: TrainingConfig, _ data: DataSplit, worldSize: Int) throws {
    if config.loss.takesClasses && data.train.task == .regression {
      throw TrainingError("--loss \(config.loss.name) needs class labels, but \(data.name) is a regression data set: use --loss mse, l1, huber or cosine")
    }
    if config.model.kind == .softmax && config.loss != .crossEntropy {
      throw TrainingError("--model softmax is trained with cross-entropy; use --model linear for --loss \(config.loss.name)")
    }
    if config.model.outputSoftmax && config.loss == .crossEntropy {
      throw TrainingError("--output softmax followed by --loss cross-entropy applies softmax twice (cross-entropy takes logits): use --loss nll or hinge after the softmax layer, or drop --output softmax")
    }
    if config.model.outputSoftmax && config.model.kind == .softmax {
      throw TrainingError("--model softmax already ends in softmax cross-entropy: drop --output softmax")
    }
    if config.loss == .nll && !config.model.outputSoftmax {
      throw TrainingError("--loss nll takes probabilities: add --output softmax, or use --loss cross-entropy, which takes logits")
    }
    if data.train.task == .classification && data.train.classCount < 2 {
      throw TrainingError("\(data.name): the labels hold \(data.train.classCount) class; classification needs at least 2")
    }
    if data.train.count < worldSize {
      throw TrainingError("\(data.name): \(data.train.count) training samples for \(worldSize) ranks; use at most \(data.train.count) ranks (mpirun -np)")
    }
    if config.dropLast && data.train.count < config.batchSize {
      throw TrainingError("--drop-last with --batch-size \(config.batchSize) leaves no batch of the \(data.train.count) training samples")
    }
  }

  public var rank: Int { communicator.rank }
  public var worldSize: Int { communicator.size }

  /// The global batches of the coming epoch, as positions in its permutation.
  public var batchesPerEpoch: Int {
    Sharding.batches(count: data.train.count, batchSize: config.batchSize, dropLast: config.dropLast).count
  }

  /// One pass over the training set. Returns the samples processed and the wall time in seconds.
  @discardableResult
  public func trainEpoch(progress: ((_ step: Int, _ steps: Int) -> Void)? = nil) throws -> (samples: Int, seconds: Double) {
    let train = data.train
    let batches = Sharding.batches(count: train.count, batchSize: config.batchSize, dropLast: config.dropLast)
    let order = visitingOrder(epoch: epoch, batches: batches.count)
    let start = Clock.now()
    var samples = 0
    while batchInEpoch < batches.count {
      let b = batchInEpoch, batch = batches[b]
      try takeStep(on: order[batch], batchIndex: b, stepsPerEpoch: batches.count)
      samples += batch.count
      progress?(b + 1, batches.count)
    }
    batchInEpoch = 0
    epoch += 1
    return (samples, Clock.now() - start)
  }

  /// The mean loss of the global batch whose slice on this rank is `indices`, at parameters `p`; its gradient goes
  /// into `g[0..<P]` (all-reduced: the same on every rank). `g` has one slot more, for the loss sum, so the step
  /// needs a single all-reduce.
  func batchLoss(at p: UnsafeBufferPointer<T>, indices: ArraySlice<Int>, globalBatch: Int, into g: inout [T]) throws
    -> Double
  {
    let P = network.parameterCount
    g.withUnsafeMutableBufferPointer { $0.zero() }
    if !indices.isEmpty {
      // d(mean loss over the global batch)/d(output) = d(sum over my samples)/d(output) / globalBatch.
      g[P] = T(try chunkLoss(at: p, indices: indices, globalBatch: globalBatch, into: &g))
    }
    var clock = PhaseClock()
    try communicator.allReduce(&g)
    phaseTimes.allReduce += clock.lap()
    return Double(g[P]) / Double(globalBatch)
  }

  /// The epoch's permutation of the training rows; a single full batch is visited in its natural order (a shuffle
  /// would change nothing but the order of the sums, and L-BFGS reuses its last evaluation of the full batch).
  func visitingOrder(epoch: Int, batches: Int) -> [Int] {
    batches == 1 ? Array(0..<data.train.count) : Sharding.permutation(count: data.train.count, seed: config.seed, epoch: epoch)
  }

  /// The mean loss of a global batch (the sample indices of every rank, in order) at parameters `p`, and its
  /// gradient in g[0..<P], the same on every rank: this rank's contiguous slice in the default mode, its chunks in
  /// the deterministic one.
  func globalBatchLoss(at p: UnsafeBufferPointer<T>, batch: ArraySlice<Int>, into g: inout [T]) throws -> Double {
    if config.deterministic { return try deterministicBatchLoss(at: p, batch: batch, into: &g) }
    let mine = batch[Sharding.slice(batch.indices, rank: rank, size: worldSize)]
    return try batchLoss(at: p, indices: mine, globalBatch: batch.count, into: &g)
  }

  /// Deterministic mode: the batch is cut into chunks of `deterministicChunk` samples, whatever the number of ranks;
  /// the ranks share out whole chunks; each chunk's gradient is computed by the same BLAS calls on whichever rank,
  /// and all of them are added in 64-bit fixed point, where addition is exact and associative, with a scale set
  /// from the largest magnitude of any chunk (one small all-reduce). So the step is bitwise the same for 1 or N ranks.
  func deterministicBatchLoss(at p: UnsafeBufferPointer<T>, batch: ArraySlice<Int>, into g: inout [T]) throws -> Double {
    let P = network.parameterCount, c = config.deterministicChunk
    let chunks = Sharding.batches(count: batch.count, batchSize: c)
    let mine = Sharding.slice(0..<chunks.count, rank: rank, size: worldSize)
    var losses: [Double] = []
    var largest = [0.0, 0.0]  // largest |gradient entry| and |chunk loss sum|
    while chunkGradients.count < mine.count { chunkGradients.append(.zeros(P + 1)) }
    for (slot, k) in mine.enumerated() {
      let indices = batch[batch.startIndex + chunks[k].lowerBound..<batch.startIndex + chunks[k].upperBound]
      chunkGradients[slot].withUnsafeMutableBufferPointer { $0.zero() }
      let lossSum = try chunkLoss(at: p, indices: indices, globalBatch: batch.count, into: &chunkGradients[slot])
      largest[0] = max(largest[0], Double(chunkGradients[slot].withUnsafeBufferPointer { T.maxMagnitude($0.baseAddress!, count: P) }))
      largest[1] = max(largest[1], abs(lossSum))
      losses.append(lossSum)
    }
    var clock = PhaseClock()
    try communicator.allReduce(&largest, .max)
    guard largest[0].isFinite && largest[1].isFinite else {
      // A NaN or infinity has no fixed-point form: the batch's loss and gradient are NaN (every rank saw the same
      // all-reduced maximum), and --on-nan decides.
      g.withUnsafeMutableBufferPointer { g in for i in g.indices { g[i] = .nan } }
      return .nan
    }
    let gradientScale = FixedPoint.scale(largest: largest[0], terms: chunks.count)
    let lossScale = FixedPoint.scale(largest: largest[1], terms: chunks.count)
    var sums = [Int64](repeating: 0, count: P + 1)
    sums.withUnsafeMutableBufferPointer { s in
      for (slot, loss) in losses.enumerated() {
        chunkGradients[slot].withUnsafeBufferPointer { T.addFixedPoint($0.baseAddress!, scale: gradientScale, into: s.baseAddress!, count: P) }
        s[P] &+= Int64(loss * lossScale)
      }
    }
    try communicator.allReduce(&sums, .sum)
    phaseTimes.allReduce += clock.lap()
    g.withUnsafeMutableBufferPointer { g in
      sums.withUnsafeBufferPointer { T.fromFixedPoint($0.baseAddress!, inverseScale: 1 / gradientScale, into: g.baseAddress!, count: P) }
    }
    let lossSum = Double(sums[P]) / lossScale
    g[P] = T(lossSum)
    return lossSum / Double(batch.count)
  }

  /// The loss sum of `indices` and its gradient (scaled by 1 / globalBatch) into g, on this rank alone.
  func chunkLoss(at p: UnsafeBufferPointer<T>, indices: ArraySlice<Int>, globalBatch: Int, into g: inout [T]) throws -> Double {
    let P = network.parameterCount
    var clock = PhaseClock()
    let x: Tensor<T> = data.train.features(at: indices)
    let targets = self.targets(data.train, indices)
    phaseTimes.data += clock.lap()
    let a = network.forward(x, parameters: p)
    phaseTimes.forward += clock.lap()
    let value = config.loss.evaluate(a[a.count - 1], targets)
    phaseTimes.loss += clock.lap()
    var dy = value.gradient!
    dy.withUnsafeMutableBufferPointer { T.scal($0.count, 1 / T(globalBatch), Tensor.base($0)) }
    g.withUnsafeMutableBufferPointer { g in
      network.backward(dy, activations: a, parameters: p, gradients: UnsafeMutableBufferPointer(rebasing: g[0..<P]))
    }
    phaseTimes.backward += clock.lap()
    return value.sum
  }

  /// One optimizer step on the global batch `batch` (sample indices, in order).
  func takeStep(on batch: ArraySlice<Int>, batchIndex: Int, stepsPerEpoch: Int) throws {
    let P = network.parameterCount
    // Batches are named for optimizers that reuse an evaluation (L-BFGS): with one batch per epoch it is always the
    // same set of samples.
    let batchName = stepsPerEpoch == 1 ? 0 : step
    var loss: Double
    if let known = optimizer.knownEvaluation(batch: batchName) {
      loss = known.loss
      gradients.withUnsafeMutableBufferPointer { g in
        known.gradients.withUnsafeBufferPointer { g.baseAddress!.update(from: $0.baseAddress!, count: P) }
      }
    } else {
      loss = try parameters.withUnsafeBufferPointer { try globalBatchLoss(at: $0, batch: batch, into: &gradients) }
    }
    // Loss and gradient were all-reduced: every rank sees the same values and takes the same branch here.
    let finite = loss.isFinite && (config.onNonFinite == .stop || gradients.withUnsafeBufferPointer { T.allFinite(Tensor.base($0), count: P) })
    guard finite else {
      if config.onNonFinite == .stop {
        throw NonFiniteLoss(epoch: epoch + 1, step: batchIndex + 1, loss: loss, learningRate: optimizer.learningRate)
      }
      skippedBatches += 1
      step += 1
      batchInEpoch = batchIndex + 1
      try afterStep?()
      return
    }
    var clock = PhaseClock()
    optimizer.learningRate = config.optimizer.schedule.rate(
      base: config.optimizer.learningRate, step: step, stepsPerEpoch: stepsPerEpoch,
      totalSteps: stepsPerEpoch * config.epochs)
    var scratch: [T] = []
    try parameters.withUnsafeMutableBufferPointer { p in
      try gradients.withUnsafeBufferPointer { g in
        try optimizer.step(parameters: p, gradients: UnsafeBufferPointer(rebasing: g[0..<P]), loss: loss,
                           batch: batchName) { point in
          // A line search's trial point: the same batch, another parameter vector, a scratch gradient buffer.
          if scratch.isEmpty { scratch = .zeros(P + 1) }
          let l = try self.globalBatchLoss(at: point, batch: batch, into: &scratch)
          return (l, Array(scratch[0..<P]))
        }
      }
    }
    phaseTimes.optimizer += clock.lap()
    step += 1
    batchInEpoch = batchIndex + 1
    try afterStep?()
  }

  func targets<C: Collection<Int>>(_ set: Dataset, _ indices: C) -> Targets<T> {
    config.loss.takesClasses ? .classes(set.labels(at: indices)) : .values(set.targetValues(at: indices))
  }

  /// Loss, accuracy or squared errors over a data set, sharded across the ranks and reduced as sums (nil for an
  /// empty set).
  public func evaluate(_ set: Dataset) throws -> Evaluation? {
    guard set.count > 0 else { return nil }
    // Default: a contiguous slice per rank. Deterministic: fixed chunks dealt to the ranks, whose sums are added
    // exactly (fixed point), so the metrics are bitwise the same for any number of ranks.
    let chunks = config.deterministic
      ? Sharding.batches(count: set.count, batchSize: config.evaluationBatchSize)
      : [Sharding.slice(0..<set.count, rank: rank, size: worldSize)]
    let mineChunks = config.deterministic ? Array(chunks[Sharding.slice(0..<chunks.count, rank: rank, size: worldSize)]) : chunks
    var perChunk: [[Double]] = []
    for piece in mineChunks {
      perChunk.append(try evaluationSums(set, piece))
    }
    var sums: [Double]
    if config.deterministic {
      sums = try FixedPoint.exactSum(perChunk, width: 3, terms: chunks.count, communicator: communicator)
    } else {
      sums = perChunk.first ?? [0, 0, 0]
      try communicator.allReduce(&sums)
    }
    return Evaluation(count: set.count, lossSum: sums[0], correct: sums[1], squaredErrorSum: sums[2],
                      totalSumOfSquares: Trainer.totalSumOfSquares(set), targetWidth: set.targetWidth)
  }

  /// Loss sum, correct count and squared-error sum over the rows `range` of `set`, on this rank alone.
  func evaluationSums(_ set: Dataset, _ range: Range<Int>) throws -> [Double] {
    var sums = [0.0, 0.0, 0.0]  // loss, correct, squared error
    var start = range.lowerBound
    while start < range.upperBound {
      let chunk = start..<min(start + config.evaluationBatchSize, range.upperBound)
      let out = parameters.withUnsafeBufferPointer { network.predict(set.features(at: chunk), parameters: $0) }
      sums[0] += config.loss.evaluate(out, targets(set, chunk), gradient: false).sum
      if set.task == .classification {
        var predicted = [Int32](repeating: 0, count: chunk.count)
        out.withUnsafeBufferPointer { o in
          T.argmaxRows(Tensor.base(o), rows: chunk.count, cols: out.sampleSize, into: &predicted)
        }
        for (k, i) in chunk.enumerated() where predicted[k] == set.labels[i] { sums[1] += 1 }
      } else {
        let w = set.targetWidth
        for (k, i) in chunk.enumerated() {
          for j in 0..<w {
            let e = Double(out.scalars[k * w + j]) - set.targets[i * w + j]
            sums[2] += e * e
          }
        }
      }
      start = chunk.upperBound
    }
    return sums
  }

  /// sum over samples and target columns of (y - mean of the column)^2.
  static func totalSumOfSquares(_ set: Dataset) -> Double {
    guard set.task == .regression, set.count > 0 else { return 0 }
    let w = set.targetWidth, n = Double(set.count)
    var total = 0.0
    for j in 0..<w {
      var mean = 0.0
      for i in 0..<set.count { mean += set.targets[i * w + j] }
      mean /= n
      for i in 0..<set.count { let d = set.targets[i * w + j] - mean; total += d * d }
    }
    return total
  }

  public func resetPhaseTimes() { phaseTimes = PhaseTimes() }

  /// Trains one epoch, then evaluates the training and test sets.
  public func runEpoch(progress: ((_ step: Int, _ steps: Int) -> Void)? = nil) throws -> EpochMetrics {
    let lr = optimizer.learningRate
    let (samples, seconds) = try trainEpoch(progress: progress)
    let t0 = Clock.now()
    let train = try evaluate(data.train)!
    let validation = try data.validation.flatMap(evaluate)
    let test = try evaluate(data.test)
    return EpochMetrics(epoch: epoch, task: data.train.task, train: train, validation: validation, test: test,
                        seconds: seconds, samples: samples, evaluationSeconds: Clock.now() - t0, learningRate: lr)
  }

  /// The model's outputs for feature rows given in the data's original units (they are standardised like the
  /// training data first). Computed on this rank alone.
  public func predict(rows: [[Double]]) -> [[Double]] {
    guard !rows.isEmpty else { return [] }
    let scaled = rows.map { standardization?.apply(row: $0) ?? $0 }
    let x = Tensor<T>(shape: [rows.count] + data.train.sampleShape, scalars: scaled.flatMap { $0.map { T($0) } })
    let out = parameters.withUnsafeBufferPointer { network.predict(x, parameters: $0) }
    let w = out.sampleSize
    return (0..<rows.count).map { i in (0..<w).map { Double(out.scalars[i * w + $0]) } }
  }
}

/// Sums in 64-bit fixed point: exact, so their value does not depend on which rank adds what, or in which order.
public enum FixedPoint {
  /// A power of two s such that `terms` values of magnitude at most `largest`, times s, sum within Int64 (with a bit
  /// to spare). A value v is stored as round(v s): the resolution is about largest * terms / 2^61.
  public static func scale(largest: Double, terms: Int) -> Double {
    guard largest > 0, largest.isFinite else { return 1 }
    let e = Int(ceil(Foundation.log2(largest))) + Int(ceil(Foundation.log2(Double(max(terms, 1))))) + 1
    return Foundation.pow(2.0, Double(61 - e))
  }

  /// The element-wise sum over every rank's rows of `width` values, computed exactly: the largest magnitude is
  /// all-reduced first to choose the scale, then the fixed-point sums.
  public static func exactSum(_ rows: [[Double]], width: Int, terms: Int, communicator: any Communicator) throws -> [Double] {
    var largest = [rows.flatMap { $0 }.map(abs).filter(\.isFinite).max() ?? 0]
    try communicator.allReduce(&largest, .max)
    let s = scale(largest: largest[0], terms: terms)
    var sums = [Int64](repeating: 0, count: width)
    for r in rows { for j in 0..<width { sums[j] &+= Int64((r[j] * s).rounded()) } }
    try communicator.allReduce(&sums, .sum)
    return sums.map { Double($0) / s }
  }
}

/// Seconds this rank spent in each phase of the training steps.
public struct PhaseTimes: Sendable {
  /// Gathering and converting the batch.
  public var data = 0.0
  public var forward = 0.0
  public var loss = 0.0
  public var backward = 0.0
  /// The gradient all-reduce, including waiting for slower ranks.
  public var allReduce = 0.0
  public var optimizer = 0.0

  public init() {}

  public var named: [(String, Double)] {
    [("data", data), ("forward", forward), ("loss", loss), ("backward", backward), ("allreduce", allReduce),
     ("optimizer", optimizer)]
  }
}

/// Laps of a monotonic clock.
struct PhaseClock {
  private var last = Clock.now()
  mutating func lap() -> Double {
    let now = Clock.now()
    defer { last = now }
    return now - last
  }
}

/// Monotonic wall-clock seconds.
public enum Clock {
  public static func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
  }
}
