import Foundation
import Training
import _Support

/// `--histograms`: after each epoch, a TensorBoard histogram of every layer's parameters and of its part of the
/// last step's reduced gradient (`layerN_KIND/parameters`, `layerN_KIND/gradients`). Every rank takes part (the whole
/// gradient is gathered where a sharded step keeps it in pieces); rank 0 alone, which holds `board`, writes.
public final class Histograms: RunObserver {
  public let board: TensorBoardWriter?

  public init(board: TensorBoardWriter?) { self.board = board }

  public func epochEnded(_ run: Run, _ metrics: EpochMetrics) throws {
    let t = run.trainer
    let gradient = try t.reducer.wholeGradient()  // collective
    guard let board else { return }
    let parameters = t.parameters, offsets = t.network.offsets
    for (i, item) in t.layerItems.enumerated() where i + 1 < offsets.count && offsets[i + 1] > offsets[i] {
      let range = offsets[i]..<offsets[i + 1], tag = "layer\(i)_\(item.name)"
      try board.histogram("\(tag)/parameters", parameters[range].map(Double.init), step: metrics.epoch)
      try board.histogram("\(tag)/gradients", gradient[range].map(Double.init), step: metrics.epoch)
    }
  }
}
