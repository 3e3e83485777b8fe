// A Fashion-MNIST model written in code and trained data-parallel: every rank holds a replica, the gradients are
// all-reduced, rank 0 prints. Fashion-MNIST comes from Debian's dataset-fashion-mnist (`dpt data fetch` as root).
//
//   swift build -c release --product FashionExample
//   mpirun -np 2 .build/release/FashionExample        # or alone, without mpirun
import DPT
import Foundation

// What `dpt train` does before anything else: OpenBLAS's widest kernel for this CPU (it falls back to an SSE one on
// CPUs it does not know), then the world: MPI under mpirun, one local rank otherwise.
World.prepare()
let communicator = try World.start()
let epochs = Int(ProcessInfo.processInfo.environment["EPOCHS"] ?? "2") ?? 2
let data = try Catalog.load(.fashionMNIST)
let model = Sequential(.flatten, .dense(256), .batchnorm, .relu, .dropout(0.2), .dense(10))
let config = TrainingConfig(model: ModelSpec(model), loss: .crossEntropy,
                            optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4),
                            batchSize: 128, epochs: epochs)
let trainer = try Trainer<Float>(config: config, data: data, communicator: communicator)
if communicator.isRoot { print("\(model) on fashion-mnist, \(communicator.size) rank(s)") }

/// What this program shows of the run: a line per epoch and how it ended (rank 0).
final class Printer: RunObserver {
  func epochEnded(_ run: Run, _ m: EpochMetrics) throws {
    guard run.trainer.communicator.isRoot else { return }
    print(String(format: "epoch %d  train loss %.4f  test acc %.4f  %.0f samples/s", m.epoch, m.train.loss, m.test?.accuracy ?? .nan,
                 Double(m.samples) / m.seconds))
  }

  func runEnded(_ run: Run, _ outcome: RunOutcome) throws {
    if run.trainer.communicator.isRoot { print("run \(outcome.status.description)") }
  }
}

// The loop `dpt train` runs: early stopping on the test loss after 3 epochs without improvement, divergence, and the
// same verdict on every rank.
let outcome = try Run(trainer: trainer, patience: 3).execute(observers: [Printer()])
try World.finish(communicator)
if outcome.status != .finished && outcome.status.name != "stopped-early" { exit(1) }
