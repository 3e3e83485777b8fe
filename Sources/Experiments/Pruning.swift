import Training
import Collectives
import Datasets
import FileFormats
import Foundation
import _Support

/// Successive halving (`--prune halving`): at rungs of 1, 2, 4, ... epochs the worse half of the settings by the
/// validation metric stop. While every trial runs at once (trials no more than groups) a rung waits for all of them
/// (synchronous halving); with more trials than groups each is compared with those that reached the rung before it
/// (ASHA, Li et al. 2020), so no group waits.
///
/// Hyperband (`--prune hyperband`, Li et al. 2017, eta 3): the settings are spread over brackets of successive
/// halving that start pruning later and later. Bracket b has its rungs at 3^b, 3^(b+1), ... epochs (below the last)
/// and keeps a third of its settings at each; the last bracket prunes nothing. Settings go to the brackets in
/// Hyperband's proportions (for R epochs and s_max = floor(log3 R), bracket b gets ceil((s_max + 1) / (s_max - b + 1)
/// 3^(s_max - b)) of every cycle), dealt in turn so that a small sweep sees every bracket. A setting is ranked only
/// against the settings of its own bracket, and pruned with all its seeds together.
public struct Pruning: Codable, Equatable, Sendable {
  /// The fraction kept at each rung is 1 / reduction.
  public var reduction: Int = 2
  /// Brackets of successive halving (Hyperband's; 1 for plain halving).
  public var brackets = 1

  public init(reduction: Int = 2, brackets: Int = 1) {
    self.reduction = reduction
    self.brackets = max(brackets, 1)
  }

  /// Hyperband with eta 3 for runs of `epochs`: s_max + 1 brackets, s_max = floor(log3(epochs)).
  public static func hyperband(epochs: Int) -> Pruning {
    var s = 0, r = 3
    while r <= epochs { s += 1; r *= 3 }
    return Pruning(reduction: 3, brackets: s + 1)
  }

  enum CodingKeys: String, CodingKey { case reduction, brackets }

  /// sweep.json of a sweep from before Hyperband holds the reduction alone.
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    reduction = try c.decode(Int.self, forKey: .reduction)
    brackets = try c.decodeIfPresent(Int.self, forKey: .brackets) ?? 1
  }

  /// The bracket of the setting of index `setting` (in the order the search proposed them).
  public func bracket(ofSetting setting: Int) -> Int {
    let n = brackets
    guard n > 1 else { return 0 }
    let sMax = Double(n - 1)
    // Hyperband's number of configurations of each bracket, as shares of a cycle.
    let weights = (0..<n).map { b in ((sMax + 1) / (sMax - Double(b) + 1) * pow(Double(reduction), sMax - Double(b))).rounded(.up) }
    // Dealt in turn: each setting goes to the bracket furthest behind its share.
    let total = weights.reduce(0, +)
    var dealt = [Double](repeating: 0, count: n), chosen = 0
    for i in 0...setting {
      chosen = (0..<n).max { a, b in weights[a] / total * Double(i + 1) - dealt[a] < weights[b] / total * Double(i + 1) - dealt[b] }!
      dealt[chosen] += 1
    }
    return chosen
  }

  /// Whether `epoch` is a rung of `bracket` (its first at reduction^bracket epochs, then each reduction times the
  /// last, below the last epoch).
  public func isRung(_ epoch: Int, of epochs: Int, bracket: Int = 0) -> Bool {
    guard epoch < epochs else { return false }
    var r = 1
    for _ in 0..<bracket { r *= reduction }
    while r < epoch { r *= reduction }
    return r == epoch
  }
}
