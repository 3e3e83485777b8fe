/// Weights that do not fit: a checkpoint or a safetensors file against the model and data of this run, told in values
/// (the command line names the flags to change; see `ErrorMessages` in DPTCommand).
public enum WeightsProblem: Error, Equatable, CustomStringConvertible {
  /// A checkpoint or weights file that is not what it should be: the message names the file and what is wrong.
  case malformed(String)
  /// No checkpoint file at `path`.
  case noCheckpoint(path: String)
  /// A folder without the best epoch's checkpoint (best.dptc), asked for it.
  case noBestCheckpoint(folder: String)
  /// The checkpoint's network is not the one this run builds.
  case modelDiffers(path: String, checkpoint: String, run: String)
  /// The checkpoint was trained on other data.
  case dataDiffer(path: String, checkpointData: String, checkpointRows: Int, runData: String, runRows: Int)
  /// A tensor the model needs is not in the file.
  case missingTensor(path: String, name: String, shape: [Int], available: [String])
  /// A tensor of another shape than the model's (`transposed`: dense weights in PyTorch's (outputs, inputs)).
  case tensorShape(path: String, name: String, found: [Int], expected: [Int], transposed: Bool)
  /// The checkpoint stopped after `samples` samples of `epoch`, where no batch of this run's size starts.
  case positionBetweenBatches(path: String, samples: Int, epoch: Int, checkpointBatch: Int?, batch: Int)

  public var description: String {
    switch self {
    case .malformed(let text): text
    case .noCheckpoint(let p): "\(p): no checkpoint there"
    case .noBestCheckpoint(let f): "\(f) holds no best epoch's checkpoint (best.dptc)"
    case .modelDiffers(let p, let c, let r): "\(p): the model differs: the checkpoint holds '\(c)', this run builds '\(r)'"
    case .dataDiffer(let p, let cd, let cr, let rd, let rr):
      "\(p): the data differ: the checkpoint was trained on \(cd) (\(cr) training rows), this run on \(rd) (\(rr))"
    case .missingTensor(let p, let name, let shape, let names):
      "\(p): no tensor '\(name)' (this model needs \(name) of shape \(shape); the file holds \(names.joined(separator: ", ")))"
    case .tensorShape(let p, let name, let found, let expected, let t):
      "\(p): tensor '\(name)' has shape \(found); this model's \(name) is \(expected)\(t ? " (PyTorch's (outputs, inputs))" : "")"
    case .positionBetweenBatches(let p, let n, let e, let old, let b):
      "\(p): written after \(n) samples of epoch \(e), where no batch of \(b) starts\(old.map { " (the checkpoint's batches held \($0))" } ?? "")"
    }
  }
}
