import Layers
import Datasets
import FileFormats
import Foundation
import Optimizers
import _Support

extension Trainer {
  /// The state of this trainer (the same on every rank). Collective when the optimizer step is sharded across a
  /// host's ranks: their shards of the optimizer's state are gathered.
  public func checkpoint() throws -> Checkpoint {
    var sections: [(String, [UInt8])] = [("parameters", parameters.rawBytes)]
    if !buffers.isEmpty { sections.append(("buffers", buffers.rawBytes)) }
    let state = try (optimizer.firstOrder as? ShardedOptimizer<T>)?.wholeState() ?? optimizer.savedState
    for b in state.buffers.sorted(by: { $0.name < $1.name }) { sections.append(("optimizer." + b.name, b.values.rawBytes)) }
    var c = Checkpoint(
      config: recordedConfig, epoch: epoch, batch: batchInEpoch, step: step, worldSize: worldSize,
      network: network.summary, dataset: data.name, trainCount: data.train.count, optimizer: optimizer.summary,
      optimizerStep: state.step, skippedBatches: skippedBatches, scalarBytes: MemoryLayout<T>.size, sections: sections)
    c.samples = samplesInEpoch
    c.evaluations = evaluations
    if batchInEpoch > 0 {
      let p = epochProgress
      (c.epochSeconds, c.epochEvaluations, c.epochSkipped) = (p.seconds, p.evaluations, p.skippedBatches)
    }
    c.runID = runID
    func kind(_ name: String) -> String {
      String(describing: type(of: network.layers[Int(name.prefix { $0 != "." })!])).prefix { $0 != "<" }.lowercased()
    }
    func named(_ n: (name: String, spec: ParameterSpec, range: Range<Int>)) -> Checkpoint.NamedTensor {
      Checkpoint.NamedTensor(name: n.name, shape: n.spec.shape, layer: kind(n.name), pytorchName: n.spec.pytorchName, transposed: n.spec.transposed)
    }
    c.tensors = network.namedParameters.map(named)
    c.bufferTensors = network.namedBuffers.map(named)
    return c
  }

  /// The settings config.json and checkpoints record: the run description with the model's layers as built, and the
  /// input transform fitted on the training rows ("input_transform"), which eval, predict and export apply.
  public var recordedConfig: JSON {
    guard case .object(var o) = config.json(data: data.origin, worldSize: worldSize, layers: layerItems, trainRows: data.train.count)
    else { return .null }
    o.append(("input_transform", inputTransform.json))
    return .object(o)
  }

  /// Resumes a run from `c` (`restore`), which must leave something to train: an epoch before `config.epochs`, or
  /// the rest of one.
  public func resume(from c: Checkpoint, path: String) throws {
    try restore(c, path: path)
    guard c.epoch < config.epochs || batchInEpoch > 0 else {
      throw WeightsProblem.malformed("\(path): the run is already at epoch \(c.epoch) of --epochs \(config.epochs): raise --epochs to train further")
    }
  }

  /// Continues from `c`: checks that it fits this run (same network, data and optimizer), then restores the
  /// parameters, the optimizer's state and the position in the data order.
  public func restore(_ c: Checkpoint, path: String) throws {
    guard c.scalarBytes == MemoryLayout<T>.size else {
      throw WeightsProblem.malformed("\(path): holds \(c.scalarBytes * 8)-bit parameters; this run trains in \(MemoryLayout<T>.size * 8)-bit")
    }
    // The model as specified: the checkpoint's run description, expanded to layers for this data, against this
    // run's layers (a shorthand and the list it spells are the same model). A checkpoint of an older dpt, without a
    // run description, is compared by its network's summary.
    if let run = c.config["run"], run != .null {
      let recorded = try? RunDescription(run: run).training.model.items(inputShape: data.train.sampleShape, outputs: network.outputShape.last!)
      guard recorded == layerItems else {
        throw WeightsProblem.modelDiffers(path: path, checkpoint: c.network, run: network.summary)
      }
    } else if c.network != network.summary {
      throw WeightsProblem.modelDiffers(path: path, checkpoint: c.network, run: network.summary)
    }
    guard c.dataset == data.name && c.trainCount == data.train.count else {
      throw WeightsProblem.dataDiffer(path: path, checkpointData: c.dataset, checkpointRows: c.trainCount, runData: data.name,
                                      runRows: data.train.count)
    }
    let name = { (s: String) in s.prefix { $0 != "(" } }
    guard name(c.optimizer) == name(optimizer.summary) else {
      throw WeightsProblem.malformed("\(path): the optimizer differs: the checkpoint was written by \(c.optimizer), this run uses \(optimizer.summary)")
    }
    guard let p = c.section("parameters"), p.count == parameters.count * MemoryLayout<T>.size else {
      throw WeightsProblem.malformed("\(path): the parameters do not match the model's \(parameters.count)")
    }
    var state = optimizer.savedState
    for (i, buffer) in state.buffers.enumerated() {
      let key = buffer.name
      guard let b = c.section("optimizer." + key) else {
        throw WeightsProblem.malformed("\(path): the optimizer state '\(key)' is missing (the checkpoint was written by \(c.optimizer))")
      }
      // A buffer that starts empty grows as the optimizer runs (L-BFGS's curvature pairs): take what was saved.
      let grows = buffer.values.isEmpty
      guard grows ? b.count % (parameters.count * MemoryLayout<T>.size) == 0 : b.count == buffer.values.count * MemoryLayout<T>.size else {
        throw WeightsProblem.malformed("\(path): the optimizer state '\(key)' has another size (the checkpoint was written by \(c.optimizer))")
      }
      state.buffers[i].values = b.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
    }
    // The position is kept in samples: a resume with another batch size continues at exactly that sample of the
    // epoch's order when its batches fall there, and is an error otherwise (never a skipped or repeated sample).
    let samples = c.samples >= 0 ? c.samples : c.batch * (c.config["batch_size"]?.int ?? config.batchSize)
    let batches = stepBatches
    var done = 0, position = 0
    while position < batches.count && done < samples {
      done += batches[position].count
      position += 1
    }
    guard done == samples, samples < data.train.count else {
      throw WeightsProblem.positionBetweenBatches(path: path, samples: samples, epoch: c.epoch + 1,
                                                  checkpointBatch: c.config["batch_size"]?.int, batch: config.stepBatchSize)
    }
    let b = c.section("buffers") ?? []
    guard b.count == buffers.count * MemoryLayout<T>.size else {
      throw WeightsProblem.malformed("\(path): the layers' buffers (running statistics) do not match the model's \(buffers.count)")
    }
    state.step = c.optimizerStep
    parameters = p.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
    buffers = b.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
    optimizer.restore(state)
    epoch = c.epoch
    batchInEpoch = position
    step = c.step
    skippedBatches = c.skippedBatches
    evaluations = c.evaluations
    runID = c.runID
    // A checkpoint written mid-epoch carries that epoch's part so far, which its row counts.
    epochSoFar = EpochProgress(seconds: position > 0 ? c.epochSeconds : 0, startEvaluations: evaluations - (position > 0 ? c.epochEvaluations : 0),
                               startSkipped: skippedBatches - (position > 0 ? c.epochSkipped : 0))
  }
}

extension Trainer {
  /// The parameters and buffers named and shaped as PyTorch's state_dict of the same `torch.nn.Sequential` (dense
  /// weights outputs x inputs): what `dpt export` writes. Collective when the optimizer step is sharded.
  public func stateDict() throws -> [(name: String, shape: [Int], values: [Double])] {
    let file = try SafeTensorsFile(decoding: try SafeTensors.encode(try checkpoint(), pytorchLayout: true), path: "the state dict")
    return try file.names.map { ($0, file.entries[$0]!.shape, try file.values($0, path: "the state dict")) }
  }

  /// Sets the parameters (and buffers) from tensors named and shaped as PyTorch's state_dict of the same
  /// `torch.nn.Sequential` ("0.weight" out x in, "1.running_mean", ...), strictly: every tensor must be there, with
  /// its shape, and nothing else. On one rank; `synchronizeParameters()` then gives them to every rank.
  public func loadStateDict(_ tensors: [(name: String, shape: [Int], values: [Double])]) throws {
    (parameters, buffers) = try SafeTensors.state(for: network, from: SafeTensorsFile(tensors: tensors), path: "the state dict")
  }
}
