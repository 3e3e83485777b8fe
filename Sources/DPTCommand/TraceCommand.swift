import ArgumentParser
import Foundation
import _Support

struct TraceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "trace",
    abstract: "Print a --trace file as tables in the hand-outs' notation: per step and layer s, z, delta, W, dW, b, db.",
    discussion: """
      Each layer's input s, its output z (a dense or convolution layer's is the pre-activation: the activation is a
      layer of its own), delta = dL/dz, and for a layer with parameters W and b (before the update, W as PyTorch's
      out x in) with dL/dW and dL/db; then the step's loss and learning rate.

        dpt train --dataset csv:hand.csv --model "dense(3), relu, dense(1), tanh" \\
          --loss half-mse --init w.safetensors --trace t.jsonl --trace-steps 3
        dpt trace t.jsonl
      """.reflowed)

  @Argument(help: "The file --trace wrote.")
  var file: String

  func run() throws {
    let bytes: [UInt8]
    do { bytes = try Files.read(file, limit: 1 << 30, missing: "check the path; dpt train --trace FILE writes it") } catch {
      throw CommandError("\(error)")
    }
    for (n, line) in String(decoding: bytes, as: UTF8.self).split(separator: "\n").enumerated() {
      let o: JSON
      do { o = try JSON.parse(String(line)) } catch { throw CommandError("\(file):\(n + 1): not a JSON object (\(error))") }
      guard let step = o["step"]?.int else { throw CommandError("\(file):\(n + 1): no \"step\": not a dpt trace") }
      if let loss = o["loss"]?.double {
        print("step \(step): loss \(Self.number(loss)), learning rate \(Self.number(o["learning_rate"]?.double ?? .nan))\n")
        continue
      }
      print("step \(step), layer \(o["layer"]?.int ?? -1): \(o["name"]?.string ?? "?")")
      for (key, label) in [("input", "s (input)"), ("output", "z (output)"), ("grad_output", "delta = dL/dz"),
                           ("weight", "W"), ("grad_weight", "dL/dW"), ("bias", "b"), ("grad_bias", "dL/db")] {
        guard let v = o[key] else { continue }
        let rows = Self.rows(v)
        let pad = String(repeating: " ", count: 18)
        for (i, row) in rows.enumerated() {
          let name = i == 0 ? ("  " + label).padding(toLength: 18, withPad: " ", startingAt: 0) : pad
          print(name + row)
        }
      }
      print("")
    }
  }

  static func number(_ x: Double) -> String { String(format: "%.6g", x) }

  /// A value as printed rows: a matrix (or a batch of vectors) one row per line; a longer tensor flattened by its
  /// first dimension; a summarised one (--trace-limit) as its shape, norm and first values.
  static func rows(_ v: JSON) -> [String] {
    if let shape = v["shape"]?.array, let first = v["first"]?.array {
      return ["shape \(shape.compactMap(\.int).map(String.init).joined(separator: "x")), norm \(number(v["norm"]?.double ?? .nan)), first "
              + first.compactMap(\.double).map(number).joined(separator: " ")]
    }
    func flat(_ v: JSON) -> [Double] { v.array.map { $0.flatMap(flat) } ?? [v.double ?? .nan] }
    guard let outer = v.array else { return [number(v.double ?? .nan)] }
    if outer.allSatisfy({ $0.double != nil }) { return [row(outer.compactMap(\.double))] }
    return outer.map { row(flat($0)) }
  }

  static func row(_ values: [Double]) -> String {
    values.map { number($0).padding(toLength: max(12, number($0).count + 1), withPad: " ", startingAt: 0) }.joined()
  }
}
