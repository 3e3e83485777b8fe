/// A problem with input data: the message names the file or flag and says what to do.
public struct DataError: Error, CustomStringConvertible, Equatable {
  public var description: String
  public init(_ description: String) { self.description = description }
}
