import Foundation
import Testing
import _TestSupport

/// docs/ARCHITECTURE.md's module graph is Package.swift's, generated (`scripts/module-graph` rewrites it), so that the
/// map a newcomer reads cannot drift from the package.
@Suite struct ModuleGraphTests {
  static let begin = "<!-- module graph: generated from Package.swift by scripts/module-graph -->"
  static let end = "<!-- end of module graph -->"

  /// Each module of Package.swift (libraries, then programs; tests and the fuzzing harness left out) and the modules
  /// of this package it imports, in the order Package.swift lists them.
  static func graph(_ manifest: String) -> [(module: String, dependencies: [String])] {
    var out: [(String, [String])] = []
    let declaration = try! NSRegularExpression(pattern: #"\.(target|executableTarget)\(\s*name:\s*"([^"]+)""#)
    let text = manifest as NSString
    for m in declaration.matches(in: manifest, range: NSRange(location: 0, length: text.length)) {
      let name = text.substring(with: m.range(at: 2))
      // The target's own text: up to the next declaration.
      let rest = text.substring(from: m.range.location + m.range.length)
      let own = rest.components(separatedBy: ".target(").first!.components(separatedBy: ".executableTarget(").first!
        .components(separatedBy: ".testTarget(").first!
      if own.contains("path: \"Tests/") || own.contains("path: \"Fuzz\"") { continue }
      var dependencies: [String] = []
      if let range = own.range(of: "dependencies:"), let open = own[range.upperBound...].firstIndex(of: "[") {
        var depth = 0, end = open
        for i in own[open...].indices {
          if own[i] == "[" { depth += 1 } else if own[i] == "]" { depth -= 1; if depth == 0 { end = i; break } }
        }
        let list = String(own[own.index(after: open)..<end])
        // Quoted names are this package's modules; products of other packages are `.product(name: ...)` or variables.
        let withoutProducts = list.replacingOccurrences(of: #"\.product\([^)]*\)"#, with: "", options: .regularExpression)
        let quoted = try! NSRegularExpression(pattern: #""([^"]+)""#)
        let l = withoutProducts as NSString
        dependencies = quoted.matches(in: withoutProducts, range: NSRange(location: 0, length: l.length)).map { l.substring(with: $0.range(at: 1)) }
      }
      out.append((name, dependencies))
    }
    return out
  }

  static func block(_ graph: [(module: String, dependencies: [String])]) -> String {
    let width = graph.map(\.module.count).max() ?? 0
    let lines = graph.map { $0.module.padding(toLength: width, withPad: " ", startingAt: 0) + "  -> "
      + ($0.dependencies.isEmpty ? "(nothing)" : $0.dependencies.joined(separator: ", ")) }
    return ([begin, "```text"] + lines + ["```", end]).joined(separator: "\n")
  }

  @Test func theArchitectureDocDrawsPackageSwift() throws {
    let manifest = try String(contentsOfFile: Package.root + "/Package.swift", encoding: .utf8)
    let docPath = Package.root + "/docs/ARCHITECTURE.md"
    let doc = try String(contentsOfFile: docPath, encoding: .utf8)
    let graph = Self.graph(manifest)
    #expect(graph.contains { $0.module == "Training" } && graph.contains { $0.module == "DPTCommand" }, "the parser found the targets")
    #expect(!graph.contains { $0.module == "_TestSupport" })
    let expected = Self.block(graph)
    guard let a = doc.range(of: Self.begin), let b = doc.range(of: Self.end, range: a.upperBound..<doc.endIndex) else {
      Issue.record("docs/ARCHITECTURE.md has no generated module graph (\(Self.begin)); run scripts/module-graph")
      return
    }
    let current = String(doc[a.lowerBound..<b.upperBound])
    if ProcessInfo.processInfo.environment["DPT_WRITE_MODULE_GRAPH"] != nil, current != expected {
      try doc.replacingCharacters(in: a.lowerBound..<b.upperBound, with: expected).write(toFile: docPath, atomically: true, encoding: .utf8)
      return
    }
    #expect(current == expected, "docs/ARCHITECTURE.md's module graph differs from Package.swift: run scripts/module-graph")
  }
}
