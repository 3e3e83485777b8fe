import Foundation

/// This process's memory use, from /proc/self/status.
public enum ProcessMemory {
  /// Peak resident set size (VmHWM) in MiB, or nil where /proc is not available.
  public static var peakResidentMiB: Double? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
      let kB = line.split(separator: " ").compactMap { Double($0) }.first
      return kB.map { $0 / 1024 }
    }
    return nil
  }
}
