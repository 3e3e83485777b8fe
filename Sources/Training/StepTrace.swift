import Collectives
import Foundation
import Layers
import TensorCore
import _Support

/// `--trace`: the first steps of a run, layer by layer, for checking a hand computation.
///
/// For each of the first `steps` steps, one JSON object per layer, in forward order: `step` (from 1), `layer` (its
/// index in the list), `name` (`dense(3)`), `input` and `output` (a dense or convolution layer's output is its
/// pre-activation: the activation is a layer of its own), `grad_output` (dL/d output, the hand-outs' delta), and for a
/// layer with parameters `weight` and `bias` before the update with `grad_weight` and `grad_bias` (the gradient every
/// rank applies, after the exchange). Then one object with `step`, `loss` and `learning_rate`. Values are nested
/// lists in PyTorch's layout (a dense weight is out x in), for the rows of the global batch in batch order, gathered
/// from every rank and written once. With `limit`, a tensor of more elements keeps its shape, its norm and its first
/// `limit` values.
public final class StepTrace<T: TrainingScalar> {
  public let steps: Int
  public let limit: Int?
  /// Writes one line (rank 0's file; nil on the other ranks).
  let write: ((String) throws -> Void)?
  /// Recording the current step's first evaluation.
  var active = false
  /// Per piece of this rank: where its rows start in the batch, and each layer's activations and dL/d(output).
  var pieces: [(start: Int, activations: [Tensor<T>], gradOutputs: [Int: Tensor<T>])] = []

  public init(steps: Int, limit: Int?, write: ((String) throws -> Void)?) {
    self.steps = steps
    self.limit = limit
    self.write = write
  }

  /// Starts recording the first evaluation of step `step` (0-based), when it is one of the first `steps`.
  func begin(step: Int) {
    active = step < steps
    pieces = []
  }

  /// The backward pass's observer: each layer's dL/d(output) of every piece.
  func gradientObserver(starts: [Int]) -> ((Int, [Tensor<T>]) -> Void)? {
    guard active else { return nil }
    pieces = starts.map { ($0, [], [:]) }
    return { [self] i, d in for k in d.indices { pieces[k].gradOutputs[i] = d[k] } }
  }

  /// The forward pass's activations of every piece (x, then each layer's output).
  func forward(_ activations: [[Tensor<T>]]) {
    guard active else { return }
    for k in activations.indices { pieces[k].activations = activations[k] }
  }

  /// Gathers the step's rows from every rank and writes its lines: the layers' values, their parameters `p` (before
  /// the update) and gradients `g` (after the exchange), and the loss. Collective: every rank calls it.
  func finish(step: Int, network: Network<T>, items: [LayerItem], parameters p: [T], gradients g: [T],
              loss: Double, learningRate: Double, communicator: any Communicator) throws {
    guard active else { return }
    active = false
    let L = network.layers.count
    // Every rank's pieces: start, then per layer input, output and grad_output of its rows, as raw Doubles.
    var mine: [Double] = [Double(pieces.count)]
    for piece in pieces {
      mine.append(Double(piece.start))
      mine.append(Double(piece.activations.first?.batch ?? 0))
      for i in 0..<L {
        for t in [piece.activations[i], piece.activations[i + 1], piece.gradOutputs[i]] {
          let values = t.map { $0.scalars.map(StepTrace.shortest) } ?? []
          mine.append(Double(values.count))
          mine += values
        }
      }
    }
    let gathered = try communicator.allGather(mine.withUnsafeBytes { Array($0) })
    guard let write else { return }
    // Rows in batch order: each piece's values per layer, assembled by start.
    var parts: [(start: Int, rows: Int, layers: [[[Double]]])] = []
    for bytes in gathered {
      let v = bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
      var at = 1
      for _ in 0..<Int(v[0]) {
        let start = Int(v[at]), rows = Int(v[at + 1])
        at += 2
        var layers: [[[Double]]] = []
        for _ in 0..<L {
          var three: [[Double]] = []
          for _ in 0..<3 {
            let n = Int(v[at])
            three.append(Array(v[at + 1..<at + 1 + n]))
            at += 1 + n
          }
          layers.append(three)
        }
        parts.append((start, rows, layers))
      }
    }
    parts.sort { $0.start < $1.start }
    let rows = parts.reduce(0) { $0 + $1.rows }
    for (i, layer) in network.layers.enumerated() {
      var o: [(String, JSON)] = [("step", JSON(step + 1)), ("layer", JSON(i)), ("name", JSON(items.indices.contains(i) ? items[i].description : layer.summary))]
      for (key, which, shape) in [("input", 0, layer.inputShape), ("output", 1, layer.outputShape), ("grad_output", 2, layer.outputShape)] {
        o.append((key, tensor(parts.flatMap { $0.layers[i][which] }, shape: [rows] + shape)))
      }
      let own = network.namedParameters.filter { $0.name.hasPrefix("\(i).") }
      for (n, spec, range) in own {
        let key = String(spec.pytorchName.dropFirst("\(i).".count))
        let dense = spec.transposed
        let shape = spec.pytorchShape
        func values(_ b: UnsafeBufferPointer<T>) -> [Double] {
          let flat = range.map { StepTrace.shortest(b[$0]) }
          guard dense else { return flat }
          let (inputs, outputs) = (spec.shape[0], spec.shape[1])
          return (0..<outputs).flatMap { j in (0..<inputs).map { flat[$0 * outputs + j] } }
        }
        o.append((key, tensor(p.withUnsafeBufferPointer(values), shape: shape)))
        o.append(("grad_" + key, tensor(g.withUnsafeBufferPointer(values), shape: shape)))
      }
      try write(JSON.object(o).serialized())
    }
    try write(JSON.object([("step", JSON(step + 1)), ("loss", JSON(loss)), ("learning_rate", JSON(learningRate))]).serialized())
  }

  /// The Double that prints as `x` prints in its own precision (a Float's 0.6 as 0.6, not 0.6000000238418579).
  static func shortest(_ x: T) -> Double { Double("\(x)") ?? Double(x) }

  /// A tensor as nested lists of `shape`, or, beyond `limit` elements, its shape, norm and first values.
  func tensor(_ values: [Double], shape: [Int]) -> JSON {
    if let limit, values.count > limit {
      let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
      return .object([("shape", .array(shape.map { JSON($0) })), ("norm", JSON(norm)), ("first", JSON(Array(values.prefix(limit))))])
    }
    func nest(_ v: ArraySlice<Double>, _ s: ArraySlice<Int>) -> JSON {
      guard let d = s.first, s.count > 1 else { return JSON(Array(v)) }
      let inner = s.dropFirst().reduce(1, *)
      return .array((0..<d).map { nest(v[v.startIndex + $0 * inner..<v.startIndex + ($0 + 1) * inner], s.dropFirst()) })
    }
    return shape.isEmpty ? JSON(values.first ?? .nan) : nest(values[...], shape[...])
  }
}
