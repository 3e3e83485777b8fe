import ArgumentParser
import Datasets
import FileFormats
import Foundation
import Layers
import TensorCore
import Training
import _Support

/// `dpt generate`: a character model's continuation of a prompt, sampled one character at a time as nanoGPT's
/// `generate` does: the last `context` characters in, the last position's logits / temperature, the top k kept,
/// softmax, one draw.
struct GenerateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "generate",
    abstract: "Continue a prompt with a character model trained on --dataset text:FILE.",
    discussion: """
      Prints the prompt and its continuation. Each new character is drawn from the softmax of the model's last
      position's outputs divided by --temperature (0: always the most likely character), among the --top-k most
      likely when given; the model reads the last --context characters (fewer at the start: the model is causal, so
      the positions after the prompt do not change what it predicts).

        dpt generate --checkpoint runs/gpt --prompt "This License" --tokens 200 --temperature 0.8 --top-k 10
      """.reflowed)

  @Option(help: ArgumentHelp("A --checkpoint-dir folder (or checkpoint file) of a model trained on text.", valueName: "dir"))
  var checkpoint: String

  @Option(help: ArgumentHelp("With a folder: best | last. Default: best.dptc when --early-stop kept one; else checkpoint.dptc.",
                              valueName: "checkpoint"))
  var which: Checkpoint.Choice?

  @Option(help: "The text to continue: characters of the model's vocabulary.")
  var prompt: String

  @Option(parsing: .unconditional, help: ArgumentHelp("How many characters to add.", valueName: "n"))
  var tokens: Int

  @Option(parsing: .unconditional, help: "Divides the logits before the softmax: below 1 more likely characters, above 1 more varied ones; 0 takes the most likely.")
  var temperature: Double = 1.0

  @Option(parsing: .unconditional, help: ArgumentHelp("Draw among the k most likely characters only.", valueName: "k"))
  var topK: Int?

  @Option(parsing: .unconditional, help: "Seed of the draws.")
  var seed: UInt64 = 0

  func validate() throws {
    guard tokens >= 0 && tokens <= 1_000_000 else { throw ValidationError("--tokens must be from 0 to 1000000 (got \(tokens))") }
    guard temperature >= 0 && temperature.isFinite else { throw ValidationError("--temperature must be a number >= 0 (got \(temperature))") }
    if let k = topK, k < 1 { throw ValidationError("--top-k must be at least 1 (got \(k))") }
    guard !prompt.isEmpty else { throw ValidationError("--prompt is empty: give the text to continue, e.g. --prompt \"The \"") }
  }

  func run() throws {
    let (path, _) = try Checkpoint.path(checkpoint, which: which)
    let c = try InputFiles.checkpoint(path, flag: "--checkpoint")
    let transform: InputTransform?
    do { transform = try InputTransform(json: c.config["input_transform"]) } catch {
      throw CommandError("\(path): its input transform does not decode (\(error)); it was not written by this dpt")
    }
    guard let transform, let vocabulary = transform.vocabulary, let T = transform.positions else {
      throw CommandError("\(path) is not a character model (it was trained on \(c.dataset)): generate continues text with a model trained on --dataset text:FILE")
    }
    let config = try WeightsOptions.description(of: c, path: path).training
    if Self.seesTheFuture(config.model.items(orNil: transform)) {
      throw CommandError("\(path): its attention is not causal (causal=false): each position sees the ones after it, so the model cannot continue a text one character at a time")
    }
    var model = try TrainedModel<Float>(config: config, transform: transform)
    model.batchSize = 1
    let bytes = try SafeTensors.encode(c, pytorchLayout: true)
    (model.parameters, model.buffers) = try SafeTensors.state(for: model.network, from: try SafeTensorsFile(decoding: bytes, path: path), path: path)

    var index: [Unicode.Scalar: Int] = [:]
    for (i, s) in vocabulary.enumerated() { if let u = s.unicodeScalars.first { index[u] = i } }
    var ids: [Int] = try prompt.unicodeScalars.map { u in
      guard let i = index[u] else {
        throw CommandError("--prompt: the character \(Self.shown(u)) is not in the model's vocabulary of \(vocabulary.count) characters (\(Self.sample(vocabulary)))")
      }
      return i
    }
    var rng = RandomSource(seed: seed, stream: 0x6E6E)
    let V = vocabulary.count
    func emit(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }
    emit(prompt)
    for _ in 0..<tokens {
      let window = Array(ids.suffix(T))
      let n = window.count
      // The positions after the window are filled with id 0: causal attention keeps them from reaching position n-1.
      let input = (window + [Int](repeating: 0, count: T - n)).map(Double.init)
      let y = model.outputs(raw: input)[0]
      let logits = Array(y[(n - 1) * V..<n * V])
      let next = Self.draw(logits, temperature: temperature, topK: topK, using: &rng)
      ids.append(next)
      emit(vocabulary[next])
    }
    emit("\n")
  }

  /// One id from logits: argmax at temperature 0; else softmax(logits / temperature) over the top k.
  static func draw(_ logits: [Double], temperature: Double, topK: Int?, using rng: inout RandomSource) -> Int {
    if temperature == 0 { return logits.indices.max { logits[$0] < logits[$1] }! }
    var z = logits.map { $0 / temperature }
    if let k = topK, k < z.count {
      let threshold = z.sorted(by: >)[k - 1]
      for i in z.indices where z[i] < threshold { z[i] = -.infinity }
    }
    let m = z.max()!
    let e = z.map { exp($0 - m) }
    let u = rng.uniform() * e.reduce(0, +)
    var acc = 0.0
    for (i, w) in e.enumerated() {
      acc += w
      if u < acc { return i }
    }
    return e.lastIndex { $0 > 0 }!
  }

  /// Whether an attention of `items`, or of a residual block's, is not causal.
  static func seesTheFuture(_ items: [LayerItem]) -> Bool {
    items.contains { item in
      if let a = item.as(AttentionItem.self) { return !a.causal }
      if let r = item.as(ResidualItem.self) { return seesTheFuture(r.body) || seesTheFuture(r.shortcut ?? []) }
      return false
    }
  }

  static func shown(_ u: Unicode.Scalar) -> String {
    let hex = String(format: "U+%04X", u.value)
    return u.properties.isWhitespace || u.value < 0x20 || u.value == 0x7F ? hex : "'\(Character(u))' (\(hex))"
  }

  static func sample(_ vocabulary: [String]) -> String {
    let printable = vocabulary.filter { $0.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value != 0x7F } }
    return printable.prefix(20).joined() + (printable.count > 20 ? "..." : "")
  }
}

extension ModelSpec {
  /// The items for the data `transform` describes, or none when they cannot be made.
  func items(orNil transform: InputTransform) -> [LayerItem] {
    (try? items(inputShape: transform.sampleShape, outputs: transform.outputCount)) ?? []
  }
}
