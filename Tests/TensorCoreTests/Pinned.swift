import TensorCore

extension RandomSource {
  /// RandomSource(seed: 7).permutation(10), computed by an independent Python implementation of SplitMix64,
  /// Lemire's bounded integers and Fisher-Yates.
  static let pinnedPermutationOf10Seed7 = [8, 7, 0, 2, 3, 1, 4, 6, 5, 9]
}
