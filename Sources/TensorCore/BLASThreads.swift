import RealModule
import _CBLAS

/// OpenBLAS's thread pool size for this process (`OPENBLAS_NUM_THREADS` sets it at start-up).
public enum BLASThreads {
  public static var count: Int { Int(openblas_get_num_threads()) }
  public static func set(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
}
