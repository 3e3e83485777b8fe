import Training
import Collectives
import Datasets
import FileFormats
import Foundation
import _Support

/// Successive halving (`--prune halving`): at rungs of 1, 2, 4, ... epochs the worse half of the trials by the
/// validation metric stop. While every trial runs at once (trials no more than groups) a rung waits for all of them
/// (synchronous halving); with more trials than groups each is compared with those that reached the rung before it
/// (ASHA, Li et al. 2020), so no group waits.
public struct Pruning: Codable, Equatable, Sendable {
  /// The fraction kept at each rung is 1 / reduction.
  public var reduction: Int = 2

  public init(reduction: Int = 2) { self.reduction = reduction }

  /// Whether `epoch` is a rung (1, 2, 4, ... below the last epoch).
  public func isRung(_ epoch: Int, of epochs: Int) -> Bool {
    guard epoch < epochs else { return false }
    var r = 1
    while r < epoch { r *= reduction }
    return r == epoch
  }
}
