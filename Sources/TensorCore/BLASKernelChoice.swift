import Foundation
import _Support

/// The first thing dpt does, before MPI and before any BLAS call: OpenBLAS's kernel, upgraded when OpenBLAS fell back
/// to a generic one on a CPU that runs a wider one it has (Prescott on a current Intel Xeon, where SkylakeX is 5x
/// faster). OpenBLAS reads `OPENBLAS_CORETYPE` once, when it loads, so dpt sets it and re-executes itself (same pid:
/// mpirun and Slurm see nothing). The re-executed process checks the kernel (a product against a plain loop: some
/// builds compute wrong results on CPUs they do not know) before it does anything else; one that fails gives way to
/// the next, and when all fail OpenBLAS's own choice comes back. Only kernels whose instructions the CPU reports are
/// tried. A user's `OPENBLAS_CORETYPE` is kept, and `DPT_BLAS_KERNEL=keep` turns the choice off. It costs one exec
/// and a few milliseconds, once, where OpenBLAS fell back; nothing elsewhere.
public enum BLASKernelChoice {
  /// Set by dpt for its re-executed self: "KERNEL TRIED;OPENBLAS'S OWN CHOICE;KERNELS THAT FAILED,...".
  public static let choiceVariable = "DPT_BLAS_CHOICE"
  /// `keep`: OpenBLAS's own choice, whatever it is.
  public static let keepVariable = "DPT_BLAS_KERNEL"

  /// Why the kernel in effect is the one: "OpenBLAS chose Prescott for this CPU", "OPENBLAS_CORETYPE=Haswell", ...;
  /// nil when it is OpenBLAS's own choice and the widest this CPU has.
  public static var reason: String? { recorded.current }
  private static let recorded = Locked<String?>(nil)
  private static func setReason(_ text: String) { recorded.withLock { $0 = text } }

  /// "OpenBLAS 0.3.21, SkylakeX (OpenBLAS chose Prescott for this CPU)": the run header's and `dpt doctor`'s line.
  public static var summary: String { "\(BLASKernel.version), \(BLASKernel.current)\(reason.map { " (\($0))" } ?? "")" }

  /// Chooses (and may re-execute this process, never returning then). Call first thing in a program's `main`,
  /// before anything else has started (threads, files, MPI).
  public static func apply() {
    let env = ProcessInfo.processInfo.environment
    if let recorded = env[choiceVariable] {
      let parts = recorded.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
      guard parts.count == 3 else { return }
      let (tried, chose) = (parts[0], parts[1])
      var failed = parts[2].split(separator: ",").map(String.init)
      if tried.isEmpty {
        // Every candidate failed: OpenBLAS's own choice again.
        setReason("OpenBLAS chose it for this CPU; \(failed.joined(separator: ", ")) failed dpt's self-check")
        return
      }
      if tried.caseInsensitiveCompare(BLASKernel.current) == .orderedSame && BLASKernel.selfCheck() {
        setReason("OpenBLAS chose \(chose) for this CPU" + (failed.isEmpty ? "" : "; \(failed.joined(separator: ", ")) failed dpt's self-check"))
        return
      }
      failed.append(tried)
      next(after: failed, chose: chose)
      return
    }
    if let forced = env["OPENBLAS_CORETYPE"] {
      setReason("OPENBLAS_CORETYPE=\(forced)")
      return
    }
    let chose = BLASKernel.current
    if env[keepVariable] == "keep" {
      let upgrades = BLASKernel.upgrades(from: chose, cpu: .current)
      setReason(upgrades.isEmpty ? "\(keepVariable)=keep" : "\(keepVariable)=keep; this CPU runs \(upgrades[0])")
      return
    }
    next(after: [], chose: chose)
  }

  /// Re-executes with the first upgrade not in `failed`, or, when none is left after some failed, without any.
  static func next(after failed: [String], chose: String) {
    guard let kernel = BLASKernel.choose(chose: chose, cpu: .current, check: { !failed.contains($0) }).kernel else {
      if failed.isEmpty { return }
      unsetenv("OPENBLAS_CORETYPE")
      setenv(choiceVariable, ";\(chose);\(failed.joined(separator: ","))", 1)
      reexecute()
      setReason("OpenBLAS's choice was not restored after \(failed.joined(separator: ", ")) failed dpt's self-check")
      return
    }
    setenv("OPENBLAS_CORETYPE", kernel, 1)
    setenv(choiceVariable, "\(kernel);\(chose);\(failed.joined(separator: ","))", 1)
    reexecute()
    // Not re-executed (exec failed): the process goes on with the kernel it has.
    unsetenv("OPENBLAS_CORETYPE")
    unsetenv(choiceVariable)
    setReason("dpt could not start again with \(kernel)")
  }

  /// execv of this program with the same arguments, byte for byte (a path that is not UTF-8 stays as it was, where
  /// Swift's strings of it would not), and the environment as set now.
  static func reexecute() {
    execv("/proc/self/exe", CommandLine.unsafeArgv)
  }
}
