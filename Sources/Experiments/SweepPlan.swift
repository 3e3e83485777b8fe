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

  /// A plan with no setting yet: a `Searcher` proposes them.
  public init(axes: [SweepAxis], seeds: [UInt64]) {
    (self.axes, self.settings, self.seeds, self.trials) = (axes, [], seeds, [])
  }

  /// Adds a setting (a searcher's proposal) and its trials, one per seed; returns the setting.
  @discardableResult
  public mutating func add(_ values: [(String, String)]) -> SweepSetting {
    let setting = SweepSetting(index: settings.count, values: values)
    settings.append(setting)
    let slug = setting.slug(axes: axes)
    for seed in seeds {
      trials.append(SweepTrial(index: trials.count, setting: setting.index, seed: seed,
                               folder: seeds.count > 1 ? [slug, "seed-\(seed)"] : [slug]))
    }
    return setting
  }

  /// The trials of `setting`.
  public func trials(of setting: Int) -> [SweepTrial] { trials.filter { $0.setting == setting } }

  /// The whole plan of a search that needs no results (a grid, or with `samples` a random search): every setting
  /// it proposes, each repeated for every seed.
  public static func make(axes: [SweepAxis], seeds: [UInt64], samples: Int?, seed: UInt64) throws -> SweepPlan {
    let searcher: any Searcher = samples != nil ? try RandomSearch(axes: axes, samples: samples, seed: seed)
      : try GridSearch(axes: axes, samples: nil, seed: seed)
    var plan = SweepPlan(axes: axes, seeds: seeds)
    for values in Searchers.firstSettings(searcher) { plan.add(values) }
    return plan
  }

  /// Three significant digits: what a drawn value's setting name and option get.
  static func format(_ x: Double) -> String { String(format: "%.3g", x) }

  public func name(_ setting: SweepSetting) -> String { setting.name(axes: axes) }
  public func slug(_ setting: SweepSetting) -> String { setting.slug(axes: axes) }
}
