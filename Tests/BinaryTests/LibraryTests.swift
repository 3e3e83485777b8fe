import Foundation
import Testing
import _TestSupport

extension BinaryTests {
  /// dpt as a Swift library: the examples run, and a package of someone else's builds against `import DPT`.
  @Suite struct LibraryTests {
    static let dir = TemporaryDirectory("dpt-library")
    /// An example program, built beside `dpt`.
    static func example(_ name: String) -> String {
      URL(fileURLWithPath: DPTBinary.path).deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// The hand-out network in code: three steps, and the first step's numbers as a hand computes them, under
    /// OpenBLAS's own kernel choice and under its oldest x86-64 kernel.
    @Test(arguments: ["", "Prescott"]) func theHandOutExampleRuns(kernel: String) {
      let r = Subprocess.run([Self.example("HandOutExample")], environment: kernel.isEmpty ? [:] : ["OPENBLAS_CORETYPE": kernel])
      #expect(r.status == 0, "\(r.stderr)")
      // Numbers are compared with a tolerance, not as printed digits: the last bits depend on the BLAS kernel (z2 is
      // -0.009999999999999995 under OpenBLAS's Prescott kernel).
      func numbers(after prefix: String) -> [Double] {
        guard let line = r.stdout.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return [] }
        return line.dropFirst(prefix.count).split(whereSeparator: { !"0123456789.-e".contains($0) }).compactMap { Double($0) }
      }
      func close(_ a: [Double], _ b: [Double], _ what: String) {
        #expect(a.count >= b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-6 }, "\(what): \(a) against \(b)\n\(r.stdout)")
      }
      close(numbers(after: "step 1 layer 0 dense(3): z "), [0.6, 0.6, -0.6], "z1")
      close(numbers(after: "step 1 layer 2 dense(1): z "), [-0.01], "z2")
      close(numbers(after: "  loss "), [0.13005], "the first loss")
      close(numbers(after: "trained: 0.weight "), [0.144326, 0.288652], "the trained weights")
    }

    /// A Fashion-MNIST model written in code trains data-parallel under mpirun.
    @Test func theFashionExampleTrainsOnTwoRanks() throws {
      let r = Subprocess.run(["mpirun", "-np", "2", "--oversubscribe", Self.example("FashionExample")],
                             environment: DPTBinary.mpiEnvironment.merging(["EPOCHS": "1"]) { $1 }, timeout: 300)
      #expect(r.status == 0, "\(r.stderr)")
      #expect(r.stdout.contains("2 rank(s)") && r.stdout.components(separatedBy: "epoch 1 ").count == 2, "printed once: \(r.stdout)")
      let accuracy = r.stdout.components(separatedBy: "test acc ").last.flatMap { Double($0.prefix(6)) } ?? 0
      #expect(accuracy > 0.7, "\(r.stdout)")
    }

    /// A layer written outside dpt's sources (Swish with learned slopes, in Examples/CustomLayer) is registered, named in
    /// a list, trained on two ranks, and its gradient checked by finite differences.
    @Test func theCustomLayerExampleTrainsOnTwoRanks() throws {
      let r = Subprocess.run(["mpirun", "-np", "2", "--oversubscribe", Self.example("CustomLayerExample")],
                             environment: DPTBinary.mpiEnvironment, timeout: 300)
      #expect(r.status == 0, "\(r.stderr)")
      #expect(r.stdout.contains("swish(beta=0.5), dense(2) on two spirals, 2 rank(s)") && r.stdout.contains("| swish(32) |"), "\(r.stdout)")
      let error = r.stdout.components(separatedBy: "gradient check: max relative error ").last.flatMap { Double($0.prefix(8)) } ?? 1
      #expect(error < 1e-6, "\(r.stdout)")
      let accuracy = r.stdout.components(separatedBy: "test acc ").last.flatMap { Double($0.prefix(6)) } ?? 0
      #expect(accuracy > 0.9, "\(r.stdout)")
    }

    /// An outside package that depends on dpt by path and uses `import DPT` builds, and its program trains alone and
    /// under mpirun.
    @Test(.timeLimit(.minutes(15))) func anOutsidePackageImportsDPT() throws {
      let root = Package.root
      let name = URL(fileURLWithPath: root).lastPathComponent.lowercased()
      let pkg = Self.dir.file("outside")
      try FileManager.default.createDirectory(atPath: pkg + "/Sources/Outside", withIntermediateDirectories: true)
      Self.dir.write("outside/Package.swift", """
        // swift-tools-version:6.1
        import PackageDescription
        let package = Package(
          name: "outside",
          dependencies: [.package(path: "\(root)")],
          targets: [.executableTarget(name: "Outside", dependencies: [.product(name: "DPT", package: "\(name)")])]
        )
        """)
      Self.dir.write("outside/Sources/Outside/main.swift", """
        import DPT
        let rows: [[Double]] = (0..<64).map { (i: Int) -> [Double] in [Double(i % 8) / 4 - 1, Double(i / 8) / 4 - 1] }
        let labels: [Int] = rows.map { (r: [Double]) -> Int in r[0] * r[1] > 0 ? 1 : 0 }
        let data = DataSplit(name: "quadrants", train: .table(features: rows, labels: labels))
        let config = TrainingConfig(model: ModelSpec(Sequential(.dense(16), .tanh, .dense(2))), loss: .crossEntropy,
                                    optimizer: OptimizerSpec(learningRate: 0.5, momentum: 0.9), batchSize: 16, epochs: 60)
        let communicator: any Communicator = MPICommunicator.isLaunchedByMPI ? try MPICommunicator.world() : LocalCommunicator()
        let trainer = try Trainer<Float>(config: config, data: data, communicator: communicator)
        var last = 0.0
        for _ in 0..<config.epochs { last = try trainer.runEpoch().train.accuracy }
        if communicator.isRoot { print("ranks \\(communicator.size) accuracy \\(last)") }
        if MPICommunicator.isLaunchedByMPI { MPICommunicator.finalize() }
        """)
      let build = Subprocess.run(["swift", "build", "--package-path", pkg], timeout: 840)
      #expect(build.status == 0, "\(build.stdout.suffix(3000)) \(build.stderr.suffix(3000))")
      guard build.status == 0 else { return }
      let program = pkg + "/.build/debug/Outside"
      let alone = Subprocess.run([program])
      #expect(alone.stdout.contains("ranks 1 accuracy 1.0"), "\(alone.stdout) \(alone.stderr)")
      let two = Subprocess.run(["mpirun", "-np", "2", "--oversubscribe", program], environment: DPTBinary.mpiEnvironment)
      #expect(two.stdout.contains("ranks 2 accuracy 1.0"), "\(two.stdout) \(two.stderr)")
    }
  }
}
