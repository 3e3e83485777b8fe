// A layer of one's own, outside dpt's sources: Swish with a learned slope per feature, y = x sigmoid(beta x) (Ramachandran
// et al. 2017), as a `Layer` (its forward and backward passes over its slice of the flat parameter buffer) and a
// `LayerDefinition` (its name in a list, its arguments, the layer it builds for a shape). Registered, it is written in
// a list like any built-in item, trained data-parallel, checkpointed and exported; its gradient is checked here by
// finite differences.
//
//   swift build -c release --product CustomLayerExample
//   mpirun -np 2 .build/release/CustomLayerExample        # or alone, without mpirun
import DPT
import Foundation

/// y = x sigmoid(beta_j x) for feature j (the last dimension), beta learned, initialised to `initial`.
///   dy/dx = s + beta x s (1 - s),  dy/dbeta = x^2 s (1 - s),  s = sigmoid(beta x)
struct Swish<T: LayerKernels>: Layer {
  let shape: [Int]
  let initial: Double
  var features: Int { shape[shape.count - 1] }

  var inputShape: [Int] { shape }
  var outputShape: [Int] { shape }
  var parameters: [ParameterSpec] { [ParameterSpec(name: "beta", shape: [features])] }

  func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {
    for i in p.indices { p[i] = T(initial) }
  }

  static func sigmoid(_ z: T) -> T { 1 / (1 + T.exp(-z)) }

  func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    var y = x
    let d = features
    for i in 0..<x.count {
      let v = x.scalars[i]
      y.scalars[i] = v * Self.sigmoid(p[i % d] * v)
    }
    return y
  }

  func backward(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
                gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool) -> Tensor<T>? {
    var dx = x
    let d = features
    for i in 0..<x.count {
      let v = x.scalars[i], beta = p[i % d]
      let s = Self.sigmoid(beta * v), ds = s * (1 - s)
      dp[i % d] += dy.scalars[i] * v * v * ds
      dx.scalars[i] = dy.scalars[i] * (s + beta * v * ds)
    }
    return needsInputGradient ? dx : nil
  }

  var summary: String { "swish(\(features))" }

  /// Its PyTorch module, so that `dpt export --pytorch` writes it too.
  var pytorch: PyTorchModule? {
    PyTorchModule("Swish(\(features), \(initial))", classes: ["Swish": """
      class Swish(nn.Module):
          def __init__(self, d, beta):
              super().__init__()
              self.beta = nn.Parameter(torch.full((d,), float(beta)))

          def forward(self, x):
              return x * torch.sigmoid(self.beta * x)
      """])
  }
}

/// `swish` or `swish(beta=0.5)` in a list.
struct SwishItem: LayerDefinition {
  static let names = ["swish"]
  static let usage = "swish(beta=1)"
  var beta: Double

  init(beta: Double = 1) { self.beta = beta }

  init(_ a: LayerArguments) throws {
    let b = try a.bind(["beta"], example: "swish(beta=0.5)")
    self.init(beta: try b.number("beta", 1)!)
  }

  var text: String { LayerText.call("swish", beta == 1 ? [] : ["beta=\(LayerText.number(beta))"]) }

  func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    _ = try input.features("swish")
    return Swish<T>(shape: input.shape, initial: beta)
  }
}

/// The largest relative error of the layer's analytic gradients (parameters and inputs) against central differences
/// of sum(r * y), in Double.
func gradientCheck() -> Double {
  let layer = Swish<Double>(shape: [5], initial: 0.7)
  var rng = RandomSource(seed: 1)
  let x = Tensor<Double>(shape: [3, 5], scalars: (0..<15).map { _ in rng.uniform(-2, 2) })
  let r = (0..<15).map { _ in rng.uniform(-1, 1) }
  var p = (0..<5).map { _ in rng.uniform(0.2, 1.5) }
  func f(_ x: Tensor<Double>, _ p: [Double]) -> Double {
    let y = p.withUnsafeBufferPointer { layer.forward(x, parameters: $0) }
    return zip(y.scalars, r).reduce(0) { $0 + $1.0 * $1.1 }
  }
  var dp = [Double](repeating: 0, count: 5)
  let dx = p.withUnsafeBufferPointer { pb in
    dp.withUnsafeMutableBufferPointer { g in
      layer.backward(Tensor(shape: [3, 5], scalars: r), input: x, output: layer.forward(x, parameters: pb), parameters: pb,
                     gradients: g, needsInputGradient: true)!
    }
  }
  let h = 1e-6
  var worst = 0.0
  func compare(_ analytic: Double, _ numeric: Double) { worst = max(worst, abs(analytic - numeric) / max(abs(analytic) + abs(numeric), 1e-8)) }
  for j in 0..<5 {
    let keep = p[j]
    p[j] = keep + h; let up = f(x, p)
    p[j] = keep - h; let down = f(x, p)
    p[j] = keep
    compare(dp[j], (up - down) / (2 * h))
  }
  for i in 0..<15 {
    var a = x, b = x
    a.scalars[i] += h
    b.scalars[i] -= h
    compare(dx.scalars[i], (f(a, p) - f(b, p)) / (2 * h))
  }
  return worst
}

BLASKernelChoice.apply()
let communicator: any Communicator = MPICommunicator.isLaunchedByMPI ? try MPICommunicator.world() : LocalCommunicator()
LayerList.register(SwishItem.self)

// Two interleaved spirals, 600 points of 2 classes: a boundary a linear model cannot draw.
var rng = RandomSource(seed: 42)
var rows: [[Double]] = [], labels: [Int] = []
for i in 0..<600 {
  let c = i % 2, t = Double(i / 2) / 300 * 3 * Double.pi
  let radius = 0.3 + t / (3 * Double.pi)
  let angle = t + Double(c) * Double.pi
  rows.append([radius * cos(angle) + rng.uniform(-0.04, 0.04), radius * sin(angle) + rng.uniform(-0.04, 0.04)])
  labels.append(c)
}
let data = try Catalog.split(Dataset.table(features: rows, labels: labels), name: "spirals", testFraction: 0.25, seed: 0)

let model = try Sequential("dense(32), swish, dense(32), swish(beta=0.5), dense(2)")
var config = TrainingConfig(model: ModelSpec(model), loss: .crossEntropy,
                            optimizer: OptimizerSpec(kind: .adam, learningRate: 0.01), batchSize: 32,
                            epochs: Int(ProcessInfo.processInfo.environment["EPOCHS"] ?? "60") ?? 60)
let trainer = try Trainer<Float>(config: config, data: data, communicator: communicator)
if communicator.isRoot {
  print("\(model) on two spirals, \(communicator.size) rank(s): \(trainer.network.summary)")
  print(String(format: "gradient check: max relative error %.2e", gradientCheck()))
}
var last: EpochMetrics?
for _ in 0..<config.epochs { last = try trainer.runEpoch() }
if communicator.isRoot, let m = last {
  print(String(format: "epoch %d  train loss %.4f  test acc %.4f", m.epoch, m.train.loss, m.test?.accuracy ?? .nan))
  let betas = trainer.network.namedParameters.filter { $0.name.hasSuffix(".beta") }
    .map { n in trainer.parameters[n.range].map { String(format: "%.2f", $0) }.prefix(4).joined(separator: " ") }
  print("learned slopes (first four of each swish): \(betas.joined(separator: " | "))")
}
if MPICommunicator.isLaunchedByMPI { MPICommunicator.finalize() }
