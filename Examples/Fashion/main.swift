// A Fashion-MNIST model written in code and trained data-parallel: every rank holds a replica, the gradients are
// all-reduced, rank 0 prints. Fashion-MNIST comes from Debian's dataset-fashion-mnist (`dpt data fetch` as root).
//
//   swift build -c release --product FashionExample
//   mpirun -np 2 .build/release/FashionExample        # or alone, without mpirun
import DPT
import Foundation

// OpenBLAS's widest kernel for this CPU (it falls back to an SSE one on CPUs it does not know), before MPI starts.
BLASKernelChoice.apply()
let communicator: any Communicator = MPICommunicator.isLaunchedByMPI ? try MPICommunicator.world() : LocalCommunicator()
let epochs = Int(ProcessInfo.processInfo.environment["EPOCHS"] ?? "2") ?? 2
let data = try Catalog.load(.fashionMNIST)
let model = Sequential(.flatten, .dense(256), .batchnorm, .relu, .dropout(0.2), .dense(10))
let config = TrainingConfig(model: ModelSpec(model), loss: .crossEntropy,
                            optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4),
                            batchSize: 128, epochs: epochs)
let trainer = try Trainer<Float>(config: config, data: data, communicator: communicator)
if communicator.isRoot { print("\(model) on fashion-mnist, \(communicator.size) rank(s)") }
for _ in 0..<config.epochs {
  let m = try trainer.runEpoch()
  if communicator.isRoot {
    print(String(format: "epoch %d  train loss %.4f  test acc %.4f  %.0f samples/s", m.epoch, m.train.loss, m.test?.accuracy ?? .nan,
                 Double(m.samples) / m.seconds))
  }
}
if MPICommunicator.isLaunchedByMPI { MPICommunicator.finalize() }
