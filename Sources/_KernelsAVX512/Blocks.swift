/// This build's blocks of output channels: eight 16-float vectors where the channels come in eights (LeNet's 16), six
/// where they come in sixes; one AVX-512 register each, of thirty-two, and enough independent sums to cover the
/// FMA's latency.
enum Blocks {
  static let isa = "AVX-512"
  static let sizes = [8, 6]
}
