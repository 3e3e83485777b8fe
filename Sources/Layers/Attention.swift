import TensorCore

/// Multi-head self-attention over a sequence, as nanoGPT writes it: x (B, T, D) ->
///
///   [q k v] = x Wqkv + bqkv                         (B, T, 3D), split into H heads of d = D / H each
///   P_h = softmax(q_h k_h^T / sqrt(d))              (T, T) per sample and head, the future masked when causal
///   o_h = P_h v_h, o = [o_1 ... o_H]                (B, T, D)
///   y = o Wproj + bproj
///
/// Backward, per sample and head (g = dy Wproj^T, g_h its head's columns):
///
///   dv_h = P_h^T g_h, dP_h = g_h v_h^T, dS_h = P_h * (dP_h - rowsum(dP_h * P_h)) / sqrt(d),
///   dq_h = dS_h k_h, dk_h = dS_h^T q_h,
///
/// then dWqkv += x^T d[q k v], dx = d[q k v] Wqkv^T, and the projection's as a dense layer's. Every product is one
/// sgemm (per sample and head for the T x T ones, reading q, k and v in place with a row stride of 3D). The forward
/// pass keeps [q k v], P and o with its output. Parameters as PyTorch names them: qkv.weight (Linear(D, 3D), kept
/// (D, 3D) here), qkv.bias, proj.weight, proj.bias, initialised as `nn.Linear`'s.
public struct Attention<T: LayerKernels>: Layer {
  public let positions: Int
  public let width: Int
  public let heads: Int
  public let causal: Bool

  public init(positions: Int, width: Int, heads: Int, causal: Bool) {
    precondition(positions > 0 && width > 0 && heads > 0 && width % heads == 0, "Attention needs heads that divide the width")
    (self.positions, self.width, self.heads, self.causal) = (positions, width, heads, causal)
  }

  public var inputShape: [Int] { [positions, width] }
  public var outputShape: [Int] { [positions, width] }
  var headWidth: Int { width / heads }

  public var parameters: [ParameterSpec] {
    let D = width
    return [ParameterSpec(name: "qkv.weight", shape: [D, 3 * D], transposed: true),
            ParameterSpec(name: "qkv.bias", shape: [3 * D], isBias: true),
            ParameterSpec(name: "proj.weight", shape: [D, D], transposed: true),
            ParameterSpec(name: "proj.bias", shape: [D], isBias: true)]
  }

  public func initialize(_ p: UnsafeMutableBufferPointer<T>, using rng: inout RandomSource) {
    let bound = 1 / Double(width).squareRoot()  // both Linear layers take D inputs
    for i in p.indices { p[i] = T(rng.uniform(-bound, bound)) }
  }

  /// Where the pieces of the layer's slice start: Wqkv at 0, then bqkv, Wproj, bproj.
  var offsets: (bqkv: Int, wproj: Int, bproj: Int) {
    let D = width
    return (3 * D * D, 3 * D * D + 3 * D, 4 * D * D + 3 * D)
  }

  public func forward(_ x: Tensor<T>, parameters p: UnsafeBufferPointer<T>) -> Tensor<T> {
    let B = x.batch, L = positions, D = width, H = heads, d = headWidth, N = B * L
    let at = offsets, W = Tensor.base(p)
    let w = (wqkv: W, bqkv: W + at.bqkv, wproj: W + at.wproj, bproj: W + at.bproj)
    let scale = T(1 / Double(d).squareRoot())
    // qkv = x Wqkv + bqkv: (N, D) (D, 3D)
    let qkv = Tensor<T>(shape: [B, L, 3 * D]) { qkv in
      let q = Tensor.base(qkv)
      T.broadcastRows(w.bqkv, rows: N, cols: 3 * D, into: q)
      x.withUnsafeBufferPointer { x in
        T.gemm(transposeA: false, transposeB: false, m: N, n: 3 * D, k: D, alpha: 1, a: Tensor.base(x), lda: D, b: w.wqkv,
               ldb: 3 * D, beta: 1, c: q, ldc: 3 * D)
      }
    }
    // Every entry of P and o is written by a product below (beta 0): no zeroing first.
    var P = Tensor<T>(shape: [B, H, L, L], unsafeUninitialized: { _ in })
    var o = Tensor<T>(shape: [B, L, D], unsafeUninitialized: { _ in })
    qkv.withUnsafeBufferPointer { qkvb in
      P.withUnsafeMutableBufferPointer { Pb in
        o.withUnsafeMutableBufferPointer { ob in
          for b in 0..<B {
            for h in 0..<H {
              let q = Tensor.base(qkvb) + b * L * 3 * D + h * d, k = q + D, v = q + 2 * D
              let s = Tensor.base(Pb) + (b * H + h) * L * L
              // S = q k^T / sqrt(d): (L, d) (d, L)
              T.gemm(transposeA: false, transposeB: true, m: L, n: L, k: d, alpha: scale, a: q, lda: 3 * D, b: k, ldb: 3 * D,
                     beta: 0, c: s, ldc: L)
              AttentionLoops.softmax(s, rows: L, causal: causal)
              // o_h = P v: (L, L) (L, d), into o's columns of head h
              T.gemm(transposeA: false, transposeB: false, m: L, n: d, k: L, alpha: 1, a: s, lda: L, b: v, ldb: 3 * D,
                     beta: 0, c: Tensor.base(ob) + b * L * D + h * d, ldc: D)
            }
          }
        }
      }
    }
    // y = o Wproj + bproj: (N, D) (D, D)
    var y = Tensor<T>(shape: [B, L, D]) { y in
      let yp = Tensor.base(y)
      T.broadcastRows(w.bproj, rows: N, cols: D, into: yp)
      o.withUnsafeBufferPointer { o in
        T.gemm(transposeA: false, transposeB: false, m: N, n: D, k: D, alpha: 1, a: Tensor.base(o), lda: D, b: w.wproj, ldb: D,
               beta: 1, c: yp, ldc: D)
      }
    }
    y.saved = [qkv, P, o]
    return y
  }

  public func backward(_ dy: Tensor<T>, input x: Tensor<T>, output y: Tensor<T>, parameters p: UnsafeBufferPointer<T>,
                       gradients dp: UnsafeMutableBufferPointer<T>, needsInputGradient: Bool) -> Tensor<T>? {
    let saved = y.saved.count == 3 ? y.saved : forward(x, parameters: p).saved
    let (qkv, P, o) = (saved[0], saved[1], saved[2])
    let B = x.batch, L = positions, D = width, H = heads, d = headWidth, N = B * L
    let at = offsets, W = Tensor.base(p), G = Tensor.base(dp)
    let w = (wqkv: W, wproj: W + at.wproj)
    let (dWqkv, dbqkv, dWproj, dbproj) = (G, G + at.bqkv, G + at.wproj, G + at.bproj)
    let scale = T(1 / Double(d).squareRoot())
    var dqkv = Tensor<T>(shape: [B, L, 3 * D], unsafeUninitialized: { _ in })  // every entry written below (beta 0)
    Tensor.withBases(dy, o) { dy, o in
      T.addColumnSums(dy, rows: N, cols: D, into: dbproj)  // dbproj += 1^T dy
      // dWproj += o^T dy: (D, N) (N, D)
      T.gemm(transposeA: true, transposeB: false, m: D, n: D, k: N, alpha: 1, a: o, lda: D, b: dy, ldb: D, beta: 1, c: dWproj, ldc: D)
    }
    // go = dy Wproj^T: (N, D) (D, D)
    let go = Tensor<T>(shape: [B, L, D]) { go in
      dy.withUnsafeBufferPointer { dy in
        T.gemm(transposeA: false, transposeB: true, m: N, n: D, k: D, alpha: 1, a: Tensor.base(dy), lda: D, b: w.wproj, ldb: D,
               beta: 0, c: Tensor.base(go), ldc: D)
      }
    }
    var dP = [T].zeros(L * L)
    Tensor.withBases(qkv, P, go) { qkv, P, go in
      dqkv.withUnsafeMutableBufferPointer { dqkvb in
        dP.withUnsafeMutableBufferPointer { dPb in
          let ds = Tensor.base(dPb)
          for b in 0..<B {
            for h in 0..<H {
              let q = qkv + b * L * 3 * D + h * d, k = q + D, v = q + 2 * D
              let dq = Tensor.base(dqkvb) + b * L * 3 * D + h * d, dk = dq + D, dv = dq + 2 * D
              let s = P + (b * H + h) * L * L, gh = go + b * L * D + h * d
              // dv = P^T g_h: (L, L)^T (L, d)
              T.gemm(transposeA: true, transposeB: false, m: L, n: d, k: L, alpha: 1, a: s, lda: L, b: gh, ldb: D, beta: 0, c: dv, ldc: 3 * D)
              // dP = g_h v^T: (L, d) (d, L)
              T.gemm(transposeA: false, transposeB: true, m: L, n: L, k: d, alpha: 1, a: gh, lda: D, b: v, ldb: 3 * D, beta: 0, c: ds, ldc: L)
              AttentionLoops.softmaxBackward(s, ds, rows: L, causal: causal)  // dS, in place of dP
              // dq = dS k / sqrt(d): (L, L) (L, d); dk = dS^T q / sqrt(d)
              T.gemm(transposeA: false, transposeB: false, m: L, n: d, k: L, alpha: scale, a: ds, lda: L, b: k, ldb: 3 * D, beta: 0, c: dq, ldc: 3 * D)
              T.gemm(transposeA: true, transposeB: false, m: L, n: d, k: L, alpha: scale, a: ds, lda: L, b: q, ldb: 3 * D, beta: 0, c: dk, ldc: 3 * D)
            }
          }
        }
      }
    }
    Tensor.withBases(x, dqkv) { x, dqkv in
      T.addColumnSums(dqkv, rows: N, cols: 3 * D, into: dbqkv)
      // dWqkv += x^T dqkv: (D, N) (N, 3D)
      T.gemm(transposeA: true, transposeB: false, m: D, n: 3 * D, k: N, alpha: 1, a: x, lda: D, b: dqkv, ldb: 3 * D, beta: 1, c: dWqkv, ldc: 3 * D)
    }
    guard needsInputGradient else { return nil }
    // dx = dqkv Wqkv^T: (N, 3D) (3D, D)
    return Tensor(shape: x.shape) { dx in
      dqkv.withUnsafeBufferPointer { dqkv in
        T.gemm(transposeA: false, transposeB: true, m: N, n: D, k: 3 * D, alpha: 1, a: Tensor.base(dqkv), lda: 3 * D, b: w.wqkv,
               ldb: 3 * D, beta: 0, c: Tensor.base(dx), ldc: D)
      }
    }
  }

  public var summary: String { "attention(\(width), heads=\(heads)\(causal ? ", causal" : ""))" }

  public var pytorch: PyTorchModule? {
    PyTorchModule("SelfAttention(\(width), \(heads), causal=\(causal ? "True" : "False"))", classes: ["SelfAttention": """
      class SelfAttention(nn.Module):
          \"\"\"Multi-head self-attention as nanoGPT writes it (dpt's attention): qkv = Linear(D, 3D), heads of D/H,
          softmax(q k^T / sqrt(D/H)) v, the future masked when causal, proj = Linear(D, D).\"\"\"
          def __init__(self, d, h, causal):
              super().__init__()
              self.qkv, self.proj, self.h, self.causal = nn.Linear(d, 3 * d), nn.Linear(d, d), h, causal

          def forward(self, x):
              B, T, D = x.shape
              q, k, v = self.qkv(x).split(D, dim=2)
              q, k, v = (t.view(B, T, self.h, D // self.h).transpose(1, 2) for t in (q, k, v))
              y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
              return self.proj(y.transpose(1, 2).contiguous().view(B, T, D))
      """])
  }

  /// The forward pass as ONNX operators: qkv = x Wqkv + b, split into q, k, v, each (B, T, H, d) then heads first;
  /// softmax(q k^T / sqrt(d) + mask) v, the mask -inf above the diagonal when causal; heads back together, then the
  /// projection.
  public func onnx(_ graph: inout ONNXGraph, input x: String, parameters p: UnsafeBufferPointer<T>, buffers b: UnsafeBufferPointer<T>,
                   name: String) -> String? {
    let L = positions, D = width, H = heads, d = headWidth, at = offsets
    let qkv = graph.dense(x, p, inputs: D, outputs: 3 * D, weightsAt: 0, biasAt: at.bqkv, name: name + ".qkv")
    let parts = graph.node("Split", [qkv, graph.integers(name + ".sizes", [D, D, D])], outputs: 3, [.int("axis", 2)], name: name + ".split")
    let heads = graph.integers(name + ".heads_shape", [0, 0, H, d])
    func split(_ t: String, _ perm: [Int], _ what: String) -> String {
      let r = graph.node("Reshape", [t, heads], name: name + "." + what + "_heads")
      return graph.node("Transpose", [r], [.ints("perm", perm)], name: name + "." + what)
    }
    let q = split(parts[0], [0, 2, 1, 3], "q"), kT = split(parts[1], [0, 2, 3, 1], "k_t"), v = split(parts[2], [0, 2, 1, 3], "v")
    var s = graph.scaled(graph.node("MatMul", [q, kT], name: name + ".qk"), by: Float(1 / Double(d).squareRoot()), name: name + ".scores")
    if causal {
      let mask = (0..<L * L).map { $0 % L > $0 / L ? -Float.infinity : 0 }
      s = graph.node("Add", [s, graph.constant(name + ".mask", shape: [L, L], mask)], name: name + ".masked")
    }
    let P = graph.node("Softmax", [s], [.int("axis", -1)], name: name + ".attention")
    let o = graph.node("Transpose", [graph.node("MatMul", [P, v], name: name + ".pv")], [.ints("perm", [0, 2, 1, 3])], name: name + ".heads_last")
    let joined = graph.node("Reshape", [o, graph.integers(name + ".joined_shape", [0, 0, D])], name: name + ".joined")
    return graph.dense(joined, p, inputs: D, outputs: D, weightsAt: at.wproj, biasAt: at.bproj, name: name + ".proj")
  }
}

/// Attention's row loops, specialised for Float and Double where they are defined.
enum AttentionLoops {
  /// Each row of the (rows, rows) scores s becomes its softmax, in place; when causal, row i over columns 0...i only,
  /// the others 0.
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  static func softmax<T: Scalar>(_ s: UnsafeMutablePointer<T>, rows L: Int, causal: Bool) {
    for i in 0..<L {
      let row = s + i * L, n = causal ? i + 1 : L
      let m = RowReduction.max(row, n)
      var sum: T = 0
      if T.self == Float.self {
        // Float's exponentials through the vector kernels (no call a value).
        let f = UnsafeMutableRawPointer(row).assumingMemoryBound(to: Float.self)
        sum = T(Float.expShifted(f, count: n, minus: Float(m)))
      } else {
        for j in 0..<n { let e = T.exp(row[j] - m); row[j] = e; sum += e }
      }
      let inv = 1 / sum
      for j in 0..<n { row[j] *= inv }
      for j in n..<L { row[j] = 0 }
    }
  }

  /// dS = P * (dP - rowsum(dP * P)) row by row, in place of dP (masked entries, where P is 0, become 0).
  @_specialize(where T == Float)
  @_specialize(where T == Double)
  static func softmaxBackward<T: Scalar>(_ P: UnsafePointer<T>, _ dP: UnsafeMutablePointer<T>, rows L: Int, causal: Bool) {
    for i in 0..<L {
      let p = P + i * L, g = dP + i * L, n = causal ? i + 1 : L
      let dot = RowReduction.sum(n) { p[$0] * g[$0] }
      for j in 0..<n { g[j] = p[j] * (g[j] - dot) }
      for j in n..<L { g[j] = 0 }
    }
  }
}

/// `attention(H, causal=true)`: multi-head self-attention over a sequence (B, T, D), H heads of D/H.
public struct AttentionItem: LayerDefinition {
  public static let names = ["attention", "self-attention"]
  public static let usage = "attention(H, causal=true)"
  public var heads: Int
  public var causal: Bool

  public init(heads: Int, causal: Bool = true) {
    self.heads = heads
    self.causal = causal
  }

  public init(_ a: LayerArguments) throws {
    let b = try a.bind(["heads", "causal"], required: 1, example: "attention(4, causal=true)")
    try self.init(heads: b.count("heads", "the number of heads"), causal: b.flag("causal", true))
  }

  /// Always says whether it is causal: the two compute different things, and the default should be seen.
  public var text: String { "attention(\(heads), causal=\(causal))" }

  public func layer<T: LayerKernels>(for input: LayerInput, as: T.Type) throws -> any Layer<T> {
    guard input.shape.count == 2 else {
      throw LayerProblem("attention needs a sequence of vectors (batch, positions, width): add embedding(D) before it; its input is \(input.described)")
    }
    let D = input.shape[1]
    guard D % heads == 0 else {
      throw LayerProblem("\(heads) heads do not divide the width \(D): choose a number of heads that divides it")
    }
    return Attention<T>(positions: input.shape[0], width: D, heads: heads, causal: causal)
  }
}
