import Training
import Foundation
import TensorCore
import _Support

/// The values a sweep tries for one option: a list (a grid axis), or a distribution to draw from (random search).
public enum AxisValues: Codable, Equatable, Sendable {
  case list([String])
  /// Uniform in [low, high].
  case uniform(Double, Double)
  /// Log-uniform in [low, high] (both > 0): uniform in the exponent, for decays and rates.
  case logUniform(Double, Double)
}

/// One axis of a sweep: a `dpt train` option (its name without dashes: `weight-decay`, `optimizer`, `model`) and
/// the values it takes.
public struct SweepAxis: Codable, Equatable, Sendable {
  public var option: String
  public var values: AxisValues

  public init(option: String, values: AxisValues) {
    self.option = option
    self.values = values
  }

  /// The key of the axis in summary.json: the option's name with dashes as underscores (`weight_decay`).
  public var key: String { option.replacingOccurrences(of: "-", with: "_") }

  /// Whether the values are best drawn on a log axis (decays, rates, and log-uniform draws).
  public var isLogScale: Bool {
    if case .logUniform = values { return true }
    return ["weight-decay", "lr", "decoupled-weight-decay", "eps", "lr-min"].contains(option)
  }

  /// Whether every value is a number (a chart of the metric against it is possible).
  public var isNumeric: Bool {
    switch values {
    case .list(let v): v.allSatisfy { Double($0) != nil }
    case .uniform, .logUniform: true
    }
  }

  /// "wd" for weight-decay, "batch" for batch-size: the short names setting names use; else the option.
  public var shortName: String {
    ["weight-decay": "wd", "batch-size": "batch", "decoupled-weight-decay": "dwd"][option] ?? option
  }
}

/// One point of a sweep: a value per axis.
public struct SweepSetting: Codable, Equatable, Sendable {
  public var index: Int
  /// (option, value) in axis order.
  public var values: [[String]]

  public init(index: Int, values: [(String, String)]) {
    self.index = index
    self.values = values.map { [$0.0, $0.1] }
  }

  public func value(_ option: String) -> String? { values.first { $0[0] == option }?[1] }

  /// "wd=0.05 lr=0.1": the axes and their values.
  public func name(axes: [SweepAxis]) -> String {
    let parts = values.map { pair -> String in
      let short = axes.first { $0.option == pair[0] }?.shortName ?? pair[0]
      return "\(short)=\(pair[1])"
    }
    return parts.isEmpty ? "base" : parts.joined(separator: " ")
  }

  /// A folder name for the setting, "01_wd-0.05_lr-0.1": its number, then its values with anything that is not a
  /// letter, digit, '.', '+' or '-' as '-' (a list of layers stays readable, and never a path).
  public func slug(axes: [SweepAxis]) -> String {
    let body = name(axes: axes).map { c -> Character in
      if c == "=" { return "-" }
      if c == " " { return "_" }
      return c.isLetter || c.isNumber || c == "." || c == "+" || c == "-" ? c : "-"
    }
    var text = String(body)
    while text.contains("--") { text = text.replacingOccurrences(of: "--", with: "-") }
    return String(format: "%02d_", index + 1) + String(text.prefix(80))
  }
}

/// One training run of a sweep: a setting with one seed.
public struct SweepTrial: Codable, Equatable, Sendable {
  public var index: Int
  public var setting: Int
  public var seed: UInt64
  /// The folder of its files, inside the sweep's: the setting's, or `<setting>/seed-<s>` when seeds repeat.
  public var folder: [String]
}

/// What a sweep runs: its axes, the settings drawn from them, the seeds that repeat each, and the trials.
public struct SweepPlan: Codable, Equatable, Sendable {
  public var axes: [SweepAxis]
  public var settings: [SweepSetting]
  public var seeds: [UInt64]
  public var trials: [SweepTrial]

  /// The grid (the product of the list axes, the first varying slowest), or with `samples` N settings drawn at
  /// random with `seed` (distributions drawn from, lists picked from uniformly, as sklearn's ParameterSampler), each
  /// repeated for every seed.
  public static func make(axes: [SweepAxis], seeds: [UInt64], samples: Int?, seed: UInt64) throws -> SweepPlan {
    var settings: [SweepSetting] = []
    if let samples {
      var rng = RandomSource(seed: seed, stream: 0x5A3F_11E5)
      for i in 0..<samples {
        let values = axes.map { axis -> (String, String) in
          switch axis.values {
          case .list(let v): return (axis.option, v[rng.index(below: v.count)])
          case .uniform(let a, let b): return (axis.option, format(rng.uniform(a, b)))
          case .logUniform(let a, let b): return (axis.option, format(exp(rng.uniform(log(a), log(b)))))
          }
        }
        settings.append(SweepSetting(index: i, values: values))
      }
    } else {
      var grid: [[(String, String)]] = [[]]
      for axis in axes {
        guard case .list(let values) = axis.values else {
          throw SweepProblem.distributionNeedsSamples(option: axis.option)
        }
        grid = grid.flatMap { prefix in values.map { prefix + [(axis.option, $0)] } }
      }
      settings = grid.enumerated().map { SweepSetting(index: $0.offset, values: $0.element) }
    }
    var trials: [SweepTrial] = []
    for s in settings {
      for seed in seeds {
        let slug = s.slug(axes: axes)
        trials.append(SweepTrial(index: trials.count, setting: s.index, seed: seed,
                                 folder: seeds.count > 1 ? [slug, "seed-\(seed)"] : [slug]))
      }
    }
    return SweepPlan(axes: axes, settings: settings, seeds: seeds, trials: trials)
  }

  /// Three significant digits: what a drawn value's setting name and option get.
  static func format(_ x: Double) -> String { String(format: "%.3g", x) }

  public func name(_ setting: SweepSetting) -> String { setting.name(axes: axes) }
  public func slug(_ setting: SweepSetting) -> String { setting.slug(axes: axes) }
}
