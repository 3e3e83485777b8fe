// The dpt library: write a model in code and train it data-parallel under mpirun, without the command line.
//
//     import DPT
//
//     let data = DataSplit(name: "xor", train: .table(features: [[0, 0], [0, 1], [1, 0], [1, 1]], labels: [0, 1, 1, 0]))
//     var config = TrainingConfig(model: ModelSpec(Sequential(.dense(8), .tanh, .dense(2))), loss: .crossEntropy,
//                                 optimizer: OptimizerSpec(learningRate: 0.5, momentum: 0.9), batchSize: 4, epochs: 200)
//     World.prepare()
//     let communicator = try World.start()
//     let trainer = try Trainer<Float>(config: config, data: data, communicator: communicator)
//     let outcome = try Run(trainer: trainer).execute()   // or trainer.runEpoch() in a loop of one's own
//     try World.finish(communicator)
//
// What it offers, module by module:
// - TensorCore: `Tensor`, the BLAS-backed scalar kernels, `RandomSource`, `BLASKernelChoice` (OpenBLAS's widest
//   kernel for the CPU: call `BLASKernelChoice.apply()` first thing in `main`).
// - Layers: the layers (`Dense`, `Conv2D`, `BatchNorm`, `Dropout`, pooling, activations, `Softmax`), `Sequential` and
//   `LayerList` (a model as a list of layers, in code or text), `Network` (one flat parameter buffer), `Loss`.
// - Optimizers: `SGD`, `Adagrad`, `RMSprop`, `Adam`, `LBFGS`, schedules.
// - Datasets: `Dataset` (also `Dataset.table(features:labels:)` for rows in memory), `DataSplit`, `Catalog` (MNIST,
//   Fashion-MNIST, CSV, IDX), `Sharding`.
// - Collectives: `Communicator`, `LocalCommunicator` (one process), `MPICommunicator`, `InProcessGroup` (ranks as
//   threads, for tests).
// - Training: `Trainer` (the data-parallel step), `Run` (the epoch loop `dpt train` runs: checkpoints, early stopping,
//   divergence, signals) and its `RunObserver`s, `TrainingConfig`, `ModelSpec`, `OptimizerSpec`, `EpochMetrics`.
// - DPT itself: `World` (the process's start and end under mpirun or alone, as `dpt` does them).
// - LeastSquares: the closed form, distributed (`LeastSquares.fit`), and `ClosedFormComparison` beside SGD's fit.
@_exported import Collectives
@_exported import Datasets
@_exported import Layers
@_exported import Optimizers
@_exported import TensorCore
@_exported import Training
@_exported import LeastSquares
// The JSON value of metrics rows and traces.
@_exported import enum _Support.JSON
