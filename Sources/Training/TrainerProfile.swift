import Datasets

extension Trainer {
  /// Times `steps` optimizer steps (after `warmup` untimed ones) on this rank alone and returns the mean time per
  /// step of each phase. The steps really train: use a trainer made for measuring.
  public func profileSteps(_ steps: Int, warmup: Int = 3) throws -> PhaseTimes {
    let train = data.train
    let batches = Sharding.batches(count: train.count, batchSize: config.stepBatchSize, dropLast: true)
    precondition(!batches.isEmpty, "no whole batch to profile")
    let order = Sharding.permutation(count: train.count, seed: config.seed, epoch: 0)
    for k in 0..<warmup { try takeStep(on: order[batches[k % batches.count]], batchIndex: 0, stepsPerEpoch: batches.count) }
    resetPhaseTimes()
    for k in 0..<steps { try takeStep(on: order[batches[k % batches.count]], batchIndex: 0, stepsPerEpoch: batches.count) }
    var t = phaseTimes
    let n = Double(steps)
    t.data /= n
    t.forward /= n
    t.loss /= n
    t.backward /= n
    t.exchange /= n
    t.optimizer /= n
    return t
  }

  /// The fraction of the backward pass before the first bucket of `blockElements` is final: the parameters of the
  /// blocks that come before it, over all parameters (the backward pass's time is about proportional to them).
  public func backwardFractionBeforeFirstBucket(blockElements: Int) -> Double {
    let blocks = network.gradientBlocks(blockElements: blockElements)
    var before = 0
    for b in blocks {
      before += b.count
      if before >= min(blockElements, network.parameterCount) { break }
    }
    return Double(before) / Double(max(network.parameterCount, 1))
  }
}
