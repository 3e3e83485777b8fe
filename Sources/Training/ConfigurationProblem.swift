import _Support

/// A training setting that does not fit the data or another setting, told in values: the command line names the
/// flag and the fix (see `ErrorMessages` in DPTCommand). The description is the library's own, without flag names.
public enum ConfigurationProblem: Error, Equatable, CustomStringConvertible {
  /// A loss of class labels on a regression data set.
  case lossNeedsClasses(loss: String, dataSet: String)
  /// The softmax model with another loss than cross-entropy.
  case softmaxModelNeedsCrossEntropy(loss: String)
  /// A softmax output layer followed by cross-entropy (softmax applied twice).
  case softmaxTwice(inList: Bool)
  /// A softmax output layer after the softmax model.
  case softmaxAfterSoftmaxModel
  /// NLL on logits.
  case nllNeedsProbabilities
  /// Dropping the last short batch leaves no batch.
  case dropLastLeavesNoBatch(batchSize: Int, samples: Int)
  /// A CNN on rows of features.
  case cnnNeedsImages(features: Int)
  /// Images too small for the CNN's pooling blocks.
  case imagesTooSmall(channels: [Int], height: Int, width: Int)
  /// Fewer training samples than ranks: some rank would hold no sample of any batch.
  case moreRanksThanSamples(dataSet: String, samples: Int, ranks: Int)
  /// A feature value beyond the range of the scalar type trained in, `scalar` (`set`: training, test or validation;
  /// `column` as named or numbered; `standardized`: after scaling).
  case featureBeyondRange(dataSet: String, set: String, column: String, value: Double, scalar: String, limit: Double, standardized: Bool)
  /// Gradient accumulation with batch statistics (BatchNorm), which a micro-batch cannot give for the whole batch.
  case accumulateWithBatchStatistics(microBatches: Int)
  /// Class labels of fewer than two classes.
  case fewerThanTwoClasses(dataSet: String, classes: Int)
  /// Samples of another shape than the trained model's inputs.
  case shapeDiffers(dataSet: String, shape: [Int], trained: [Int])
  /// Exchange settings that do not go together.
  case exchangeConflict(ExchangeConflict)
  /// The replicas of this host need more memory than it has available (see `ModelMemory`).
  case modelTooLarge(bytesPerRank: Double, parameters: Double, ranksOnHost: Int, availableBytes: Double)

  public enum ExchangeConflict: Equatable, Sendable {
    /// PowerSGD compresses whole matrices, not a host's shards.
    case powerSGDWithSharedMemory
    /// A compressed exchange does not sum exactly.
    case compressedDeterministic
    /// PowerSGD's error feedback makes a line search's trial points inconsistent.
    case powerSGDWithLineSearch
  }

  public var description: String {
    switch self {
    case .exchangeConflict(let c):
      switch c {
      case .powerSGDWithSharedMemory: "PowerSGD compresses whole matrices, not the shards of a host's shared memory"
      case .compressedDeterministic: "a deterministic exchange sums exactly; a compressed one does not"
      case .powerSGDWithLineSearch: "a line search compares losses and gradients at trial points, which PowerSGD's error feedback makes inconsistent"
      }
    case .lossNeedsClasses(let loss, let name): "the \(loss) loss needs class labels, but \(name) is a regression data set"
    case .softmaxModelNeedsCrossEntropy(let loss): "the softmax model is trained with cross-entropy, not \(loss)"
    case .softmaxTwice(let list): "\(list ? "a list ending in softmax" : "a softmax output layer") followed by cross-entropy applies softmax twice"
    case .softmaxAfterSoftmaxModel: "the softmax model already ends in softmax cross-entropy"
    case .nllNeedsProbabilities: "the NLL loss takes probabilities: it needs a softmax output layer"
    case .dropLastLeavesNoBatch(let b, let n): "dropping the last short batch of \(b) leaves no batch of the \(n) training samples"
    case .cnnNeedsImages(let d): "a CNN needs images (channels x height x width); this data set has rows of \(d) features"
    case .imagesTooSmall(let c, let h, let w): "\(h)x\(w) images are too small for \(c.count) blocks of 2x2 pooling"
    case .moreRanksThanSamples(let name, let n, let ranks): "\(name): \(n) training samples for \(ranks) ranks"
    case .featureBeyondRange(let name, let set, let column, let value, let scalar, let limit, let scaled):
      "\(name): a \(set) row's feature column \(column) is \(value)\(scaled ? " after standardising" : ""), beyond \(scalar)'s range (\(String(format: "%.3g", limit)))"
    case .accumulateWithBatchStatistics(let n):
      "accumulating \(n) micro-batches a step with batch normalisation: its statistics would be a micro-batch's, not the step's batch's"
    case .fewerThanTwoClasses(let name, let k): "\(name): the labels hold \(k) class; classification needs at least 2"
    case .shapeDiffers(let name, let shape, let trained):
      "\(name): samples of shape \(shape.map(String.init).joined(separator: "x")), but the model was trained on \(trained.map(String.init).joined(separator: "x"))"
    case .modelTooLarge(let bytes, let p, let ranks, let available):
      "the model needs about \(ByteCount.text(bytes)) per rank (\(NumberText.compact(p)) parameters with their gradients and optimizer state, and a batch of activations)\(ranks > 1 ? ", \(ranks) ranks on this host" : ""); this host has \(ByteCount.text(available)) available"
    }
  }
}
