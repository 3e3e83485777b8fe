import TensorCore

/// What a layer may need during a training step beyond its input and its parameters: the step's identity (whose
/// masks `Dropout` draws), the global index of every row it sees, and how to sum over the global batch
/// (`BatchNorm`'s statistics, summed over every rank's rows). A trainer makes one per step.
///
/// A rank's share of the global batch arrives in pieces (one slice, or in deterministic mode whole chunks); layers
/// that need the context see every piece at once (`BatchLayer`), so that statistics can be taken over all of them
/// before any is normalised.
public final class StepContext {
  /// Training: dropout drops and BatchNorm normalises with the batch's statistics (and updates its running ones).
  public var training: Bool
  public var seed: UInt64
  public var epoch: Int
  public var step: Int
  /// For each piece: the global index of each of its rows (a sample's masks do not depend on the rank computing it).
  public var rows: [[Int]]
  /// Samples in the global batch.
  public var globalCount: Int
  /// Adds per-piece partial sums over every piece of every rank: `partials[k]` are piece k's sums, each of `width`
  /// values (a rank may have no piece); the totals come back, the same on every rank (an all-reduce, collective: every
  /// rank calls it; in deterministic mode an exact one).
  public var sumOverBatch: (_ partials: [[Double]], _ width: Int) throws -> [Double]
  /// What a layer's forward pass keeps for its backward pass (BatchNorm's batch mean and 1/std), by layer index.
  public var saved: [Int: [Double]] = [:]

  public init(training: Bool, seed: UInt64 = 0, epoch: Int = 0, step: Int = 0, rows: [[Int]], globalCount: Int? = nil,
              sumOverBatch: (([[Double]], Int) throws -> [Double])? = nil) {
    self.training = training
    self.seed = seed
    self.epoch = epoch
    self.step = step
    self.rows = rows
    self.globalCount = globalCount ?? rows.reduce(0) { $0 + $1.count }
    self.sumOverBatch = sumOverBatch ?? { StepContext.localSum($0, width: $1) }
  }

  /// One process holding the whole batch: the pieces' sums added in order.
  public static func localSum(_ partials: [[Double]], width: Int) -> [Double] {
    var total = [Double](repeating: 0, count: width)
    for p in partials { for i in total.indices { total[i] += p[i] } }
    return total
  }

  /// The index of layer `j` of branch `branch` (0 the body, 1 the shortcut) of the layer at `index`, in the numbering
  /// that `saved` and dropout's masks key on: apart from every other layer's, at any depth of nesting.
  public static func nested(_ index: Int, branch: Int, layer j: Int) -> Int {
    precondition(j < 1 << 15 && branch < 2, "a block of more than 32768 layers")
    let (shifted, overflow) = index.multipliedReportingOverflow(by: 1 << 16)
    precondition(!overflow && index >= 0, "residual blocks nested too deep to number their layers")
    return shifted + 1 + (branch << 15) + j
  }

  /// The list's item (from 1) that holds the layer at `index`.
  public static func item(of index: Int) -> Int {
    var i = index
    while i >= 1 << 16 { i >>= 16 }
    return i + 1
  }

  /// A context for a batch of `count` rows alone (rows 0 ..< count), as one piece.
  public static func alone(training: Bool, count: Int, seed: UInt64 = 0) -> StepContext {
    StepContext(training: training, seed: seed, rows: [Array(0..<count)])
  }
}

/// A layer whose passes see every piece of a rank's share of the global batch at once, with the step's context, and
/// that may hold buffers: state the forward pass keeps (BatchNorm's running statistics), saved in checkpoints and
/// exports but never touched by the optimizer. Its plain `forward`/`backward` treat one batch alone, in training.
public protocol BatchLayer<T>: Layer {
  /// Training: y for every piece. May update `buffers` (every rank computes the same values).
  func forward(_ x: [Tensor<T>], parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeMutableBufferPointer<T>,
               context: StepContext, index: Int) throws -> [Tensor<T>]
  /// Adds each piece's parameter gradients into its own buffer `dp[k]` and returns dL/dx of every piece (nil when
  /// not needed).
  func backward(_ dy: [Tensor<T>], inputs x: [Tensor<T>], outputs y: [Tensor<T>], parameters p: UnsafeBufferPointer<T>,
                gradients dp: [UnsafeMutableBufferPointer<T>], context: StepContext, index: Int,
                needsInputGradient: Bool) throws -> [Tensor<T>]?
  /// Evaluation: BatchNorm with its running statistics, dropout as the identity.
  func evaluate(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>) -> Tensor<T>
  /// Whether the passes must see every piece (true by default; a residual block only when it holds such a layer).
  var seesWholeBatch: Bool { get }
  /// Whether the layer normalises by statistics of the batch (BatchNorm), which micro-batches would change.
  var usesBatchStatistics: Bool { get }
}

extension BatchLayer {
  public var seesWholeBatch: Bool { true }
  public var usesBatchStatistics: Bool { false }
}

extension Layer {
  /// Buffers of a layer that has none.
  public var buffers: [ParameterSpec] { (self as? any BufferHolder)?.bufferSpecs ?? [] }
}

/// The buffers a layer keeps (see `BatchLayer`), with their initial values.
public protocol BufferHolder {
  var bufferSpecs: [ParameterSpec] { get }
  /// The initial values of the buffers, in the order of `bufferSpecs`.
  func initialBuffers() -> [Double]
}
