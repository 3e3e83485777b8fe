/// A sweep's problems, told in values (the command line names the flags: `ErrorMessages` in DPTCommand).
public enum SweepProblem: Error, Equatable, CustomStringConvertible {
  /// An axis of a distribution (uniform, loguniform) without a number of settings to draw.
  case distributionNeedsSamples(option: String)
  /// A search that draws settings (random, tpe) without a number of them.
  case searchNeedsSamples(search: String)
  /// Population-based training without a population of at least 2, or an exploit interval not below the epochs.
  case pbtNeedsPopulation
  /// A plan without settings.
  case noSettings
  /// `--search` named a search dpt does not have.
  case unknownSearch(name: String, known: [String])
  /// The sweep's groups do not divide the world.
  case groupsDoNotDivide(ranksPerTrial: Int, worldSize: Int)
  /// Fewer training samples than ranks in a sweep's group.
  case tooFewSamplesForGroups(dataSet: String, samples: Int, ranksPerTrial: Int)
  /// A message between the ranks that the protocol does not allow: a bug, or a rank of another dpt.
  case protocolBroken(String)

  public var description: String {
    switch self {
    case .distributionNeedsSamples(let option): "the axis of \(option) is a distribution: it needs a number of settings to draw"
    case .searchNeedsSamples(let search): "the \(search) search needs a number of settings to draw"
    case .pbtNeedsPopulation: "population-based training needs a population of at least 2 and an exploit interval below the epochs"
    case .noSettings: "the sweep has no settings"
    case .unknownSearch(let name, let known): "no search is named '\(name)' (there are \(known.joined(separator: ", ")))"
    case .groupsDoNotDivide(let k, let n): "groups of \(k) ranks do not divide the \(n) ranks"
    case .tooFewSamplesForGroups(let name, let n, let k): "\(name): \(n) training samples for groups of \(k) ranks"
    case .protocolBroken(let what): "sweep: \(what)"
    }
  }
}
