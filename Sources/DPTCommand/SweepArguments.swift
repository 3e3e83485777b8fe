import ArgumentParser
import Experiments
import Foundation
import Training

/// A command line as options and their values (`--lr 0.1`, `--lr=0.1`, `--nesterov`), so that a sweep can build each
/// setting's `dpt train` arguments: the sweep's own, with each axis's option set to the setting's value and the
/// options that do not apply to it left out. Everything else of a setting is parsed by ArgumentParser, as a train run.
struct SweepArguments: Equatable {
  /// One option with the tokens that give it (its name, then its values).
  struct Group: Equatable {
    var name: String
    var tokens: [String]
  }

  var groups: [Group] = []

  /// The sweep's own options: not a setting's.
  static let sweepOnly: Set<String> = ["ranks-per-trial", "search", "population", "exploit-every", "log-dir", "tensorboard", "overwrite", "loss-scale", "metric", "retries", "json", "axis",
                                       "samples", "prune", "resume"]
  /// Options that are flags (no value): an axis gives them as true or false.
  static let flags: Set<String> = ["nesterov", "drop-last", "deterministic"]
  /// Flags with a --no- form.
  static let inverted: Set<String> = ["standardize", "shared-memory"]
  /// Options no axis may vary: --seed repeats settings (a list), and the rest belong to the sweep itself.
  static let notAxes: Set<String> = sweepOnly.union(["seed", "stall-timeout", "help"])

  init(_ arguments: [String]) {
    for a in arguments {
      if a.hasPrefix("--") && a.count > 2 {
        groups.append(Group(name: String(a.dropFirst(2).prefix { $0 != "=" }), tokens: [a]))
      } else if groups.isEmpty {
        groups.append(Group(name: "", tokens: [a]))
      } else {
        groups[groups.count - 1].tokens.append(a)
      }
    }
  }

  var arguments: [String] { groups.flatMap(\.tokens) }

  /// The base name of an option (`no-standardize` is `standardize`).
  static func base(_ name: String) -> String {
    name.hasPrefix("no-") && inverted.contains(String(name.dropFirst(3))) ? String(name.dropFirst(3)) : name
  }

  func has(_ name: String) -> Bool { groups.contains { SweepArguments.base($0.name) == name } }

  /// The last value given for `name`.
  func value(_ name: String) -> String? {
    guard let g = groups.last(where: { $0.name == name }) else { return nil }
    if let eq = g.tokens[0].firstIndex(of: "=") { return String(g.tokens[0][g.tokens[0].index(after: eq)...]) }
    return g.tokens.count > 1 ? g.tokens[1] : nil
  }

  /// Every value given for a repeatable option (`--axis`).
  func values(_ name: String) -> [String] {
    groups.filter { $0.name == name }.compactMap { g in
      if let eq = g.tokens[0].firstIndex(of: "=") { return String(g.tokens[0][g.tokens[0].index(after: eq)...]) }
      return g.tokens.count > 1 ? g.tokens[1] : nil
    }
  }

  mutating func remove(_ name: String) { groups.removeAll { SweepArguments.base($0.name) == name } }

  /// Sets `name` to `value` (a flag: true or false).
  mutating func set(_ name: String, _ value: String) throws {
    remove(name)
    if SweepArguments.flags.contains(name) || SweepArguments.inverted.contains(name) {
      switch value.lowercased() {
      case "true", "yes", "on", "1": groups.append(Group(name: name, tokens: ["--\(name)"]))
      case "false", "no", "off", "0":
        if SweepArguments.inverted.contains(name) { groups.append(Group(name: "no-\(name)", tokens: ["--no-\(name)"])) }
      default: throw ValidationError("--axis \(name): a flag takes true or false (got '\(value)')")
      }
      return
    }
    groups.append(Group(name: name, tokens: ["--\(name)", value]))
  }

  /// The options given that do not apply to the optimizer, model or loss these arguments choose (momentum with
  /// L-BFGS, --hidden with a list of layers): a sweep leaves them out of that setting.
  var notApplicable: [String] {
    let optimizer = value("optimizer") ?? "sgd"
    let model = value("model")
    let isList = has("model-file") || model.map { m in !["linear", "softmax", "mlp", "cnn"].contains(m) && !m.hasPrefix("cnn:") || m.hasPrefix("gpt:") } ?? false
    let kind = OptimizerKind(rawValue: optimizer) ?? .sgd
    let rules: [(String, Bool)] = OptimizerOption.allCases.map { ($0.rawValue, $0.applies(to: kind)) } + [
      ("hidden", !isList && !["linear", "softmax"].contains(model ?? "")),
      ("activation", !isList),
      ("kernel-size", !isList),
      ("output", !isList),
      ("output-layer", !isList),
      ("hinge-reduction", value("loss") == "hinge"),
    ]
    return rules.filter { !$0.1 && has($0.0) }.map(\.0)
  }

  /// These arguments with the options that do not apply left out, and which those were.
  func applicable() -> (SweepArguments, leftOut: [String]) {
    var a = self
    let out = notApplicable
    for name in out { a.remove(name) }
    return (a, out)
  }

  /// The arguments of the equivalent `dpt train` run: without the sweep's own options.
  var trainArguments: [String] {
    groups.filter { !SweepArguments.sweepOnly.contains($0.name) }.flatMap(\.tokens)
  }
}

/// `--axis 'NAME=V1;V2'`, `--axis 'NAME=uniform(a,b)'`, `--axis 'NAME=loguniform(a,b)'`.
func parseAxis(_ text: String) throws -> SweepAxis {
  guard let eq = text.firstIndex(of: "=") else {
    throw ValidationError("--axis '\(text)': write NAME=V1;V2;... (e.g. 'optimizer=sgd;adagrad;lbfgs'), or NAME=loguniform(A,B) or uniform(A,B) with --samples")
  }
  var name = String(text[..<eq]).trimmingCharacters(in: .whitespaces)
  while name.hasPrefix("-") { name.removeFirst() }
  let body = String(text[text.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
  guard !name.isEmpty else { throw ValidationError("--axis '\(text)': the option's name is missing before '='") }
  if name == "seed" { throw ValidationError("--axis '\(text)': repeat settings with --seed 0,1,2 instead (each setting then runs once per seed, and the summary gives the mean and spread)") }
  if SweepArguments.notAxes.contains(name) { throw ValidationError("--axis '\(text)': --\(name) belongs to the sweep itself, not to a setting") }
  for (prefix, log) in [("loguniform(", true), ("uniform(", false)] where body.lowercased().hasPrefix(prefix) && body.hasSuffix(")") {
    let inner = body.dropFirst(prefix.count).dropLast().split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
    guard inner.count == 2, let a = inner[0], let b = inner[1], a.isFinite, b.isFinite, a < b, !log || a > 0 else {
      throw ValidationError("--axis '\(text)': \(log ? "loguniform(A,B) needs 0 < A < B" : "uniform(A,B) needs A < B"), e.g. \(log ? "loguniform(1e-6,1e-1)" : "uniform(0,0.5)")")
    }
    return SweepAxis(option: name, values: log ? .logUniform(a, b) : .uniform(a, b))
  }
  let values = body.split(separator: ";", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
  guard values.allSatisfy({ !$0.isEmpty }) else {
    throw ValidationError("--axis '\(text)': an empty value; separate values with ';' (a list of layers keeps its commas)")
  }
  guard Set(values).count == values.count else { throw ValidationError("--axis '\(text)': a value is listed twice") }
  return SweepAxis(option: name, values: .list(values))
}
