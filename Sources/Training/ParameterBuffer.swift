import TensorCore

/// The flat parameter buffer of a replica: this rank's own memory, or, once a sharded optimizer step has moved it
/// there, memory the host's ranks share. The trainer reads and writes `values` either way.
public final class ParameterBuffer<T: TrainingScalar> {
  public private(set) var values: UnsafeMutableBufferPointer<T>
  private var owned: Bool

  public init(_ initial: [T]) {
    values = .allocate(capacity: initial.count)
    _ = values.initialize(from: initial)
    owned = true
  }

  deinit { if owned { values.deallocate() } }

  /// From now on the parameters are `shared` (already holding them); memory shared by a host outlives this buffer.
  func move(to shared: UnsafeMutableBufferPointer<T>) {
    precondition(shared.count == values.count, "moving \(values.count) parameters into \(shared.count)")
    if owned { values.deallocate() }
    values = shared
    owned = false
  }

  public var array: [T] {
    get { Array(values) }
    set {
      precondition(newValue.count == values.count, "\(newValue.count) parameters for \(values.count)")
      values.baseAddress!.copyScalars(from: newValue, count: newValue.count)
    }
  }
}
