import Foundation

/// The `dpt` executable built beside the tests, run directly or under mpirun.
public enum DPTBinary {
  /// `$DPT_BINARY`, else `dpt` in the folder of the running test bundle (SwiftPM builds both there).
  public static var path: String {
    if let p = ProcessInfo.processInfo.environment["DPT_BINARY"], !p.isEmpty { return p }
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    return bundle.appendingPathComponent("dpt").path
  }

  /// What mpirun needs here: as root it refuses to start without these two variables; one BLAS thread per rank.
  public static let mpiEnvironment = [
    "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OPENBLAS_NUM_THREADS": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
  ]

  public static func run(_ arguments: [String], timeout: Double = 120, environment: [String: String] = [:]) -> Subprocess.Result {
    Subprocess.run([path] + arguments, environment: environment, timeout: timeout)
  }

  /// `mpirun -np ranks --oversubscribe dpt arguments...`
  public static func mpirun(_ ranks: Int, _ arguments: [String], timeout: Double = 180,
                            environment: [String: String] = [:]) -> Subprocess.Result {
    Subprocess.run(["mpirun", "-np", "\(ranks)", "--oversubscribe", path] + arguments,
                   environment: mpiEnvironment.merging(environment) { $1 }, timeout: timeout)
  }
}
