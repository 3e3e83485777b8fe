import Testing

/// The tests that run `dpt` (many under mpirun). Serialized as a whole: mpirun jobs started by different suites at
/// once would oversubscribe this machine's two cores several times over.
@Suite(.serialized) enum BinaryTests {}
