import Datasets
import Foundation
import Testing
import _TestSupport

/// Seeded mutation fuzzing of the readers: every mutated input is read or rejected with a DataProblem; a crash ends
/// the test process (a failure), a hang hits the time limit. The counts are printed.
@Suite(.timeLimit(.minutes(3))) struct FuzzTests {
  static let rounds = 4000

  func fuzz(_ name: String, seeds: [[UInt8]], alphabet: [UInt8] = [], _ read: ([UInt8]) throws -> Void) {
    var mutator = Mutator(seed: 2026, alphabet: alphabet)
    let r = Fuzzing.run(rounds: Self.rounds, input: { mutator.mutate(seeds[$0 % seeds.count]) }, read: read,
                        isClean: { $0 is DataProblem })
    for (i, error) in r.unexpected { Issue.record("\(name): input \(i) raised \(type(of: error)), not a DataProblem: \(error)") }
    print("fuzz \(name): \(Self.rounds) mutated inputs, \(r.read) read, \(r.rejected) rejected with a clear error")
    #expect(r.read + r.rejected == Self.rounds && r.rejected > 0)
  }

  @Test func idx() {
    let images = IDXArray(dimensions: [3, 4, 4], bytes: (0..<48).map { UInt8($0) }).encoded
    let labels = IDXArray(dimensions: [5], bytes: [1, 2, 3, 4, 5]).encoded
    fuzz("idx", seeds: [images, labels]) { _ = try IDXArray(parsing: $0, path: "fuzz") }
  }

  @Test func gzippedIDX() {
    let dir = TemporaryDirectory("dpt-fuzz")
    let gz = [UInt8](FileManager.default.contents(atPath: dir.writeGzip("i.gz", IDXArray(dimensions: [20, 4, 4], bytes: (0..<320).map { UInt8($0 % 251) }).encoded))!)
    fuzz("gzip+idx", seeds: [gz]) { bytes in
      _ = try IDXArray(parsing: try FileBytes.gunzip(bytes, path: "fuzz.gz"), path: "fuzz")
    }
  }

  @Test func csv() {
    let alphabet = Array(",.;-+eE0123456789 \t\n\r\"naifAZ".utf8)
    let seeds = [Array(Corn.csv.utf8), Array("1,2,3\n4.5,-6e-3,7\n".utf8), Array("a\tb\n1\t2\r\n".utf8),
                 Array("size,color,y\n1,red,a\n,blue,b\n3,,a\n4,red,\n".utf8)]
    fuzz("csv", seeds: seeds, alphabet: alphabet) { bytes in
      let t = try NumericTable(parsing: bytes, path: "fuzz")
      // Text and gaps through the encoder, under each policy; then the numbers-only reader.
      var warnings: [DataWarning] = []
      for missing in MissingValues.allCases {
        do { _ = try TableEncoding.fit(t, path: "fuzz", classes: missing != .drop, targets: 1, missing: missing, lenient: false, warnings: &warnings) }
        catch is DataProblem {}
      }
      _ = try Catalog.regressionTable(t, path: "fuzz")
    }
  }
}
