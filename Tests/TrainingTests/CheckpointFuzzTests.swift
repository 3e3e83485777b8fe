import Collectives
import FileFormats
import Foundation
import Testing
import Training
import _Support
import _TestSupport

/// Seeded mutation fuzzing of the checkpoint reader and of restoring: every mutated checkpoint is read or rejected
/// with a WeightsProblem, never a crash.
@Suite(.timeLimit(.minutes(3))) struct CheckpointFuzzTests {
  @Test func checkpointReader() throws {
    let data = syntheticImages(count: 20)
    let config = TrainingConfig(model: ModelSpec(kind: .mlp, hidden: [4], activation: .prelu),
                                loss: .crossEntropy, optimizer: OptimizerSpec(learningRate: 0.1, momentum: 0.9),
                                batchSize: 10, epochs: 1, seed: 1)
    let t = try Trainer<Float>(config: config, data: data, communicator: LocalCommunicator())
    try t.trainEpoch()
    let good = try t.checkpoint().encoded()
    var mutator = Mutator(seed: 2026, alphabet: Array("{}[]\":,0123456789-.e ".utf8))
    let rounds = 3000
    // Half the inputs are mutated anywhere (the checksums catch nearly all of them); the other half only in the JSON
    // header, with its length and checksum recomputed, so the parser and the checks behind the checksums are reached.
    let headerLength = good[12..<16].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let header = Array(good[20..<20 + headerLength]), payload = Array(good[(20 + headerLength)...])
    func le(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) } }
    let r = Fuzzing.run(rounds: rounds, input: { i in
      if i % 2 == 0 { return mutator.mutate(good) }
      let h = mutator.mutate(header)
      return Array(good[0..<12]) + le(UInt32(h.count)) + le(CRC32C.checksum(h)) + h + payload
    }, read: { input in
      let c = try Checkpoint(decoding: input, path: "fuzz")
      let fresh = try Trainer<Float>(config: config, data: data, communicator: LocalCommunicator())
      try fresh.restore(c, path: "fuzz")
    }, isClean: { $0 is WeightsProblem })
    for (i, error) in r.unexpected { Issue.record("input \(i) raised \(type(of: error)), not a WeightsProblem: \(error)") }
    let (accepted, rejected) = (r.read, r.rejected)
    print("fuzz checkpoint: \(rounds) mutated checkpoints, \(accepted) restored, \(rejected) rejected with a clear error")
    #expect(rejected > rounds / 2)
  }

  /// Seeded mutations of `dpt export`'s safetensors, half of them in the JSON header with its length recomputed:
  /// every file is read or rejected with a WeightsProblem, never a crash, and what is read obeys the format's rules.
  @Test func safetensorsReader() throws {
    let data = syntheticImages(count: 20)
    let config = TrainingConfig(model: ModelSpec(kind: .mlp, hidden: [4], activation: .prelu),
                                loss: .crossEntropy, optimizer: OptimizerSpec(learningRate: 0.1), batchSize: 10, epochs: 1)
    let t = try Trainer<Float>(config: config, data: data, communicator: LocalCommunicator())
    let good = try SafeTensors.encode(try t.checkpoint(), pytorchLayout: true)
    let headerLength = Int(good[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
    let header = Array(good[8..<8 + headerLength]), body = Array(good[(8 + headerLength)...])
    var mutator = Mutator(seed: 1818, alphabet: Array("{}[]\":,0123456789-.eE FI".utf8))
    let r = Fuzzing.run(rounds: 4000, input: { i in
      if i % 2 == 0 { return mutator.mutate(good) }
      let h = mutator.mutate(header)
      return (0..<8).map { UInt8((UInt64(h.count) >> (8 * UInt64($0))) & 0xFF) } + h + body
    }, read: { input in
      let file = try SafeTensorsFile(decoding: input, path: "fuzz")
      for name in file.names { _ = try? file.values(name, path: "fuzz") }
      _ = try SafeTensors.parameters(for: t.network, from: file, path: "fuzz")
    }, isClean: { $0 is WeightsProblem })
    for (i, error) in r.unexpected { Issue.record("input \(i) raised \(type(of: error)): \(error)") }
    #expect(r.rejected > 2000)
  }
}
