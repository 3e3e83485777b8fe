import Experiments
import Foundation
import _Support

/// What a population-based training sweep adds to its report: each member's lineage (the values its weights trained
/// with, epoch by epoch, through every exploit) as a chart, and every exploit as a finding.
enum PBTLineage {
  /// One line per member: along the lineage of its last segment, the first numeric axis's value over the epochs (a
  /// step at each exploit or perturbation); a log axis for a log-uniform one.
  static func chart(_ pbt: PBTSearch, title: String) -> Chart? {
    guard let axis = pbt.axes.first(where: { if case .list = $0.values { false } else { true } }) else { return nil }
    var series: [Chart.Series] = []
    for member in 0..<pbt.population {
      guard let last = pbt.segments.indices.last(where: { pbt.segments[$0].member == member }) else { continue }
      var points: [(x: Double, y: Double)] = []
      for s in pbt.lineage(of: last) {
        let v = Double(s.values.first { $0[0] == axis.option }?[1] ?? "") ?? .nan
        points += [(Double(s.start), v), (Double(s.end), v)]
      }
      series.append(Chart.Series(label: "member \(member)", points: points, color: Chart.palette[member % Chart.palette.count]))
    }
    var c = Chart(title: "\(title): \(axis.option) along each member's lineage", xLabel: "epoch", yLabel: axis.option, series: series,
                  logY: { if case .logUniform = axis.values { true } else { false } }())
    c.markMeanings = [:]
    return c
  }

  /// Each exploit, as a finding of its member's next segment.
  static func findings(_ pbt: PBTSearch, plan: SweepPlan) -> [Finding] {
    pbt.exploits.map { e in
      Finding(kind: "exploit", setting: "member \(e.member)",
                     evidence: "after epoch \(e.epoch) member \(e.member) (validation score \(NumberText.fixed(e.memberScore))) copied member \(e.donor)'s checkpoint (\(NumberText.fixed(e.donorScore))) and values, perturbed: \(e.changes) (its own, the donor's, the new)")
    }
  }
}
