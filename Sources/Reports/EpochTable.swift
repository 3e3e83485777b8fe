import Training
import _Support
import Datasets
import Foundation

/// The per-epoch table rank 0 prints.
public struct EpochTable {
  public let task: LearningTask
  public let validation: Bool
  public init(task: LearningTask, validation: Bool = false) {
    self.task = task
    self.validation = validation
  }

  var columns: [(title: String, width: Int)] {
    var c: [(String, Int)] = task == .classification
      ? [("epoch", 5), ("train loss", 10), ("train acc", 9), ("test loss", 9), ("test acc", 8), ("seconds", 8), ("samples/s", 10)]
      : [("epoch", 5), ("train loss", 10), ("train RMSE", 10), ("train R^2", 9), ("test loss", 10), ("test RMSE", 9),
         ("test R^2", 8), ("seconds", 8), ("samples/s", 10)]
    if validation { c.insert(contentsOf: [("val loss", 9), (task == .classification ? "val acc" : "val R^2", 8)], at: 3) }
    return c
  }

  public var header: String { columns.map { pad($0.title, $0.width) }.joined(separator: "  ") }

  public func row(_ m: EpochMetrics) -> String {
    func f(_ x: Double?, _ digits: Int = 4) -> String { NumberText.fixed(x, digits: digits) }
    var cells: [String]
    if task == .classification {
      cells = ["\(m.epoch)", f(m.train.loss), f(m.train.accuracy), f(m.test?.loss), f(m.test?.accuracy),
               f(m.seconds, 2), f(m.samplesPerSecond, 0)]
    } else {
      cells = ["\(m.epoch)", f(m.train.loss), f(m.train.rmse), f(m.train.r2), f(m.test?.loss), f(m.test?.rmse),
               f(m.test?.r2), f(m.seconds, 2), f(m.samplesPerSecond, 0)]
    }
    if validation {
      cells.insert(contentsOf: [f(m.validation?.loss), f(task == .classification ? m.validation?.accuracy : m.validation?.r2)], at: 3)
    }
    return zip(cells, columns).map { pad($0, $1.width) }.joined(separator: "  ")
  }

  private func pad(_ s: String, _ w: Int) -> String {
    s.count >= w ? s : String(repeating: " ", count: w - s.count) + s
  }
}
