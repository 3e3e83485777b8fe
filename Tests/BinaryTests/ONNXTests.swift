import Datasets
import Foundation
import Testing
import _Support
import _TestSupport

extension BinaryTests {
  /// `dpt export --onnx` (issue 32, item 3): the file onnxruntime (PyPI) runs on raw rows gives what `dpt predict`
  /// gives on the same rows, to 1e-5, for an MLP on a standardised table, a CNN with BatchNorm on an IDX folder (and
  /// a residual block with a shortcut, PReLU, average pooling, GELU, LayerNorm, a softmax layer) and a character GPT.
  @Suite struct ONNXTests {
    static let dir = TemporaryDirectory("dpt-onnx")

    /// Runs onnxruntime on `inputs` (.npy, raw rows) and returns the largest difference between its "probabilities"
    /// and predict's p0, p1, ... columns, row by row (a sequence model's positions as predict's lines).
    func largestDifference(model: String, inputs: String, predictions: String) -> Double? {
      let script = """
        import sys, numpy as np, onnx, onnxruntime as ort
        model, inputs, preds = sys.argv[1:4]
        onnx.checker.check_model(onnx.load(model), full_check=True)
        s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        probabilities = s.run(["probabilities"], {"input": np.load(inputs).astype(np.float32)})[0]
        header = open(preds).readline().strip().split(",")
        q = np.loadtxt(preds, delimiter=",", skiprows=1, ndmin=2)[:, header.index("p0"):]
        p = probabilities.reshape(-1, probabilities.shape[-1])
        assert p.shape == q.shape, (p.shape, q.shape)
        print(float(np.abs(p - q).max()))
        """
      let r = Subprocess.run(["python3", "-c", script, model, inputs, predictions])
      #expect(r.status == 0, "\(r.stderr)")
      return Double(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Trains (2 ranks), exports, predicts and compares; `extra` are the train command's model options.
    func check(_ name: String, dataset: String, model: [String], inputs: String, predictFile: Bool) {
      let ck = Self.dir.file("ck-\(name)"), onnx = Self.dir.file("\(name).onnx"), out = Self.dir.file("p-\(name).csv")
      let t = DPTBinary.mpirun(2, ["train", "--dataset", dataset, "--epochs", "1", "--checkpoint-dir", ck] + model)
      #expect(t.status == 0, "\(t.stderr)")
      let e = DPTBinary.run(["export", "--checkpoint", ck, "--onnx", onnx])
      #expect(e.status == 0 && (e.stdout + e.stderr).contains("wrote \(onnx): ONNX opset 17"), "\(e.stderr)")
      let p = DPTBinary.run(["predict", "--checkpoint", ck, "--output", out] + (predictFile ? ["--dataset", dataset] : ["--rows", "test"]))
      #expect(p.status == 0, "\(p.stderr)")
      let difference = largestDifference(model: onnx, inputs: inputs, predictions: out)
      #expect(difference.map { $0 <= 1e-5 } == true, "\(name): onnxruntime against predict: \(difference.map { "\($0)" } ?? "no number")")
    }

    /// The inputs, written by numpy: a table of three features on different scales (a class label last) with its
    /// feature rows; an IDX folder of digits (4,000 to train, 500 in t10k, whose images are the inputs); a text and
    /// its test windows as the run splits them (the last tenth of the windows of 16 characters, ids by sorted code
    /// point).
    static let inputs: (table: String, tableRows: String, digits: String, images: String, text: String, windows: String) = {
      let script = """
        import sys, os, gzip, numpy as np
        out, mnist = sys.argv[1], sys.argv[2]
        rng = np.random.default_rng(7)
        x = np.stack([rng.uniform(0, 10, 300), rng.uniform(-5, -1, 300), rng.uniform(50, 150, 300)], 1)
        y = (x[:, 0] + 0.5 * x[:, 1] + 0.01 * x[:, 2] + rng.uniform(-1, 1, 300) > 4).astype(int)
        with open(os.path.join(out, "table.csv"), "w") as f:
            f.write("a,b,c,y\\n" + "".join(f"{r[0]!r},{r[1]!r},{r[2]!r},{l}\\n" for r, l in zip(x.tolist(), y)))
        np.save(os.path.join(out, "table.npy"), x)
        a = np.loadtxt(gzip.open(mnist), delimiter=",", dtype=np.int64)[rng.permutation(5000)[:4500]]
        images, labels = a[:, :784].astype(np.uint8).reshape(-1, 28, 28), a[:, 784].astype(np.uint8)
        os.makedirs(os.path.join(out, "digits"), exist_ok=True)
        def idx(name, v):
            with open(os.path.join(out, "digits", name), "wb") as f:
                f.write(bytes([0, 0, 8, v.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in v.shape) + v.tobytes())
        idx("train-images-idx3-ubyte", images[:4000]); idx("train-labels-idx1-ubyte", labels[:4000])
        idx("t10k-images-idx3-ubyte", images[4000:]); idx("t10k-labels-idx1-ubyte", labels[4000:])
        np.save(os.path.join(out, "images.npy"), images[4000:].reshape(-1, 1, 28, 28))
        words = ["data", "parallel", "training", "gradient", "reduce", "rank", "epoch", "weight", "decay", "batch"]
        text = " ".join(words[i] for i in rng.integers(0, len(words), 3000)) + ".\\n"
        open(os.path.join(out, "text.txt"), "w").write(text)
        vocabulary = sorted(set(text)); ids = np.array([vocabulary.index(c) for c in text])
        n = (len(ids) - 1) // 16
        windows = np.stack([ids[i * 16:i * 16 + 16] for i in range(n)])
        np.save(os.path.join(out, "windows.npy"), windows[n - int(round(n * 0.1)):])
        """
      let r = Subprocess.run(["python3", "-c", script, dir.path, DataCache.mnist5kPath])
      precondition(r.status == 0, r.stderr)
      return (dir.file("table.csv"), dir.file("table.npy"), dir.file("digits"), dir.file("images.npy"), dir.file("text.txt"), dir.file("windows.npy"))
    }()

    @Test func anMLPOnAStandardisedTable() {
      check("mlp", dataset: "csv:" + Self.inputs.table, model: ["--model", "mlp", "--hidden", "16"], inputs: Self.inputs.tableRows,
            predictFile: true)
    }

    @Test func aCNNWithBatchNormAndEveryImageLayer() {
      let layers = "conv2d(4, 3, padding=1), batchnorm, prelu, residual(conv2d(8, 3, stride=2, padding=1), batchnorm, requ, shortcut=[conv2d(8, 1, stride=2), batchnorm]), maxpool2d(2), avgpool2d(1), flatten, dense(16), batchnorm, gelu, dropout(0.1), residual(dense(16), gelu(tanh)), leaky-relu(0.1), layernorm, dense(10), softmax"
      check("cnn", dataset: "idx:" + Self.inputs.digits, model: ["--model", layers, "--loss", "nll"], inputs: Self.inputs.images,
            predictFile: false)
    }

    @Test func aCharacterGPT() {
      check("gpt", dataset: "text:" + Self.inputs.text, model: ["--context", "16", "--model", "gpt:2,32,4"], inputs: Self.inputs.windows,
            predictFile: false)
    }
  }
}
