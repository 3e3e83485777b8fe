import TensorCore

/// An optimizer's memory as a checkpoint stores it: a step count and named buffers, in a fixed order.
public struct SavedOptimizerState<T: Scalar>: Equatable {
  public var step: Int
  public var buffers: [Buffer]

  public struct Buffer: Equatable {
    public var name: String
    public var values: [T]
    public init(_ name: String, _ values: [T]) {
      self.name = name
      self.values = values
    }
  }

  public init(step: Int, buffers: [Buffer] = []) {
    self.step = step
    self.buffers = buffers
  }

  /// The values of the buffer `name` (empty when there is none).
  public subscript(name: String) -> [T] { buffers.first { $0.name == name }?.values ?? [] }
}
