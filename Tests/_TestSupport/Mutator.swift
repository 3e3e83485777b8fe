import TensorCore

/// Seeded mutations of a valid input, for fuzzing readers in CI: flips, byte changes, deletions, insertions,
/// duplications and truncations, one to four at a time.
public struct Mutator {
  var rng: RandomSource
  /// Bytes worth inserting (CSV's delimiters and number characters, say), besides random ones.
  let alphabet: [UInt8]

  public init(seed: UInt64, alphabet: [UInt8] = []) {
    rng = RandomSource(seed: seed, stream: 0xF022)
    self.alphabet = alphabet
  }

  mutating func byte() -> UInt8 {
    if !alphabet.isEmpty && rng.index(below: 2) == 0 { return alphabet[rng.index(below: alphabet.count)] }
    return [0, 0xFF, 0x7F, 0x80, UInt8(rng.index(below: 256))][rng.index(below: 5)]
  }

  public mutating func mutate(_ input: [UInt8]) -> [UInt8] {
    var b = input
    for _ in 0..<(1 + rng.index(below: 4)) {
      let n = b.count
      switch rng.index(below: 7) {
      case 0 where n > 0: b[rng.index(below: n)] ^= UInt8(1 << rng.index(below: 8))  // flip a bit
      case 1 where n > 0: b[rng.index(below: n)] = byte()  // change a byte
      case 2 where n > 0:  // delete a range
        let i = rng.index(below: n)
        b.removeSubrange(i..<min(n, i + 1 + rng.index(below: 16)))
      case 3:  // insert bytes
        let i = rng.index(below: n + 1)
        b.insert(contentsOf: (0..<(1 + rng.index(below: 8))).map { _ in byte() }, at: i)
      case 4 where n > 0:  // duplicate a range
        let i = rng.index(below: n), j = min(n, i + 1 + rng.index(below: 64))
        b.insert(contentsOf: b[i..<j], at: rng.index(below: b.count + 1))
      case 5 where n > 0: b = Array(b.prefix(rng.index(below: n)))  // truncate
      default: if n > 4 { b[rng.index(below: 4)] = byte() }  // the header
      }
    }
    return b
  }
}
