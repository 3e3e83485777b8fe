import Foundation

/// A JSON value with object keys kept in the order they were written (metrics files read left to right).
public enum JSON: Equatable, Sendable {
  case null
  case bool(Bool)
  case number(Double)
  case string(String)
  case array([JSON])
  case object([(String, JSON)])

  public static func == (a: JSON, b: JSON) -> Bool { a.serialized() == b.serialized() }

  /// Compact text on one line (non-finite numbers become null, integers print without a fraction).
  public func serialized(pretty: Bool = false, indent: String = "") -> String {
    switch self {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .number(let x):
      guard x.isFinite else { return "null" }
      if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
      return "\(x)"
    case .string(let s): return JSON.quote(s)
    case .array(let a):
      if !pretty || a.allSatisfy({ !$0.isContainer }) {
        return "[" + a.map { $0.serialized() }.joined(separator: pretty ? ", " : ",") + "]"
      }
      let inner = indent + "  "
      return "[\n" + a.map { inner + $0.serialized(pretty: true, indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
    case .object(let o):
      if !pretty { return "{" + o.map { JSON.quote($0.0) + ":" + $0.1.serialized() }.joined(separator: ",") + "}" }
      if o.isEmpty { return "{}" }
      let inner = indent + "  "
      return "{\n" + o.map { inner + JSON.quote($0.0) + ": " + $0.1.serialized(pretty: true, indent: inner) }
        .joined(separator: ",\n") + "\n\(indent)}"
    }
  }

  var isContainer: Bool {
    switch self {
    case .array, .object: true
    default: false
    }
  }

  static func quote(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
      switch u {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
      default: out.unicodeScalars.append(u)
      }
    }
    return out + "\""
  }

  /// Containers nested deeper than this are an error, not a stack overflow: dpt's own files nest at most 4 deep.
  public static let maximumDepth = 64

  /// Parses JSON text (for reading metrics and configs back); object keys keep their order. Every file dpt reads may
  /// have been crafted: nesting is limited to `maximumDepth`, and `maximumBytes` bounds the text.
  public static func parse(_ text: String, maximumBytes: Int = 1 << 30) throws -> JSON {
    try parse(bytes: Array(text.utf8), maximumBytes: maximumBytes)
  }

  public static func parse<B: Collection<UInt8>>(bytes: B, maximumBytes: Int = 1 << 30) throws -> JSON {
    guard bytes.count <= maximumBytes else {
      throw ParseError(description: "invalid JSON: \(bytes.count) bytes, more than the \(maximumBytes) allowed")
    }
    var p = Parser(bytes: Array(bytes))
    let v = try p.value()
    p.skipSpace()
    guard p.i == p.bytes.count else { throw p.error("unexpected text after the value") }
    return v
  }

  public struct ParseError: Error, CustomStringConvertible { public var description: String }

  struct Parser {
    let bytes: [UInt8]
    var i = 0
    var depth = 0
    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func enter() throws {
      depth += 1
      guard depth <= JSON.maximumDepth else { throw error("nested more than \(JSON.maximumDepth) levels deep") }
    }

    func error(_ what: String) -> ParseError { ParseError(description: "invalid JSON at byte \(i): \(what)") }

    mutating func skipSpace() {
      while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 }
    }

    mutating func expect(_ literal: String) throws {
      let l = Array(literal.utf8)
      guard i + l.count <= bytes.count, Array(bytes[i..<i + l.count]) == l else { throw error("expected \(literal)") }
      i += l.count
    }

    mutating func value() throws -> JSON {
      skipSpace()
      guard i < bytes.count else { throw error("unexpected end") }
      switch bytes[i] {
      case UInt8(ascii: "n"): try expect("null"); return .null
      case UInt8(ascii: "t"): try expect("true"); return .bool(true)
      case UInt8(ascii: "f"): try expect("false"); return .bool(false)
      case UInt8(ascii: "\""): return .string(try string())
      case UInt8(ascii: "["):
        i += 1
        try enter()
        defer { depth -= 1 }
        var a: [JSON] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
        while true {
          a.append(try value())
          skipSpace()
          guard i < bytes.count else { throw error("unterminated array") }
          if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
          if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
          throw error("expected , or ]")
        }
      case UInt8(ascii: "{"):
        i += 1
        try enter()
        defer { depth -= 1 }
        var o: [(String, JSON)] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
        while true {
          skipSpace()
          guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw error("expected a key") }
          let k = try string()
          skipSpace()
          guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected :") }
          i += 1
          o.append((k, try value()))
          skipSpace()
          guard i < bytes.count else { throw error("unterminated object") }
          if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
          if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
          throw error("expected , or }")
        }
      default:
        let start = i
        while i < bytes.count, "+-0123456789.eE".utf8.contains(bytes[i]) { i += 1 }
        guard i > start, i - start <= 400, let x = Double(String(decoding: bytes[start..<i], as: UTF8.self)) else {
          throw error("bad number")
        }
        return .number(x)
      }
    }

    mutating func string() throws -> String {
      i += 1  // opening quote
      var out = [UInt8]()
      while i < bytes.count {
        let c = bytes[i]
        i += 1
        if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
        if c != UInt8(ascii: "\\") { out.append(c); continue }
        guard i < bytes.count else { break }
        let e = bytes[i]
        i += 1
        switch e {
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "u"):
          guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16)
          else { throw error("bad \\u escape") }
          i += 4
          out.append(contentsOf: Array(String(Unicode.Scalar(v).map(Character.init) ?? "?").utf8))
        default: out.append(e)
        }
      }
      throw error("unterminated string")
    }
  }

  public subscript(key: String) -> JSON? {
    if case .object(let o) = self { return o.first { $0.0 == key }?.1 }
    return nil
  }

  /// An object with `fields` after its own (a value that is not an object stays as it is).
  public func appending(_ fields: [(String, JSON)]) -> JSON {
    guard case .object(let o) = self else { return self }
    return .object(o + fields)
  }

  public var double: Double? { if case .number(let x) = self { return x } else { return nil } }
  /// A whole number that an Int holds exactly (at most 2^53 in magnitude); nil for anything else, so that a count,
  /// size or offset read from a file can never trap in a conversion.
  public var int: Int? {
    guard case .number(let x) = self, x == x.rounded(), abs(x) <= 9_007_199_254_740_992 else { return nil }
    return Int(x)
  }
  public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
  /// The keys of an object, in their order (duplicates included).
  public var keys: [String]? { if case .object(let o) = self { return o.map(\.0) } else { return nil } }
  public var string: String? { if case .string(let s) = self { return s } else { return nil } }
  public var array: [JSON]? { if case .array(let a) = self { return a } else { return nil } }
}

extension JSON {
  public init(_ x: Double?) { self = x.map { .number($0) } ?? .null }
  public init(_ x: Int) { self = .number(Double(x)) }
  public init(_ s: String) { self = .string(s) }
  public init(_ a: [Double]) { self = .array(a.map { .number($0) }) }
}
