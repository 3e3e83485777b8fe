import Collectives
import Datasets
import Foundation
import Layers
import Optimizers
import TensorCore
import _Support

/// The scalar types a trainer runs in (Float for training, Double for exactness tests).
public typealias TrainingScalar = LayerKernels & OptimizerKernels & WireScalar

/// Data-parallel training of one model replica per rank.
///
/// Every step (`takeStep`) reads like the paper: each rank takes its slice of the global batch (`BatchSharding`),
/// runs the forward pass, the loss and the backward pass, which computes the gradient of the sum of its samples'
/// losses, scaled by 1 / (global batch size), into the buffers its reducer hands out; the reducer
/// (`GradientReducer`: one all-reduce, overlapped buckets, shared memory, a compressed or an exact fixed-point sum)
/// gives every rank the gradient of the mean loss of the whole batch, with the batch's loss; every rank takes the
/// same optimizer step. Evaluation is sharded the same way and reduced as sums, so no metric depends on the number of ranks.
public final class Trainer<T: TrainingScalar> {
  public let config: TrainingConfig
  /// The data as trained on (standardised when the config asks for it).
  public let data: DataSplit
  /// What turns raw rows into the model's inputs (the training rows' standardisation, or an image's 1/255), fitted on
  /// the training rows, or given (a trained model's, for eval and predict); saved with the model.
  public let inputTransform: InputTransform
  /// The feature scaling applied to `data` (nil when none).
  public var standardization: Standardization? { inputTransform.standardization }
  public let network: Network<T>
  /// The model's layers as built (a shorthand expanded): config.json and the run header show them.
  public let layerItems: [LayerItem]
  public let communicator: any Communicator
  /// The flat parameter buffer, identical on every rank (a copy of it).
  public var parameters: [T] {
    get { parameterBuffer.array }
    set { parameterBuffer.array = newValue }
  }
  /// Where the parameters live: this rank's memory, or the host's shared memory under a sharded optimizer step.
  let parameterBuffer: ParameterBuffer<T>
  /// How a global batch is cut among the ranks.
  public let sharding: BatchSharding
  /// The layers' state outside the parameters (BatchNorm's running statistics), the same on every rank: every rank
  /// updates it from the global batch's statistics.
  public var buffers: [T]
  /// Records the first steps layer by layer (`--trace`), when set.
  public var trace: StepTrace<T>?
  /// Why the optimizer found the optimum reached at the last step (L-BFGS's tolerances), nil while it goes on.
  public var converged: String? { optimizer.lineSearch?.converged }
  /// The loss of the first step (the batch's, before any update; nil for a run resumed past it).
  public private(set) var initialLoss: Double?
  /// The global gradient norm of the last step, before clipping (with `--clip-grad-norm`, or at the steps
  /// `gradientNormEvery` asks for).
  public private(set) var lastGradientNorm: Double?
  /// Also measure the gradient norm (a collective sum over the gradient) at every step whose number is a multiple of
  /// this (`--log-every`): nil, only when clipping needs it.
  public var gradientNormEvery: Int?
  /// The last step's loss (the global batch's objective, the same on every rank) and how many samples it took.
  public private(set) var lastStepLoss: Double?
  public private(set) var lastStepSamples = 0
  /// Seconds spent in the step's sums over the global batch so far (see `PhaseTimes.statistics`).
  var statisticsTime = 0.0
  public var optimizer: AnyOptimizer<T>
  /// Turns this rank's gradient into the one every rank applies (set up with the parameters, collectively).
  public private(set) var reducer: any Reducer<T>
  /// Called after every optimizer step (a sweep's coordinator answers its messages there).
  public var afterStep: (() throws -> Void)?
  /// Asked at the start of every step whether this rank wants the run to stop (a signal arrived). The ranks agree
  /// during the step (a non-blocking max all-reduce of one flag that overlaps it), so that all stop after the same
  /// step: `trainEpoch` then throws `StopRequested`, or at an epoch's last step sets `stopAgreed` and ends the epoch.
  public var stopRequested: (() -> Bool)?
  /// The ranks agreed to stop at the end of the epoch just trained.
  public private(set) var stopAgreed = false
  private let stopFlag: UnsafeMutableBufferPointer<Int32> = {
    let p = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 1)
    p[0] = 0
    return p
  }()
  /// Where this rank's training time went since the last `resetPhaseTimes`.
  public internal(set) var phaseTimes = PhaseTimes()
  /// Completed epochs.
  public internal(set) var epoch = 0
  /// Batches already taken in the current epoch (non-zero when resumed from a checkpoint written mid-epoch).
  public internal(set) var batchInEpoch = 0
  /// With `--timeline`: this rank's spans (data, forward, loss, backward, exchange, optimizer, evaluation), and the
  /// reducer's buckets.
  public var timeline: Timeline? {
    didSet { (reducer as? RecordsBuckets)?.timeline = timeline }
  }
  /// Batches whose update was skipped because their loss or gradient was not finite (--on-nan skip-batch).
  public internal(set) var skippedBatches = 0
  /// The current epoch so far, carried by a checkpoint written in its middle, so that a resumed epoch's row counts
  /// the whole epoch: the seconds of its steps, its loss-and-gradient evaluations and its skipped batches.
  public internal(set) var epochSoFar = EpochProgress()
  /// When the running part of the current epoch started (`trainEpoch`).
  var epochClock = WallClock.now()
  /// The last epoch trained, whole.
  public internal(set) var lastEpoch = EpochProgress()
  /// Optimizer steps taken.
  public internal(set) var step = 0
  /// Loss-and-gradient evaluations of a global batch since the start (one per step for a first-order optimizer;
  /// L-BFGS's line search adds its trial points, and reuses the evaluation at the accepted point).
  public internal(set) var evaluations = 0
  /// The run's id, written into its checkpoints (its log and checkpoint folders carry the same).
  public var runID: String?

  /// Builds the replica. With `synchronize` (the default) rank 0's initial parameters are broadcast at once; pass
  /// false when constructing inside `Communicator.agree` (whose body must not call collectives: a rank that failed
  /// earlier would be waiting elsewhere), then call `synchronizeParameters()` after it. `transform`: a trained model's
  /// input transform, applied to `raw` as it is instead of one fitted on `raw`'s training rows (eval and predict).
  public init(config: TrainingConfig, data raw: DataSplit, communicator: any Communicator, synchronize: Bool = true,
              transform given: InputTransform? = nil) throws {
    try Trainer.check(config, raw, worldSize: communicator.size)
    self.config = config
    self.communicator = communicator
    var standardization: Standardization?
    if let given {
      guard given.sampleShape == raw.train.sampleShape else { throw ConfigurationProblem.shapeDiffers(dataSet: raw.name, shape: raw.train.sampleShape, trained: given.sampleShape) }
      // A text's ids are its characters' places in its own vocabulary: another vocabulary would read other characters.
      if let vocabulary = given.vocabulary, vocabulary != raw.train.classNames {
        let missing = Set(raw.train.classNames).subtracting(vocabulary)
        throw DataProblem.malformed("\(raw.name): its characters are not the model's vocabulary of \(vocabulary.count)"
          + (missing.isEmpty ? " (it uses fewer of them, so their ids differ)" : " (\(missing.count) of them are new to the model)")
          + ": evaluate on a text with the same characters")
      }
      standardization = given.standardization
      data = standardization.map { raw.scaled(by: $0) } ?? raw
    } else if config.standardize {
      (data, standardization) = try raw.standardized()
    } else {
      data = raw
    }
    inputTransform = given ?? InputTransform(fitted: raw, standardization: standardization)
    // Every feature must be a finite number of the model's precision (a value such as 1e308 would be inf here).
    let limit = Double(T.greatestFiniteMagnitude)
    for (set, kind) in [(data.train, "training"), (data.test, "test")] + (data.validation.map { [($0, "validation")] } ?? []) {
      guard let bad = set.firstFeature(beyond: limit) else { continue }
      let column = set.featureNames.indices.contains(bad.column) ? quoted(set.featureNames[bad.column]) : "\(bad.column + 1)"
      throw ConfigurationProblem.featureBeyondRange(dataSet: raw.name, set: kind, column: column, value: bad.value, scalar: "\(T.self)", limit: limit,
                                                    standardized: standardization != nil)
    }
    let outputs = data.train.task == .classification ? data.train.classCount : data.train.targetWidth
    layerItems = try config.model.items(inputShape: data.train.sampleShape, outputs: outputs)
    network = Network(try LayerList.build(layerItems, inputShape: data.train.sampleShape, outputs: outputs,
                                          positions: inputTransform.positions, vocabulary: inputTransform.vocabulary?.count))
    if config.microBatches > 1 && network.hasBatchStatistics {
      // Batch statistics of a micro-batch are not those of the step's batch: the step would not be the one taken on
      // the whole batch.
      throw ConfigurationProblem.accumulateWithBatchStatistics(microBatches: config.microBatches)
    }
    // Checked before the parameters, gradients and optimizer state are allocated.
    try ModelMemory(network: network, config: config, samples: data.train.count, ranks: communicator.size)
      .check(processes: communicator.processesOnHost, available: MachineMemory.availableBytes)
    parameterBuffer = ParameterBuffer(network.initialParameters(seed: config.seed))
    buffers = network.initialBuffers()
    optimizer = config.optimizer.make(for: network)
    sharding = BatchSharding(deterministic: config.deterministic, chunk: config.deterministicChunk)
    // The reducer of one rank until `synchronizeParameters` sets up the run's (its setup is collective).
    reducer = FlatAllReduce<T>(network: network, communicator: LocalCommunicator())
    if synchronize { try synchronizeParameters() }
  }

  /// The collective part of the setup: broadcasts rank 0's parameters (every rank initialised from the same seed;
  /// rank 0's values are broadcast anyway so that replicas are equal by construction, not by coincidence of
  /// floating-point environments), unless they were restored from the same checkpoint bytes; then sets up the
  /// run's reducer (shared memory may move the parameters into memory the host's ranks share, and shard the
  /// optimizer step).
  public func synchronizeParameters(broadcast: Bool = true) throws {
    if broadcast {
      var p = parameters
      try communicator.broadcast(&p, root: 0)
      parameters = p
      if !buffers.isEmpty { try communicator.broadcast(&buffers, root: 0) }
    }
    let method = config.exchange.method(deterministic: config.deterministic, deterministicChunk: config.deterministicChunk,
                                        ranks: communicator.size, hosts: communicator.hostCount)
    reducer = try method.makeReducer(for: network, communicator: communicator, seed: config.seed, shardStep: optimizer.firstOrder != nil)
    // A method that shards the optimizer step (shared memory: ZeRO-1) takes it apart here: the optimizer steps this
    // rank's shard of parameters the host's ranks share.
    if let sharding = reducer as? any ShardsOptimizerStep<T>, sharding.shardsStep, let base = optimizer.firstOrder {
      let (sharded, shared) = try sharding.shardedStep(wrapping: base, parameters: Array(parameterBuffer.values))
      optimizer = AnyOptimizer(sharded)
      parameterBuffer.move(to: shared)
    }
    (reducer as? RecordsBuckets)?.timeline = timeline
  }

  /// The parameters as the forward pass reads them.
  func withParameters<R>(_ body: (UnsafeBufferPointer<T>) throws -> R) rethrows -> R {
    try body(UnsafeBufferPointer(parameterBuffer.values))
  }

  /// Problems of the config against the data, reported with the flag to change.
  static func check(_ config: TrainingConfig, _ data: DataSplit, worldSize: Int) throws {
    try config.check(task: data.train.task, dataName: data.name)
    if data.train.task == .classification && data.train.classCount < 2 {
      throw ConfigurationProblem.fewerThanTwoClasses(dataSet: data.name, classes: data.train.classCount)
    }
    if data.train.count < worldSize {
      throw ConfigurationProblem.moreRanksThanSamples(dataSet: data.name, samples: data.train.count, ranks: worldSize)
    }
    if config.dropLast && data.train.count < config.stepBatchSize {
      throw ConfigurationProblem.dropLastLeavesNoBatch(batchSize: config.stepBatchSize, samples: data.train.count)
    }
  }

  public var rank: Int { communicator.rank }
  public var worldSize: Int { communicator.size }

  /// The global batches of an epoch (one optimizer step each), as positions in its permutation.
  var stepBatches: [Range<Int>] {
    Sharding.batches(count: data.train.count, batchSize: config.stepBatchSize, dropLast: config.dropLast)
  }

  /// The global batches of the coming epoch.
  public var batchesPerEpoch: Int { stepBatches.count }

  /// Samples of the current epoch's order already trained on.
  public var samplesInEpoch: Int {
    stepBatches.prefix(batchInEpoch).reduce(0) { $0 + $1.count }
  }

  /// One pass over the training set. Returns the samples processed and the wall time in seconds.
  @discardableResult
  public func trainEpoch(progress: ((_ step: Int, _ steps: Int) -> Void)? = nil) throws -> (samples: Int, seconds: Double) {
    let batches = stepBatches
    let order = visitingOrder(epoch: epoch, batches: batches.count)
    epochClock = WallClock.now()
    var samples = samplesInEpoch  // a resumed epoch's batches before the checkpoint count too
    while batchInEpoch < batches.count {
      let b = batchInEpoch, batch = batches[b]
      var agreement: (any CollectiveRequest)?
      if let stopRequested {
        stopFlag[0] = stopRequested() ? 1 : 0
        agreement = try communicator.startAllReduce(stopFlag, .max)
      }
      try takeStep(on: order[batch], batchIndex: b, stepsPerEpoch: batches.count)
      samples += batch.count
      progress?(b + 1, batches.count)
      if let agreement {
        try agreement.wait()
        if stopFlag[0] != 0 {
          stopAgreed = true
          if batchInEpoch < batches.count { throw StopRequested(epoch: epoch + 1, step: batchInEpoch) }
        }
      }
    }
    lastEpoch = epochProgress
    batchInEpoch = 0
    epoch += 1
    epochSoFar = EpochProgress(startEvaluations: evaluations, startSkipped: skippedBatches)
    return (samples, lastEpoch.seconds)
  }

  /// The current epoch's progress up to now: a resumed epoch's part before the checkpoint, plus what ran since.
  public var epochProgress: EpochProgress {
    var p = epochSoFar
    p.seconds += WallClock.now() - epochClock
    p.evaluations = evaluations - epochSoFar.startEvaluations
    p.skippedBatches = skippedBatches - epochSoFar.startSkipped
    return p
  }

  deinit { stopFlag.deallocate() }

  /// The epoch's permutation of the training rows; a single full batch is visited in its natural order (a shuffle
  /// would change nothing but the order of the sums, and L-BFGS reuses its last evaluation of the full batch).
  func visitingOrder(epoch: Int, batches: Int) -> [Int] {
    batches == 1 ? Array(0..<data.train.count) : Sharding.permutation(count: data.train.count, seed: config.seed, epoch: epoch)
  }

  /// The context of a training step on a global batch of `count` samples, this rank's pieces holding `rows`: the
  /// step's identity (dropout's masks) and the sum over the global batch (BatchNorm's statistics), summed as the
  /// sharding sums (exactly with --deterministic, so that it is bitwise the same for any number of ranks).
  func stepContext(rows: [[Int]], globalCount count: Int) -> StepContext {
    let terms = sharding.pieces(ofBatch: count, rank: rank, size: worldSize).total
    // The time spent in these sums is the statistics phase, not forward or backward.
    let timed: ([[Double]], Int) throws -> [Double] = { [unowned self] partials, width in
      let t = WallClock.now()
      defer { self.statisticsTime += WallClock.now() - t }
      return try sharding.sum(partials, width: width, terms: terms, communicator: communicator)
    }
    return StepContext(training: true, seed: config.seed, epoch: epoch, step: step, rows: rows, globalCount: count,
                       sumOverBatch: timed)
  }

  /// Batch slice, forward, loss, backward, reduce: the mean loss of the global batch `batch` (the sample indices of
  /// every rank, in order) at parameters `p`, with its gradient in `reducer.gradient`, the same on every rank. This
  /// rank's share comes in pieces (`sharding`), which pass through the network layer by layer together; with
  /// `--accumulate N`, in N micro-batches backpropagated into the same buffers, only the last one's backward pass
  /// starting the reduction.
  func lossAndGradient(at p: UnsafeBufferPointer<T>, batch: ArraySlice<Int>) throws -> Double {
    evaluations += 1
    var clock = PhaseClock()
    let (pieces, piecesInBatch) = sharding.pieces(ofBatch: batch.count, rank: rank, size: worldSize)
    let sinks = reducer.begin(pieces: pieces.count, piecesInBatch: piecesInBatch)  // zeroed, one per piece
    // d(objective)/d(output) = d(sum over my samples)/d(output) times the objective's scale (1 / globalBatch for the
    // mean), so that the reducer's sum over the ranks is the gradient of the global batch's objective.
    let scale = objectiveScale(count: batch.count)
    var lossSums = [Double](repeating: 0, count: pieces.count)
    var reduceTime = 0.0
    let micro = Self.microBatches(pieces, count: config.microBatches, sharding: sharding)
    for (m, parts) in micro.enumerated() {
      let last = m == micro.count - 1
      // A short last batch can leave a rank without samples; it still joins a network's sums over the batch.
      let used = parts.filter { network.hasBatchLayers || !$0.range.isEmpty }
      let rows = used.map { Array(batch[batch.startIndex + $0.range.lowerBound..<batch.startIndex + $0.range.upperBound]) }
      let x: [Tensor<T>] = rows.map { data.train.features(at: $0) }
      phaseTimes.data += clock.lap("data", timeline)
      let context = stepContext(rows: rows, globalCount: batch.count)
      statisticsTime = 0
      let a = try buffers.withUnsafeMutableBufferPointer { try network.forward(x, parameters: p, buffers: $0, context: context) }
      phaseTimes.forward += clock.lap("forward", timeline) - statisticsTime
      phaseTimes.statistics += statisticsTime
      statisticsTime = 0
      let dy = used.indices.map { j -> Tensor<T> in
        let value = config.loss.evaluate(a[j][a[j].count - 1], targets(data.train, rows[j]))
        lossSums[used[j].piece] += value.sum
        var d = value.gradient!
        d.withUnsafeMutableBufferPointer { T.scal($0.count, T(scale), Tensor.base($0)) }
        return d
      }
      if last { reducer.setLossSums(lossSums) }
      phaseTimes.loss += clock.lap("loss", timeline)
      let observe = trace?.gradientObserver(starts: used.map { $0.range.lowerBound })
      try network.backward(dy, activations: a, parameters: p, gradients: used.map { sinks[$0.piece] }, context: context,
                           blockElements: last ? reducer.blockElements : .max, ready: { range in
        guard last else { return }  // an earlier micro-batch's gradients are not final: nothing travels
        let t = WallClock.now()
        reducer.ready(range)
        reduceTime += WallClock.now() - t
      }, observe: observe)
      phaseTimes.backward += clock.lap("backward", timeline) - reduceTime - statisticsTime
      phaseTimes.exchange += reduceTime
      phaseTimes.statistics += statisticsTime
      reduceTime = 0
      trace?.forward(a)
    }
    let lossSum = try reducer.finish()
    phaseTimes.exchange += clock.lap("exchange", timeline)
    return lossSum * scale
  }

  /// This rank's pieces cut into `count` micro-batches, each a list of (piece, positions in the batch): one contiguous
  /// piece into `count` consecutive slices; whole chunks (`--deterministic`) dealt out as consecutive runs of chunks,
  /// so that every chunk is computed whole, as without accumulation.
  /// Micro-batches beyond the samples (or chunks) there are would be empty: cutting into at most that many gives
  /// the same non-empty micro-batches in the same order, and costs nothing for a count far beyond the batch
  /// (`--accumulate 16777216` had built 16 million empty ones every step).
  static func microBatches(_ pieces: [Range<Int>], count: Int, sharding: BatchSharding) -> [[(piece: Int, range: Range<Int>)]] {
    guard count > 1 else { return [pieces.enumerated().map { ($0.offset, $0.element) }] }
    if sharding == .contiguous {
      let k = min(count, max(pieces[0].count, 1))
      return (0..<k).map { m in [(0, Sharding.slice(pieces[0], rank: m, size: k))] }
    }
    let k = min(count, max(pieces.count, 1))
    return (0..<k).map { m in Sharding.slice(pieces.indices, rank: m, size: k).map { ($0, pieces[$0]) } }
  }

  /// d(objective)/d(loss sum) of a batch of `count`: 1 / count for the mean reduction; for the sum 1, or C for a loss
  /// that averages a sample's C outputs (PyTorch's sum runs over the outputs too).
  /// A sequence's every position is a row of the loss (PyTorch's cross_entropy over logits.view(-1, V)): the mean is
  /// over count x positions.
  func objectiveScale(count: Int) -> Double {
    switch config.lossReduction {
    case .mean: 1 / Double(count * data.train.labelsPerSample)
    case .sum: config.loss.averagesOutputs ? Double(network.outputShape.last!) : 1
    }
  }

  /// One optimizer step on the global batch `batch` (sample indices, in order), as the paper writes it: the loss and
  /// gradient of the batch (slice, forward, loss, backward, reduce), the NaN policy, the update. Phase times are kept
  /// by the calls themselves.
  func takeStep(on batch: ArraySlice<Int>, batchIndex: Int, stepsPerEpoch: Int) throws {
    // Batches are named for the line search's reuse of its last evaluation: with one batch per epoch it is always
    // the same set of samples.
    let batchName = stepsPerEpoch == 1 ? 0 : step
    trace?.begin(step: step)
    let loss = try lossAndGradient(on: batch, named: batchName)
    (lastStepLoss, lastStepSamples) = (loss, batch.count)
    // Loss and gradient were reduced: every rank sees the same values and takes the same branch here.
    guard try acceptable(loss) else {
      skippedBatches += 1
      try optimizer.skipStep()
      return try finishStep(batchIndex)
    }
    var clock = PhaseClock()
    optimizer.learningRate = config.optimizer.schedule.rate(
      base: config.optimizer.learningRate, step: step, stepsPerEpoch: stepsPerEpoch, totalSteps: stepsPerEpoch * config.epochs)
    if let maxNorm = config.clipGradNorm {
      try clipGradient(to: maxNorm)
    } else if let n = gradientNormEvery, (step + 1) % n == 0 {
      lastGradientNorm = try reducer.gradientSquaredNorm().squareRoot()
    }
    if trace?.active == true {
      // --trace gathers every layer's values: its own phase, not the optimizer's.
      phaseTimes.optimizer += clock.lap("optimizer", timeline)
      try recordTrace(loss: loss)
      phaseTimes.trace += clock.lap("trace", timeline)
    }
    try update(loss: loss, batch: batch, named: batchName)
    phaseTimes.optimizer += clock.lap("optimizer", timeline)
    try finishStep(batchIndex)
  }

  /// The loss of the global batch at the current parameters, with its gradient in `reducer.gradient` (the same on
  /// every rank). L-BFGS's last trial point is this step's start, already evaluated; a network with buffers (BatchNorm) is
  /// evaluated again, as PyTorch's closure does, so that its running statistics are those of every evaluation.
  func lossAndGradient(on batch: ArraySlice<Int>, named batchName: Int) throws -> Double {
    let P = network.parameterCount
    if trace?.active != true, network.bufferCount == 0, let known = optimizer.evaluatedTrialPoint(batch: batchName) {
      reducer.gradient.baseAddress!.copyScalars(from: known.gradients, count: P)
      return known.loss
    }
    return try withParameters { p in try lossAndGradient(at: p, batch: batch) }
  }

  /// g *= min(1, X / (||g|| + 1e-6)) on the reduced gradient, PyTorch's clip_grad_norm_: the norm is the same on
  /// every rank, so every replica takes the same step.
  func clipGradient(to maxNorm: Double) throws {
    let norm = try reducer.gradientSquaredNorm().squareRoot()
    lastGradientNorm = norm
    let c = maxNorm / (norm + 1e-6)
    if c < 1 { reducer.scaleGradient(by: T(c)) }
  }

  /// The step's trace (--trace): every layer's values, deltas and gradients, with the loss and learning rate.
  func recordTrace(loss: Double) throws {
    guard let trace, trace.active else { return }
    try trace.finish(step: step, network: network, items: layerItems, parameters: parameters,
                     gradients: try reducer.wholeGradient(), loss: loss, learningRate: optimizer.learningRate,
                     communicator: communicator)
  }

  /// The optimizer's update of the parameters from the reduced gradient (under shared memory, a sharded step: see
  /// `ShardedOptimizer`). L-BFGS's line search evaluates trial points on the same batch.
  func update(loss: Double, batch: ArraySlice<Int>, named batchName: Int) throws {
    let p = parameterBuffer.values, g = UnsafeBufferPointer(reducer.gradient)
    // Through `optimizer.firstOrder!` and `optimizer.lineSearch!`: a step mutates the optimizer's state in place,
    // where a bound copy would copy its buffers.
    if optimizer.firstOrder != nil { return try optimizer.firstOrder!.step(parameters: p, gradients: g) }
    try optimizer.lineSearch!.step(parameters: p, gradients: g, loss: loss, batch: batchName) { point in
      // A trial point: the same batch, another parameter vector (the line search has copied `g` already).
      let l = try self.lossAndGradient(at: point, batch: batch)
      return (l, Array(self.reducer.gradient))
    }
  }

  /// The NaN policy (`--on-nan`): true when the step may go on; false to skip the batch; throws to stop.
  func acceptable(_ loss: Double) throws -> Bool {
    if step == 0 && loss.isFinite && initialLoss == nil { initialLoss = loss }
    switch config.onNonFinite {
    case .stop:
      guard loss.isFinite else {
        throw NonFiniteLoss(epoch: epoch + 1, step: batchInEpoch + 1, loss: loss, learningRate: optimizer.learningRate)
      }
      return true
    case .skipBatch:
      guard loss.isFinite else { return false }
      return try reducer.gradientIsFinite()
    }
  }

  func finishStep(_ batchIndex: Int) throws {
    step += 1
    batchInEpoch = batchIndex + 1
    try afterStep?()
  }

  func targets<C: Collection<Int>>(_ set: Dataset, _ indices: C) -> Targets<T> { Evaluator<T>.targets(set, indices, loss: config.loss) }

  /// The replica's metrics on a data set, summed across the ranks as the sharding sums: it reads the parameters and
  /// buffers, never the optimizer or the exchange.
  public var evaluator: Evaluator<T> {
    Evaluator(network: network, loss: config.loss, batchSize: config.evaluationBatchSize, sharding: sharding, communicator: communicator)
  }

  /// Loss, accuracy or squared errors over a data set (nil for an empty set): `evaluator` at this replica's weights.
  public func evaluate(_ set: Dataset) throws -> Evaluation? {
    try withParameters { p in try buffers.withUnsafeBufferPointer { try evaluator.evaluate(set, parameters: p, buffers: $0) } }
  }

  public func resetPhaseTimes() { phaseTimes = PhaseTimes() }

  /// Trains one epoch, then evaluates the training and test sets.
  public func runEpoch(progress: ((_ step: Int, _ steps: Int) -> Void)? = nil) throws -> EpochMetrics {
    let lr = optimizer.learningRate, batches = stepBatches.count
    let (samples, seconds) = try trainEpoch(progress: progress)
    let progressed = lastEpoch
    let t0 = WallClock.now()
    let train = try evaluate(data.train)!
    let validation = try data.validation.flatMap(evaluate)
    let test = try evaluate(data.test)
    timeline?.record("evaluation", category: "epoch", from: t0)
    var m = EpochMetrics(epoch: epoch, task: data.train.task, train: train, validation: validation, test: test,
                         seconds: seconds, samples: samples, evaluationSeconds: WallClock.now() - t0, learningRate: lr,
                         evaluations: progressed.evaluations)
    m.skippedBatches = progressed.skippedBatches
    m.batches = batches
    if epoch == 1 { m.initialLoss = initialLoss }
    return m
  }

  /// The model's outputs for rows `range` of `set` (one of `data`'s sets, already scaled), computed on this rank
  /// alone, in chunks of the evaluation batch size.
  public func outputs(_ set: Dataset, rows range: Range<Int>) -> [[Double]] {
    withParameters { p in buffers.withUnsafeBufferPointer { evaluator.outputs(set, rows: range, parameters: p, buffers: $0) } }
  }

  /// The model's outputs for feature rows given in the data's original units (they are standardised like the
  /// training data first). Computed on this rank alone.
  public func predict(rows: [[Double]]) -> [[Double]] {
    guard !rows.isEmpty else { return [] }
    let scaled = rows.map { standardization?.apply(row: $0) ?? $0 }
    let x = Tensor<T>(shape: [rows.count] + data.train.sampleShape, scalars: scaled.flatMap { $0.map { T($0) } })
    return withParameters { p in buffers.withUnsafeBufferPointer { evaluator.outputRows(x, parameters: p, buffers: $0) } }
  }
}

/// An epoch's progress so far: the seconds of its training steps, the loss-and-gradient evaluations and the skipped
/// batches, counted from the run's totals at the epoch's start (`startEvaluations`, `startSkipped`).
public struct EpochProgress: Equatable, Sendable {
  public var seconds = 0.0
  public var evaluations = 0
  public var skippedBatches = 0
  var startEvaluations = 0
  var startSkipped = 0

  public init(seconds: Double = 0, startEvaluations: Int = 0, startSkipped: Int = 0) {
    self.seconds = seconds
    self.startEvaluations = startEvaluations
    self.startSkipped = startSkipped
  }
}
