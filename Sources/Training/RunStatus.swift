import Foundation
import _Support

/// How a run ended: every epoch trained, or stopped early for a reason of its own. `status` is what summaries and
/// config.json record.
public enum RunStatus: Equatable, Sendable {
  case finished
  /// The watched loss (validation, else test) did not improve for `patience` epochs; `best` is its best epoch.
  case stoppedEarly(epoch: Int, best: Int)
  /// The training loss became NaN or infinite, or grew beyond the divergence factor times its first logged value.
  case diverged(epoch: Int, reason: String)
  /// The optimizer reached its tolerances (L-BFGS) at iteration `iteration`.
  case converged(iteration: Int, reason: String)
  /// A sweep's successive halving stopped the setting at a rung.
  case pruned(epoch: Int)
  /// A signal stopped the run; it can be resumed.
  case interrupted
  /// A sweep's trial whose job failed (a rank died, a stall) every one of its `tries`, more than `--retries` allows:
  /// a resume leaves it.
  case failed(tries: Int)

  public var name: String {
    switch self {
    case .finished: "finished"
    case .stoppedEarly: "stopped-early"
    case .diverged: "diverged"
    case .converged: "converged"
    case .pruned: "pruned"
    case .interrupted: "interrupted"
    case .failed: "failed"
    }
  }

  public init?(name: String) {
    switch name {
    case "finished": self = .finished
    case "stopped-early": self = .stoppedEarly(epoch: 0, best: 0)
    case "diverged": self = .diverged(epoch: 0, reason: "")
    case "converged": self = .converged(iteration: 0, reason: "")
    case "pruned": self = .pruned(epoch: 0)
    case "interrupted": self = .interrupted
    case "failed": self = .failed(tries: 0)
    default: return nil
    }
  }

  /// Whether the run is done (a resume leaves it alone).
  public var isFinal: Bool { self != .interrupted }

  public var description: String {
    switch self {
    case .finished: "finished"
    case .stoppedEarly(let e, let b): "stopped early after epoch \(e) (best epoch \(b))"
    case .diverged(let e, let r): "diverged at epoch \(e): \(r)"
    case .converged(let i, let r): "converged at iteration \(i): \(r)"
    case .pruned(let e): "pruned after epoch \(e)"
    case .interrupted: "interrupted"
    case .failed(let n): "failed \(n) time\(n == 1 ? "" : "s") (its job ended: a rank died or stalled), more than --retries allows"
    }
  }
}

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
    case .failed(let n): o += [("tries", JSON(n))]
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
    case "failed": self = .failed(tries: json["tries"]?.int ?? 0)
    default: return nil
    }
  }
}
