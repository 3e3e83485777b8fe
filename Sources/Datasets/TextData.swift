import Foundation

/// A character-level data set from a UTF-8 text, as nanoGPT's shakespeare_char prepares one: the vocabulary is the
/// text's distinct characters (Unicode code points) sorted by code point, each character its index in it; sample i is
/// the window of characters [iT, iT + T], whose first T are the inputs and last T (shifted by one) the targets, the
/// next character at every position. A last partial window is dropped.
public enum TextData {
  /// The vocabulary and the ids of `bytes`, read as UTF-8; a byte sequence that is not UTF-8 is an error naming its
  /// offset.
  public static func tokens(_ bytes: [UInt8], path: String) throws -> (vocabulary: [Unicode.Scalar], ids: [Int32]) {
    var scalars: [Unicode.Scalar] = []
    scalars.reserveCapacity(bytes.count)
    var decoder = UTF8()
    var iterator = bytes.makeIterator()
    var offset = 0
    decoding: while true {
      switch decoder.decode(&iterator) {
      case .scalarValue(let u):
        scalars.append(u)
        offset += UTF8.width(u)
      case .emptyInput: break decoding
      case .error:
        throw DataProblem.malformed("\(path): byte \(offset) (0x\(String(bytes[offset], radix: 16, uppercase: true))) is not UTF-8: text:FILE reads a UTF-8 text (convert it with iconv -t UTF-8)")
      }
    }
    let vocabulary = Set(scalars).sorted { $0.value < $1.value }
    var index: [Unicode.Scalar: Int32] = [:]
    for (i, u) in vocabulary.enumerated() { index[u] = Int32(i) }
    return (vocabulary, scalars.map { index[$0]! })
  }

  /// The windows of `context` characters of the text at `path`, each with its next characters as labels.
  public static func dataset(path: String, context T: Int) throws -> Dataset {
    precondition(T > 0, "a context of at least one character")
    let (vocabulary, ids) = try tokens(try FileBytes.raw(path, whenMissing: "check --dataset text:PATH"), path: path)
    let windows = ids.isEmpty ? 0 : (ids.count - 1) / T
    guard windows >= 2 else {
      throw DataProblem.malformed("\(path): \(ids.count) characters make \(windows) window\(windows == 1 ? "" : "s") of --context \(T) and the character after it: use a longer text or a shorter --context (a training and a test window need \(2 * T + 1) characters)")
    }
    var x = [Int32](), y = [Int32]()
    x.reserveCapacity(windows * T)
    y.reserveCapacity(windows * T)
    for i in 0..<windows {
      x += ids[i * T..<(i + 1) * T]
      y += ids[i * T + 1...(i + 1) * T]
    }
    return Dataset(features: .tokens(x), count: windows, sampleShape: [T], labels: y, task: .classification,
                   classCount: vocabulary.count, featureNames: (1...T).map { "t\($0)" }, targetName: "next character",
                   labelsPerSample: T, classNames: vocabulary.map { String(Character($0)) })
  }

  /// Train and test sets: the last `testFraction` of the windows are the test set, in the text's order (no shuffle,
  /// like nanoGPT's 90/10), so no test window overlaps a training one.
  public static func split(_ data: Dataset, name: String, testFraction: Double) throws -> DataSplit {
    guard (0..<1).contains(testFraction) else { throw DataProblem.testFraction(testFraction) }
    let nTest = Int((Double(data.count) * testFraction).rounded())
    guard data.count - nTest >= 1 else { throw DataProblem.testSplitEmpty(dataSet: name, rows: data.count, heldOut: nTest) }
    let cut = data.count - nTest
    return DataSplit(name: name, train: data.subset(0..<cut), test: data.subset(cut..<data.count))
  }
}
