/// This build's blocks of output channels: six 16-float vectors (twelve AVX registers of sixteen), leaving room for
/// the loads and broadcasts.
enum Blocks {
  static let isa = "AVX2"
  static let sizes = [6]
}
