import Testing
import _TestSupport

/// The tests that run `dpt` (many under mpirun, some with Python's readers and PyTorch): the full tier, run by
/// `scripts/test` or `DPT_TEST_TIER=all swift test`. Serialized as a whole: mpirun jobs started by different suites
/// at once would oversubscribe this machine's two cores several times over.
@Suite(.serialized, .tags(.mpirun),
       .enabled(if: TestTier.all, "the full tier: scripts/test, or DPT_TEST_TIER=all swift test -c release"))
enum BinaryTests {}
