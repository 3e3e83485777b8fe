/// A dense, row-major array of scalars with a shape; the first dimension is the batch.
///
/// A value type (copy on write through its `[T]` storage). Kernels reach the elements through
/// `withUnsafeBufferPointer` and `withUnsafeMutableBufferPointer`, as with `Array`.
public struct Tensor<T: Scalar>: Equatable {
  public private(set) var shape: [Int]
  public var scalars: [T]
  /// What a layer's forward pass keeps with its output for its backward pass, beyond its input and output (attention's
  /// probabilities, a residual block's inner activations): the forward pass returns what the backward pass needs.
  public var saved: [Tensor] = []

  /// A tensor of zeros.
  public init(zeros shape: [Int]) {
    precondition(shape.allSatisfy { $0 >= 0 }, "tensor dimensions must be >= 0, got \(shape)")
    self.shape = shape
    self.scalars = .zeros(shape.reduce(1, *))
  }

  public init(shape: [Int], scalars: [T]) {
    precondition(shape.reduce(1, *) == scalars.count, "shape \(shape) does not hold \(scalars.count) scalars")
    self.shape = shape
    self.scalars = scalars
  }

  /// A tensor whose elements are written by `body` (which must initialise all `count` of them).
  public init(shape: [Int], unsafeUninitialized body: (UnsafeMutableBufferPointer<T>) -> Void) {
    let n = shape.reduce(1, *)
    self.shape = shape
    self.scalars = [T](unsafeUninitializedCapacity: n) { buffer, count in
      body(buffer)
      count = n
    }
  }

  public var count: Int { scalars.count }
  /// The batch size: the first dimension (1 for a scalar).
  public var batch: Int { shape.first ?? 1 }
  /// Elements per sample: the product of all dimensions but the first.
  public var sampleSize: Int { shape.dropFirst().reduce(1, *) }

  /// The same scalars under another shape with the same element count.
  public func reshaped(_ newShape: [Int]) -> Tensor {
    Tensor(shape: newShape, scalars: scalars)
  }

  @inline(__always)
  public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<T>) throws -> R) rethrows -> R {
    try scalars.withUnsafeBufferPointer(body)
  }

  @inline(__always)
  public mutating func withUnsafeMutableBufferPointer<R>(
    _ body: (UnsafeMutableBufferPointer<T>) throws -> R
  ) rethrows -> R {
    try scalars.withUnsafeMutableBufferPointer { try body($0) }
  }

  /// Base address of a buffer that may be empty (BLAS never reads it when a dimension is 0).
  /// The base pointers of two tensors read together (one closure where a kernel needs both).
  @inline(__always)
  public static func withBases<R>(_ a: Tensor, _ b: Tensor,
                                  _ body: (UnsafePointer<T>, UnsafePointer<T>) throws -> R) rethrows -> R {
    try a.withUnsafeBufferPointer { a in try b.withUnsafeBufferPointer { b in try body(base(a), base(b)) } }
  }

  /// The base pointers of three tensors read together.
  @inline(__always)
  public static func withBases<R>(_ a: Tensor, _ b: Tensor, _ c: Tensor,
                                  _ body: (UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<T>) throws -> R) rethrows -> R {
    try withBases(a, b) { a, b in try c.withUnsafeBufferPointer { c in try body(a, b, base(c)) } }
  }

  @inline(__always)
  public static func base(_ b: UnsafeBufferPointer<T>) -> UnsafePointer<T> {
    b.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<T>.alignment)!
  }

  @inline(__always)
  public static func base(_ b: UnsafeMutableBufferPointer<T>) -> UnsafeMutablePointer<T> {
    b.baseAddress ?? UnsafeMutablePointer(bitPattern: MemoryLayout<T>.alignment)!
  }
}

extension Array where Element: Scalar {
  /// `count` zeros, written by one memset. In code generic over the scalar type (layers called through
  /// `any Layer<Float>`), `[T](repeating: 0, count:)` copies each element through a value witness: 10-100x slower.
  @inline(__always)
  public static func zeros(_ count: Int) -> [Element] {
    [Element](unsafeUninitializedCapacity: count) { buffer, n in
      buffer.zero()
      n = count
    }
  }
}

extension UnsafeMutableBufferPointer where Element: Scalar {
  /// Sets every element to +0 with one memset (all-zero bits are +0.0 in IEEE 754); unlike `update(repeating:)`,
  /// this costs no per-element dispatch when called from code generic over the scalar type.
  @inline(__always)
  public func zero() {
    guard let base = baseAddress else { return }
    UnsafeMutableRawPointer(base).initializeMemory(as: UInt8.self, repeating: 0, count: count * MemoryLayout<Element>.stride)
  }
}

extension UnsafeMutablePointer where Pointee: Scalar {
  /// Copies `count` scalars from `source` with one memcpy; unlike `update(from:count:)`, this costs no per-element
  /// dispatch when called from code generic over the scalar type.
  @inline(__always)
  public func copyScalars(from source: UnsafePointer<Pointee>, count: Int) {
    UnsafeMutableRawPointer(self).copyMemory(from: source, byteCount: count * MemoryLayout<Pointee>.stride)
  }
}

extension Tensor: CustomStringConvertible {
  public var description: String { "Tensor\(shape)(\(scalars.prefix(8).map { "\($0)" }.joined(separator: ", "))\(count > 8 ? ", ..." : ""))" }
}
