import Foundation

/// Temporary folders and files for tests.
public final class TemporaryDirectory {
  public let path: String

  public init(_ label: String = "dpt-test") {
    let base = (NSTemporaryDirectory() as NSString).appendingPathComponent("\(label)-\(getpid())-\(UUID().uuidString.prefix(8))")
    try! FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
    path = base
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

  @discardableResult
  public func write(_ name: String, _ bytes: [UInt8]) -> String {
    let p = file(name)
    FileManager.default.createFile(atPath: p, contents: Data(bytes))
    return p
  }

  @discardableResult
  public func write(_ name: String, _ text: String) -> String { write(name, Array(text.utf8)) }

  /// `name` compressed with the system's gzip (an independent compressor, not dpt's code).
  @discardableResult
  public func writeGzip(_ name: String, _ bytes: [UInt8]) -> String {
    let raw = write(name + ".raw", bytes)
    let out = file(name)
    let r = Subprocess.run(["/bin/sh", "-c", "gzip -c '\(raw)' > '\(out)'"])
    precondition(r.status == 0, "gzip failed: \(r.stderr)")
    try? FileManager.default.removeItem(atPath: raw)
    return out
  }

  /// Names of the files in the folder, sorted.
  public var contents: [String] { TemporaryDirectory.list(path) }

  /// Names of the files in any folder, sorted (none when it does not exist).
  public static func list(_ path: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
  }
}

/// The package's root folder (for data/corn.csv and the built binary).
public enum Package {
  public static var root: String {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
  }
}
