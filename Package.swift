// swift-tools-version:6.1
import Foundation
import PackageDescription

// MARK: - C libraries (Debian packages, found through pkg-config)
//
// Only TensorCore imports _CBLAS and only Collectives imports _CMPI; _CZlib (gzip, zip members) and _CImage (libpng,
// libjpeg-turbo) are the file readers of Datasets.
let systemLibraries: [Target] = [
  .systemLibrary(name: "_CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
  .systemLibrary(name: "_CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
  .systemLibrary(name: "_CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
  .systemLibrary(name: "_CImage", pkgConfig: "libpng", providers: [.apt(["libpng-dev", "libjpeg62-turbo-dev"])]),
]

// MARK: - Library modules, one job each

let numerics = Target.Dependency.product(name: "Numerics", package: "swift-numerics")
// The element loops (im2col, pooling, activations, optimizers, 16-bit codes) vectorise with AVX2 and FMA instead of
// baseline x86-64's SSE2: +8% on the CNN, +5% on the MLP, bitwise the same results (Swift does not contract a * b + c
// into an FMA by itself). Every x86-64 CPU since Intel's Haswell (2013) and every AMD Zen has them; set
// DPT_PORTABLE=1 when building a binary for older ones. OpenBLAS picks its own kernels at run time either way.
#if arch(x86_64)
let fast: [SwiftSetting] = ProcessInfo.processInfo.environment["DPT_PORTABLE"] == nil
  ? [.unsafeFlags(["-target-cpu", "haswell"])] : []
// The AVX-512 build of the kernels, run only where the CPU reports AVX-512 F/BW/DQ/VL (`KernelISA`).
let avx512: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "skylake-avx512"])]
#else
let fast: [SwiftSetting] = []
let avx512: [SwiftSetting] = []
#endif

let libraries: [Target] = [
  // What every module shares and no module owns: JSON, CRC-32C, whole-or-nothing file writes, little-endian bytes,
  // the clock, number text. Depends on nothing.
  .target(name: "_Support", swiftSettings: fast),
  // Tensors, BLAS/LAPACK, random numbers.
  .target(name: "TensorCore", dependencies: ["_CBLAS", "_Support", numerics], swiftSettings: fast),
  // The hand-written vector kernels (Sources/_Kernels), compiled twice: for AVX2 and FMA (x86-64 since 2013), and for
  // AVX-512 (16-float registers, 32 of them). One binary; Layers calls the build the CPU runs.
  .target(name: "_KernelsAVX2", swiftSettings: fast),
  .target(name: "_KernelsAVX512", swiftSettings: avx512),
  // Layers (forward + backward) and losses.
  .target(name: "Layers", dependencies: ["TensorCore", "_KernelsAVX2", "_KernelsAVX512"], swiftSettings: fast),
  // Update rules on one flat parameter buffer.
  .target(name: "Optimizers", dependencies: ["TensorCore"], swiftSettings: fast),
  // IDX and CSV readers, the data-set catalogue, sharding.
  .target(name: "Datasets", dependencies: ["TensorCore", "_CZlib", "_CImage", "_Support"], swiftSettings: fast),
  // The communicator protocol: local, in-process (tests) and MPI.
  .target(name: "Collectives", dependencies: ["_CMPI", "_Support"], swiftSettings: fast),
  // The file formats of trained weights: dpt's checkpoint and safetensors.
  .target(name: "FileFormats", dependencies: ["_Support", "TensorCore", "Layers", "Optimizers", "Datasets"], swiftSettings: fast),
  // Data-parallel training: the run description, the trainer and its step, the gradient exchanges, checkpoints of a
  // trainer, the step trace.
  .target(name: "Training", dependencies: ["_Support", "FileFormats", "TensorCore", "Layers", "Optimizers", "Datasets", "Collectives"],
          swiftSettings: fast),
  // The closed form: distributed least squares and ridge (Gram matrix or TSQR), and a linear model's fit beside SGD's.
  .target(name: "LeastSquares", dependencies: ["_Support", "TensorCore", "Layers", "Datasets", "Collectives", "Training"],
          swiftSettings: fast),
  // Experiments: sweeps on groups of ranks, their plan and summary, a run's monitor (divergence, early stopping) and
  // the findings of its curves.
  .target(name: "Experiments", dependencies: ["_Support", "FileFormats", "Datasets", "Collectives", "Training", "LeastSquares"]),
  // The scaling model: a step's time on N ranks from its profile and the link between hosts.
  .target(name: "Scaling", dependencies: ["_Support", "Collectives", "Training"]),
  // What a user reads: the epoch table, the log folder's files, SVG and PNG charts, the HTML report, TensorBoard events.
  .target(name: "Reports", dependencies: ["_Support", "FileFormats", "Datasets", "Training", "Experiments"]),
  // The library's front door: `import DPT` re-exports the tensors, layers, losses, optimizers, data sets, communicators
  // and the trainer, for programs that build a model in code.
  .target(name: "DPT", dependencies: ["_Support", "TensorCore", "Layers", "Optimizers", "Datasets", "Collectives", "Training",
                                      "LeastSquares"]),
]

// MARK: - The command-line tool

let executables: [Target] = [
  // Programs that use the library as an outside package would (Examples/README.md): scripts/test builds and runs them.
  .executableTarget(name: "HandOutExample", dependencies: ["DPT"], path: "Examples/HandOut"),
  .executableTarget(name: "FashionExample", dependencies: ["DPT"], path: "Examples/Fashion"),
  .executableTarget(name: "CustomLayerExample", dependencies: ["DPT"], path: "Examples/CustomLayer"),
  .executableTarget(
    name: "DPTCommand",
    dependencies: [
      "DPT", "_Support", "FileFormats", "Training", "LeastSquares", "Experiments", "Scaling", "Reports", "Datasets", "Layers",
      "Optimizers", "Collectives", "TensorCore", .product(name: "ArgumentParser", package: "swift-argument-parser"),
    ]
  )
]

// MARK: - Tests

let tests: [Target] = [
  .target(name: "_TestSupport", dependencies: ["TensorCore", "Layers", "Datasets", "Training"], path: "Tests/_TestSupport"),
  .testTarget(name: "SupportTests", dependencies: ["_Support", "_TestSupport"]),
  .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "_TestSupport"]),
  .testTarget(name: "LayersTests", dependencies: ["Layers", "_TestSupport"]),
  .testTarget(name: "OptimizersTests", dependencies: ["Optimizers", "_TestSupport"]),
  .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "_TestSupport"]),
  .testTarget(name: "CollectivesTests", dependencies: ["Collectives"]),
  .testTarget(name: "TrainingTests", dependencies: ["Training", "LeastSquares", "Experiments", "Scaling", "FileFormats", "_Support",
                                                   "_TestSupport"]),
  .testTarget(name: "ReportsTests", dependencies: ["Reports", "Training", "Experiments", "Collectives", "_Support", "_TestSupport"]),
  .testTarget(name: "BinaryTests", dependencies: ["Training", "Datasets", "FileFormats", "TensorCore", "_Support", "_TestSupport"]),
]

// MARK: - Fuzzing (scripts/fuzz): the readers as a libFuzzer harness library, declared only when DPT_FUZZ is set

let fuzzing = ProcessInfo.processInfo.environment["DPT_FUZZ"] != nil
let fuzz: [Target] = fuzzing ? [.target(name: "DPTFuzzTargets", dependencies: ["Datasets", "FileFormats", "_Support"], path: "Fuzz")] : []
let fuzzProducts: [Product] = fuzzing ? [.library(name: "DPTFuzzTargets", type: .dynamic, targets: ["DPTFuzzTargets"])] : []

let package = Package(
  name: "dpt",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "dpt", targets: ["DPTCommand"]),
    .library(name: "DPT", targets: ["DPT"]),
  ] + fuzzProducts,
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
  ],
  targets: systemLibraries + libraries + executables + tests + fuzz,
  // Swift 6: data races are compile errors. The only unchecked globals are the cells signal handlers write
  // (Signals, LaunchSignals, Watchdog.activity), which may take no lock; other process-wide state is `Locked`.
  swiftLanguageModes: [.v6]
)
