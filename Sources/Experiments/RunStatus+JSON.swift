import Training
import Collectives
import Datasets
import FileFormats
import Foundation
import _Support

extension RunStatus {
  /// The status with its details, as summaries record it: {"status": "stopped-early", "epoch": 7, "best_epoch": 4}.
  public var json: JSON {
    var o: [(String, JSON)] = [("status", JSON(name))]
    switch self {
    case .finished, .interrupted: break
    case .stoppedEarly(let e, let b): o += [("epoch", JSON(e)), ("best_epoch", JSON(b))]
    case .diverged(let e, let r): o += [("epoch", JSON(e)), ("reason", JSON(r))]
    case .converged(let i, let r): o += [("iteration", JSON(i)), ("reason", JSON(r))]
    case .pruned(let e): o += [("epoch", JSON(e))]
    }
    return .object(o)
  }

  public init?(json: JSON) {
    switch json["status"]?.string {
    case "finished": self = .finished
    case "interrupted": self = .interrupted
    case "stopped-early": self = .stoppedEarly(epoch: json["epoch"]?.int ?? 0, best: json["best_epoch"]?.int ?? 0)
    case "diverged": self = .diverged(epoch: json["epoch"]?.int ?? 0, reason: json["reason"]?.string ?? "")
    case "converged": self = .converged(iteration: json["iteration"]?.int ?? 0, reason: json["reason"]?.string ?? "")
    case "pruned": self = .pruned(epoch: json["epoch"]?.int ?? 0)
    default: return nil
    }
  }
}
