import Foundation
import Testing

/// Which tests run. Plain `swift test` is the fast tier: the library's own tests, in process, with no mpirun, Python
/// or root, in well under two minutes. `DPT_TEST_TIER=all` (which `scripts/test` sets) adds the tests that run the
/// `dpt` executable, under mpirun and against Python's readers and PyTorch.
public enum TestTier {
  public static var all: Bool { ProcessInfo.processInfo.environment["DPT_TEST_TIER"] == "all" }
}

extension Tag {
  /// Runs `dpt` under mpirun (with OpenMPI installed), and some tests with Python's tensorboard, safetensors and torch.
  @Tag public static var mpirun: Self
}
