import Foundation

/// Temporary folders and files for tests.
public final class TemporaryDirectory: Sendable {
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

  /// An IDX folder `name` of 8x8 images in 3 classes (class c brighter by 70 c, with noise): 90 training images and
  /// 30 test images, label i % 3. Returns the folder.
  public func writeImageFolder(_ name: String) throws -> String {
    let folder = file(name)
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    var rng = SystemRandomNumberGenerator()
    for (part, n) in [("train", 90), ("t10k", 30)] {
      let labels = (0..<n).map { UInt8($0 % 3) }
      let pixels = labels.flatMap { l in (0..<64).map { _ in UInt8(min(255, Int(l) * 70 + Int.random(in: 0..<80, using: &rng))) } }
      write("\(name)/\(part)-images-idx3-ubyte", [0, 0, 8, 3, 0, 0, 0, UInt8(n), 0, 0, 0, 8, 0, 0, 0, 8] + pixels)
      write("\(name)/\(part)-labels-idx1-ubyte", [0, 0, 8, 1, 0, 0, 0, UInt8(n)] + labels)
    }
    return folder
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
