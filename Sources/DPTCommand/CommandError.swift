import Collectives
import Foundation
import TensorCore

/// A command-line failure with its one-line message.
struct CommandError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
