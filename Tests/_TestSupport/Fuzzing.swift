/// A fuzzing loop: every generated input must be read, or rejected with the reader's own error type.
public enum Fuzzing {
  /// Runs `read` on `rounds` inputs; returns how many were read and how many rejected cleanly, and the inputs that
  /// raised anything else (with the error).
  public static func run(rounds: Int, input: (Int) -> [UInt8], read: ([UInt8]) throws -> Void,
                         isClean: (Error) -> Bool) -> (read: Int, rejected: Int, unexpected: [(Int, Error)]) {
    var ok = 0, rejected = 0
    var unexpected: [(Int, Error)] = []
    for i in 0..<rounds {
      do {
        try read(input(i))
        ok += 1
      } catch where isClean(error) {
        rejected += 1
      } catch {
        unexpected.append((i, error))
      }
    }
    return (ok, rejected, unexpected)
  }
}
