/// How the values of a bucket travel between ranks when they do not travel as themselves (`--compress`): a codec
/// turns a block of float32 values into bytes and adds decoded bytes into float32 values. `BucketReduction` sums with
/// any codec, so every reducer built on bucket reductions (the overlapped buckets, the shards that cross hosts from
/// shared memory) takes every codec.
///
/// A new codec is a conforming type in a file of its own and its line in `GradientCodecs.all`; `--compress`, `dpt
/// scaling --exchanges` and the traffic model then know it.
public protocol GradientCodec: Sendable, CustomStringConvertible {
  /// The codec `--compress TEXT` names, or nil when TEXT is not one of its spellings.
  static func parse(_ text: String) -> Self?
  /// Its spelling in help texts, e.g. "bf16" or "topk:F".
  static var syntax: String { get }
  /// Bytes of a block of `count` values on the wire, a multiple of 8 (blocks follow one another, each aligned): the
  /// same on every rank, so that blocks can be exchanged without sending their sizes.
  func blockBytes(count: Int) -> Int
  /// Whether a rank keeps what its encoding lost (x minus the decoded block) and adds it to the same values of the
  /// next step before encoding them (error feedback, as PowerSGD's). A codec whose loss is a rounding does not need
  /// it; one that drops values does.
  var feedsBackError: Bool { get }
  /// Writes `x[0..<count]` into `block` (`blockBytes(count:)` bytes, all of them written).
  func encode(_ x: UnsafePointer<Float>, count: Int, into block: UnsafeMutableRawPointer)
  /// y_i += value_i of `block`.
  func accumulate(_ block: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>)
  /// y_i = value_i of `block`.
  func decode(_ block: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>)
}

extension GradientCodec {
  public var feedsBackError: Bool { false }
}

/// Every codec `--compress` knows.
public enum GradientCodecs {
  public static let all: [any GradientCodec.Type] = [BFloat16Codec.self, Float16Codec.self, TopKCodec.self]

  /// The codec `text` names, if any.
  public static func parse(_ text: String) -> (any GradientCodec)? {
    for codec in all { if let c = codec.parse(text) { return c } }
    return nil
  }

  /// "bf16 | fp16 | topk:F"
  public static var syntax: String { all.map { $0.syntax }.joined(separator: " | ") }
}

/// An element type whose reductions can travel encoded: a codec works on float32 values, and these loops convert a
/// block to and from them, specialised per type in this module (as `Scalar` explains for the tensor core's
/// kernels), so that generic callers pay one dynamic dispatch per buffer and none per element.
public protocol WireScalar: Reducible, BinaryFloatingPoint {
  /// y_i = Float(x_i)
  static func floats(_ x: UnsafePointer<Self>, count: Int, into y: UnsafeMutablePointer<Float>)
  /// y_i = Self(x_i)
  static func assign(floats x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<Self>)
  /// y_i += Self(x_i)
  static func add(floats x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<Self>)
  /// y_i += x_i
  static func add(_ x: UnsafePointer<Self>, into y: UnsafeMutablePointer<Self>, count: Int)
  /// The value as a Double, and back (specialised here: a conversion in generic code costs a dispatch).
  static func double(_ x: Self) -> Double
  static func element(_ x: Double) -> Self
}

extension Float: WireScalar {}
extension Double: WireScalar {}

extension WireScalar {
  public static func floats(_ x: UnsafePointer<Self>, count n: Int, into y: UnsafeMutablePointer<Float>) {
    for i in 0..<n { y[i] = Float(x[i]) }
  }

  public static func assign(floats x: UnsafePointer<Float>, count n: Int, into y: UnsafeMutablePointer<Self>) {
    for i in 0..<n { y[i] = Self(x[i]) }
  }

  public static func add(floats x: UnsafePointer<Float>, count n: Int, into y: UnsafeMutablePointer<Self>) {
    for i in 0..<n { y[i] += Self(x[i]) }
  }

  public static func add(_ x: UnsafePointer<Self>, into y: UnsafeMutablePointer<Self>, count n: Int) {
    for i in 0..<n { y[i] += x[i] }
  }

  public static func double(_ x: Self) -> Double { Double(x) }
  public static func element(_ x: Double) -> Self { Self(x) }
}
