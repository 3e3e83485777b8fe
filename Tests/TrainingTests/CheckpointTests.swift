import Collectives
import Datasets
import FileFormats
import Foundation
import Layers
import Optimizers
import Testing
import Training
import _TestSupport

@Suite struct CheckpointTests {
  func config(_ optimizer: OptimizerKind = .sgd, deterministic: Bool = false) -> TrainingConfig {
    var c = TrainingConfig(model: ModelSpec(kind: .mlp, hidden: [8], activation: .prelu), loss: .crossEntropy,
                           optimizer: OptimizerSpec(kind: optimizer, learningRate: optimizer == .lbfgs ? 1 : optimizer == .adam ? 0.01 : 0.1,
                                                    momentum: optimizer == .sgd ? 0.9 : 0),
                           batchSize: optimizer == .lbfgs ? 40 : 12, epochs: 4, seed: 9)
    c.deterministic = deterministic
    c.deterministicChunk = 4
    return c
  }

  let data = syntheticImages(count: 40)

  /// The state after training to `epoch` (and `batches` more steps), as a checkpoint, on `size` ranks.
  func trainedCheckpoint(_ c: TrainingConfig, size: Int = 1, epochs: Int, batches: Int = 0) throws -> Checkpoint {
    try InProcessGroup.run(size: size) { comm -> Checkpoint in
      let t = try Trainer<Float>(config: c, data: data, communicator: comm)
      for _ in 0..<epochs { try t.trainEpoch() }
      if batches > 0 {
        t.afterStep = { [unowned t] in if t.batchInEpoch == batches { throw Stop() } }
        do { try t.trainEpoch() } catch is Stop {}
      }
      return try t.checkpoint()
    }[0]
  }

  struct Stop: Error {}

  /// Resumes `checkpoint` (through its bytes) on `size` ranks and trains to `epochs`.
  func resumed(_ c: TrainingConfig, from checkpoint: Checkpoint, size: Int = 1, epochs: Int) throws -> Checkpoint {
    let bytes = checkpoint.encoded()
    return try InProcessGroup.run(size: size) { comm -> Checkpoint in
      let t = try Trainer<Float>(config: c, data: data, communicator: comm)
      try t.restore(try Checkpoint(decoding: bytes, path: "test"), path: "test")
      while t.epoch < epochs { try t.trainEpoch() }
      return try t.checkpoint()
    }[0]
  }

  /// A resumed epoch's row counts the whole epoch, as an uninterrupted run's does: its samples, its loss-and-gradient
  /// evaluations, and the seconds of its steps before the checkpoint as well as after (issue 28, item 6).
  @Test(arguments: [OptimizerKind.sgd, .lbfgs])
  func aResumedEpochCountsTheWholeEpoch(optimizer: OptimizerKind) throws {
    var c = config(optimizer)
    c.batchSize = 8  // 5 batches an epoch, L-BFGS's line search adding trial points
    let whole = try Trainer<Float>(config: c, data: data, communicator: LocalCommunicator())
    _ = try whole.runEpoch()
    let second = try whole.runEpoch()
    let checkpoint = try trainedCheckpoint(c, epochs: 1, batches: 2)
    #expect(checkpoint.epochEvaluations >= 2 && checkpoint.epochSeconds > 0, "\(checkpoint.epochEvaluations) \(checkpoint.epochSeconds)")
    let t = try Trainer<Float>(config: c, data: data, communicator: LocalCommunicator())
    try t.restore(try Checkpoint(decoding: checkpoint.encoded(), path: "test"), path: "test")
    let resumed = try t.runEpoch()
    #expect(resumed.epoch == 2 && resumed.samples == second.samples && resumed.evaluations == second.evaluations,
            "resumed: \(resumed.samples) samples, \(resumed.evaluations) evaluations; whole: \(second.samples), \(second.evaluations)")
    #expect(resumed.seconds >= checkpoint.epochSeconds)
    // The epoch after it is counted afresh.
    let third = try t.runEpoch(), wholeThird = try whole.runEpoch()
    #expect(third.evaluations == wholeThird.evaluations && third.samples == wholeThird.samples)
  }

  /// Every text that reaches `dpt export --pytorch`'s file goes through one escaping function: a Python literal of
  /// printable ASCII that decodes to the text itself, so a path with quotes, backslashes, newlines, carriage
  /// returns, NUL or any other character can neither end the literal nor the comment that holds it (issue 28, item 12).
  @Test func pythonStringsAreInert() throws {
    let hostile = ["ck\nimport os; os.system(\"id > PWNED\")\n#", "a\"b'c\\d", "line\rreturn", "nul\u{0}byte", "tab\there",
                   "s\u{2028}ep\u{85}", "caf\u{e9} \u{1F600}", "\u{FFFD}from bad bytes", "\\", "\"\"\"", ""]
    for text in hostile {
      let literal = PyTorchCode.pythonString(text)
      #expect(literal.unicodeScalars.allSatisfy { (0x20...0x7E).contains($0.value) }, "\(literal)")
      // Decoded as Python reads a double-quoted literal: the text, whole.
      var decoded = "", i = literal.index(after: literal.startIndex), closed = false
      let end = literal.index(before: literal.endIndex)
      while i < end {
        var c = literal[i]
        if c == "\"" { closed = true; break }
        if c == "\\" {
          i = literal.index(after: i)
          c = literal[i]
          let width = ["x": 2, "u": 4, "U": 8][c]
          if let width {
            let hex = literal[literal.index(after: i)...].prefix(width)
            decoded.unicodeScalars.append(Unicode.Scalar(UInt32(hex, radix: 16)!)!)
            i = literal.index(i, offsetBy: width)
          } else {
            decoded.append(c)
          }
        } else {
          decoded.append(c)
        }
        i = literal.index(after: i)
      }
      #expect(!closed && literal.last == "\"" && decoded == text, "\(literal) reads back as \(decoded.debugDescription)")
    }
    let module = try #require(PyTorchModule.sequential([Dense<Float>(inputs: 2, outputs: 1)] as [any Layer<Float>]))
    let code = PyTorchCode.sequential(module, weights: hostile[1] + ".safetensors", source: hostile[0])
    #expect(!code.split(separator: "\n").contains { $0.hasPrefix("import os") } && code.hasPrefix(PyTorchCode.firstLine), "\(code)")
  }

  @Test func roundTrip() throws {
    let c = try trainedCheckpoint(config(), epochs: 1)
    let d = try Checkpoint(decoding: c.encoded(), path: "x")
    #expect(d.encoded() == c.encoded())
    #expect(d.epoch == 1 && d.step == 4 && d.network.contains("prelu") && d.tensors.count == 5)
  }

  /// Killed after epoch 2 (or in the middle of epoch 3), resumed: the parameters and optimizer state at epoch 4 are
  /// bitwise those of the uninterrupted run.
  @Test(arguments: [OptimizerKind.sgd, .adam, .lbfgs])
  func resumeIsBitwiseTheUninterruptedRun(optimizer: OptimizerKind) throws {
    let c = config(optimizer)
    let uninterrupted = try trainedCheckpoint(c, size: 2, epochs: 4)
    let fromEpoch = try resumed(c, from: try trainedCheckpoint(c, size: 2, epochs: 2), size: 2, epochs: 4)
    #expect(fromEpoch.sections.map(\.bytes) == uninterrupted.sections.map(\.bytes), "\(optimizer) from an epoch's end")
    if optimizer != .lbfgs {  // L-BFGS here is full-batch: one step per epoch
      let midEpoch = try trainedCheckpoint(c, size: 2, epochs: 2, batches: 2)
      #expect(midEpoch.batch == 2)
      let fromMiddle = try resumed(c, from: midEpoch, size: 2, epochs: 4)
      #expect(fromMiddle.sections.map(\.bytes) == uninterrupted.sections.map(\.bytes), "\(optimizer) from mid-epoch")
    }
  }

  /// Resuming on another number of ranks works; with --deterministic the result is bitwise the same.
  @Test func resumeOnAnotherWorldSize() throws {
    let c = config(deterministic: true)
    let uninterrupted = try trainedCheckpoint(c, size: 2, epochs: 4)
    let onThree = try resumed(c, from: try trainedCheckpoint(c, size: 2, epochs: 2), size: 3, epochs: 4)
    #expect(onThree.sections.map(\.bytes) == uninterrupted.sections.map(\.bytes))
    #expect(onThree.worldSize == 3)
    // Without it: the same up to float summation order. Two ranks share memory and each keeps its shard of the
    // optimizer's state; the checkpoint gathers it whole, so one rank or three can go on from it.
    for kind in [OptimizerKind.sgd, .adam] {
      let d = config(kind)
      let a = try trainedCheckpoint(d, size: 2, epochs: 4)
      for size in [1, 3] {
        let b = try resumed(d, from: try trainedCheckpoint(d, size: 2, epochs: 2), size: size, epochs: 4)
        for (name, bytes) in a.sections {
          let x = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
          let y = b.section(name)!.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
          let scale = max(x.map { abs($0) }.max()!, 1e-30)
          #expect(zip(x, y).map { abs($0 - $1) }.max()! / scale < 1e-4, "\(kind): \(name), resumed on \(size) ranks")
        }
      }
    }
  }

  /// A checkpoint of a sharded step holds the whole optimizer state: the same bytes as the message-passing exchange.
  @Test func shardedStateIsGatheredWhole() throws {
    var c = config(.adam)
    let shared = try trainedCheckpoint(c, size: 3, epochs: 1, batches: 1)
    c.exchange = ExchangeSpec(sharedMemory: false)
    let messages = try trainedCheckpoint(c, size: 3, epochs: 1, batches: 1)
    #expect(shared.sections.map(\.name) == messages.sections.map(\.name))
    #expect(shared.sections.map(\.bytes) == messages.sections.map(\.bytes))
  }

  func message(_ bytes: [UInt8]) -> String {
    do { _ = try Checkpoint(decoding: bytes, path: "ck"); return "no error" } catch { return "\(error)" }
  }

  @Test func corruptAndTruncatedFilesAreNamed() throws {
    let good = try trainedCheckpoint(config(), epochs: 1).encoded()
    #expect(message(Array(good.prefix(10))).contains("truncated (10 bytes"))
    #expect(message([0x50] + Array(good.dropFirst())).contains("wrong magic number"))
    var version = good
    version[8] = 7
    #expect(message(version).contains("format version 7"))
    var header = good
    header[30] ^= 0x01
    #expect(message(header).contains("the header is corrupt"))
    var payload = good
    payload[payload.count - 5] ^= 0x10
    #expect(message(payload).contains("corrupt (the checksum of the parameters"))
    #expect(message(Array(good.dropLast(100))).contains("truncated"))
    #expect(message(good + [1, 2, 3]).contains("unexpected bytes after the payload"))
    // Every truncation is an error, never a crash.
    for n in stride(from: 0, to: good.count, by: 97) { #expect(message(Array(good.prefix(n))) != "no error") }
  }

  @Test func mismatchedCheckpointsNameWhatDiffers() throws {
    let c = try trainedCheckpoint(config(), epochs: 1)
    func restore(_ cfg: TrainingConfig, _ d: DataSplit) -> String {
      do {
        let t = try Trainer<Float>(config: cfg, data: d, communicator: LocalCommunicator())
        try t.restore(c, path: "ck")
        return "no error"
      } catch { return "\(error)" }
    }
    var otherModel = config()
    otherModel.model.hidden = [9]
    #expect(restore(otherModel, data).contains("the model differs: the checkpoint holds 'flatten | dense 36 -> 8"))
    #expect(restore(config(), syntheticImages(count: 41)).contains("the data differ"))
    #expect(restore(config(.adam), data).contains("the optimizer differs"))
    #expect(restore(config(), data) == "no error")
  }

  /// A NaN in the data: --on-nan stop names the epoch and step; skip-batch leaves that batch out and goes on.
  @Test func nonFiniteLossPolicies() throws {
    var x = syntheticImages(count: 40).train
    if case .reals(var v) = x.features {
      v[5 * 36] = .nan  // sample 5
      x.features = .reals(v)
    }
    let poisoned = DataSplit(name: "poisoned", train: x, test: x.subset(0..<4))
    var c = config()
    c.optimizer.momentum = 0
    do {
      let t = try Trainer<Float>(config: c, data: poisoned, communicator: LocalCommunicator())
      try t.trainEpoch()
      Issue.record("no error")
    } catch let e as NonFiniteLoss {
      #expect(e.epoch == 1 && e.step >= 1 && "\(e)".contains("at epoch 1, step \(e.step)"))
    }
    c.onNonFinite = .skipBatch
    let t = try Trainer<Float>(config: c, data: poisoned, communicator: LocalCommunicator())
    for _ in 0..<2 { try t.trainEpoch() }
    #expect(t.skippedBatches == 2)  // the one batch holding sample 5, in each epoch
    #expect(t.parameters.allSatisfy { $0.isFinite })
  }
}
