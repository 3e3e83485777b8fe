import FileFormats
import Foundation
import Testing
import _Support
import _TestSupport

extension BinaryTests {
  /// Models as lists of layers (issue 19): the hand-out networks with their trace, lists from a file, shorthands
  /// expanded, every new layer bitwise under --deterministic on 1 and 3 ranks, and PyTorch code that loads the export.
  @Suite struct ModelListTests {
    static let dir = TemporaryDirectory("dpt-lists")

    /// Weights in safetensors (PyTorch's layout), F32.
    static func weights(_ name: String, _ tensors: [(String, [Int], [Double])]) -> String {
      var header: [(String, JSON)] = [], data: [UInt8] = []
      for (n, shape, values) in tensors {
        let bytes = values.flatMap { withUnsafeBytes(of: Float($0).bitPattern.littleEndian) { Array($0) } }
        header.append((n, .object([("dtype", JSON("F32")), ("shape", .array(shape.map { JSON($0) })),
                                   ("data_offsets", .array([JSON(data.count), JSON(data.count + bytes.count)]))])))
        data += bytes
      }
      var h = Array(JSON.object(header).serialized().utf8)
      while (8 + h.count) % 8 != 0 { h.append(0x20) }
      return dir.write(name, (0..<8).map { UInt8((UInt64(h.count) >> (8 * UInt64($0))) & 0xFF) } + h + data)
    }

    /// The course's 2-3-1 network (ReLU hidden, tanh output, loss 0.5 (y - t)^2, three steps of gradient descent on
    /// one example), against the same three steps written out by hand here.
    @Test func theHandOutNetworkAndItsTrace() throws {
      let (x, t, lr) = ([1.0, 2.0], 0.5, 0.1)
      var W1 = [[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]], b1 = [0.1, 0.1, 0.1], W2 = [0.7, -0.8, 0.9], b2 = 0.05
      let data = Self.dir.write("hand.csv", "x1,x2,t\n1,2,0.5\n")
      let initial = Self.weights("hand.safetensors", [("0.weight", [3, 2], W1.flatMap { $0 }), ("0.bias", [3], b1),
                                                   ("2.weight", [1, 3], W2), ("2.bias", [1], [b2])])
      let trace = Self.dir.file("hand-trace.jsonl"), ck = Self.dir.file("hand-ck")
      let r = DPTBinary.run(["train", "--dataset", "csv:" + data, "--target", "value", "--model", "dense(3), relu, dense(1), tanh",
                             "--loss", "half-mse", "--init", initial, "--no-standardize", "--test-fraction", "0", "--lr", "\(lr)",
                             "--momentum", "0", "--weight-decay", "0", "--batch-size", "1", "--epochs", "3",
                             "--trace", trace, "--trace-steps", "3", "--checkpoint-dir", ck])
      #expect(r.status == 0, "\(r.stderr)")
      #expect(r.stdout.contains("warning: \(data): the target column 't' holds one value (0.5000) in its one row"), "\(r.stdout)")
      #expect(r.stdout.contains("features as given") && r.stdout.contains("dense(3), relu, dense(1), tanh (13 parameters), half-mse"))
      let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map { try JSON.parse(String($0)) }
      #expect(lines.count == 3 * 5, "4 layers and the loss, 3 steps")
      func values(_ j: JSON?) -> [Double] { j?.array.map { $0.flatMap { $0.array?.compactMap(\.double) ?? [$0.double!] } } ?? [] }
      for step in 1...3 {
        // Forward and backward by hand.
        let z1 = (0..<3).map { W1[$0][0] * x[0] + W1[$0][1] * x[1] + b1[$0] }
        let h = z1.map { max($0, 0) }
        let z2 = zip(W2, h).map(*).reduce(0, +) + b2
        let y = tanh(z2), loss = 0.5 * (y - t) * (y - t)
        let d2 = (y - t) * (1 - y * y)
        let d1 = (0..<3).map { z1[$0] > 0 ? W2[$0] * d2 : 0 }
        let layer = { (i: Int) in lines[(step - 1) * 5 + i] }
        func close(_ a: [Double], _ b: [Double], _ what: String) {
          #expect(a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-6 }, "step \(step) \(what): \(a) vs \(b)")
        }
        close(values(layer(0)["output"]), z1, "z1")
        close(values(layer(1)["output"]), h, "h")
        close(values(layer(2)["output"]), [z2], "z2")
        close(values(layer(3)["output"]), [y], "y")
        close(values(layer(3)["grad_output"]), [y - t], "dL/dy")
        close(values(layer(2)["grad_output"]), [d2], "delta2")
        close(values(layer(0)["grad_output"]), d1, "delta1")
        close(values(layer(2)["grad_weight"]), h.map { $0 * d2 }, "dW2")
        close(values(layer(0)["grad_weight"]), d1.flatMap { d in x.map { d * $0 } }, "dW1")
        close(values(layer(0)["weight"]), W1.flatMap { $0 }, "W1 before the update")
        #expect(abs((layer(4)["loss"]?.double ?? 0) - loss) < 1e-7 && layer(4)["learning_rate"]?.double == lr)
        #expect(layer(0)["name"]?.string == "dense(3)" && layer(3)["name"]?.string == "tanh")
        // The step.
        for j in 0..<3 {
          for i in 0..<2 { W1[j][i] -= lr * d1[j] * x[i] }
          b1[j] -= lr * d1[j]
          W2[j] -= lr * d2 * h[j]
        }
        b2 -= lr * d2
      }
      // The trained weights are those of the three hand steps.
      let out = Self.dir.file("hand-final.safetensors")
      #expect(DPTBinary.run(["export", "--checkpoint", ck, "--output", out]).status == 0)
      let file = try SafeTensorsFile(decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: out))), path: out)
      let w1 = try file.values("0.weight", path: out), w2 = try file.values("2.weight", path: out)
      #expect(zip(w1, W1.flatMap { $0 }).allSatisfy { abs($0 - $1) < 1e-6 } && zip(w2, W2).allSatisfy { abs($0 - $1) < 1e-6 })
      // dpt trace prints the hand-outs' tables.
      let printed = DPTBinary.run(["trace", trace])
      #expect(printed.status == 0 && printed.stdout.contains("delta = dL/dz") && printed.stdout.contains("step 3: loss"), "\(printed.stdout)")
    }

    /// The 3-2-1 network with sigmoid hidden and output units and an L2 loss, from a --model-file.
    @Test func aModelFromAFile() throws {
      let file = Self.dir.write("321.model", "# the hand-out's 3-2-1 network\ndense(2)   # hidden\nsigmoid\n\ndense(1)\nsigmoid  # output\n")
      var rows = "a,b,c,y\n"
      for i in 0..<20 { rows += "\(Double(i % 5) / 5),\(Double(i % 3) / 3),\(Double(i % 7) / 7),\(i % 2 == 0 ? 0.2 : 0.8)\n" }
      let data = Self.dir.write("321.csv", rows)
      let r = DPTBinary.run(["train", "--dataset", "csv:" + data, "--target", "value", "--model-file", file, "--loss", "mse", "--epochs", "2", "--json"])
      #expect(r.status == 0, "\(r.stderr)")
      #expect(r.stderr.contains("dense(2), sigmoid, dense(1), sigmoid (11 parameters)"), "\(r.stderr)")
      let bad = Self.dir.write("bad.model", "dense(2)\nconv2d(6)\n")
      let e = DPTBinary.run(["train", "--dataset", "csv:" + data, "--model-file", bad])
      #expect(e.status == 64 && e.stderr.contains("--model-file \(bad): line 2, item 2 'conv2d(6)': conv2d needs channels and a kernel size, e.g. conv2d(6, 5)"), "\(e.stderr)")
    }

    /// Shorthands expand to lists (in the header and config.json); --hidden and its kin belong to the shorthands.
    @Test func shorthandsExpandToLists() throws {
      let logs = Self.dir.file("expanded")
      let r = DPTBinary.run(["train", "--dataset", "mnist", "--hidden", "32,16", "--activation", "tanh", "--epochs", "1", "--log-dir", logs])
      #expect(r.status == 0, "\(r.stderr)")
      #expect(r.stdout.contains("flatten, dense(32), tanh, dense(16), tanh, dense(10) ("), "\(r.stdout)")
      let config = try JSON.parse(try String(contentsOfFile: logs + "/config.json", encoding: .utf8))
      #expect(config["model"]?.string == "flatten, dense(32), tanh, dense(16), tanh, dense(10)" && config["model_shorthand"]?.string == "mlp")
      let cnn = DPTBinary.run(["train", "--dataset", "mnist", "--model", "cnn:4", "--hidden", "8", "--epochs", "1"])
      #expect(cnn.stdout.contains("conv2d(4, 5, padding=2), relu, maxpool2d(2), flatten, dense(8), relu, dense(10) ("), "\(cnn.stdout)")
      let mixed = DPTBinary.run(["train", "--dataset", "mnist", "--model", "flatten, dense(10)", "--hidden", "32"])
      #expect(mixed.status == 64 && mixed.stderr.contains("--hidden applies to the shorthands"), "\(mixed.stderr)")
      let wrong = DPTBinary.run(["train", "--dataset", "mnist", "--model", "flatten, dense(10), relu, dense(4)"])
      #expect(wrong.status == 64 && wrong.stderr.contains("the data have 10 outputs (classes or targets): make item 4 'dense(4)' dense(10)"), "\(wrong.stderr)")
    }

    /// Every new layer under --deterministic: bitwise the same parameters and buffers on 1 and 3 ranks; eval and
    /// predict of its checkpoint agree with training's metrics.
    @Test(arguments: ["conv2d(4, 3, padding=1), batchnorm, relu, avgpool2d(2), flatten, dropout(0.3), dense(16), batchnorm(momentum=0.2), leaky-relu(0.1), dense(10)",
                      "flatten, dense(24), sigmoid, dropout(0.5), dense(12), prelu, dense(10), softmax"])
    func newLayersAreBitwiseOnOneAndThreeRanks(list: String) throws {
      let loss = list.hasSuffix("softmax") ? ["--loss", "nll"] : []
      var payloads: [[[UInt8]]] = []
      var metrics: [[String: Any]] = []
      for ranks in [1, 3] {
        let ck = Self.dir.file("det-\(ranks)-\(list.count)")
        let r = DPTBinary.mpirun(ranks, ["train", "--dataset", "mnist", "--model", list, "--epochs", "2", "--deterministic",
                                         "--checkpoint-dir", ck, "--json"] + loss)
        #expect(r.status == 0, "\(r.stderr)")
        guard r.status == 0 else { return }
        payloads.append(try Checkpoint(decoding: try Checkpoint.readBytes(ck), path: ck).sections.map(\.bytes))
        metrics.append(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any])
        let e = DPTBinary.mpirun(ranks, ["eval", "--checkpoint", ck, "--json"])
        let o = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as! [String: Any]
        #expect(abs((o["test_acc"] as! Double) - (metrics.last!["test_acc"] as! Double)) < 1e-9, "eval: \(o)")
      }
      #expect(payloads.count == 2 && payloads[0] == payloads[1], "parameters, buffers and optimizer state bitwise on 1 and 3 ranks")
      #expect(metrics.count == 2 && (metrics[0]["test_loss"] as? Double) == (metrics[1]["test_loss"] as? Double))
    }

    /// `dpt export --pytorch` writes a torch.nn.Sequential that loads the export strictly and computes what dpt
    /// predicts, BatchNorm's running statistics included.
    @Test func exportedPyTorchCodeComputesWhatDptPredicts() throws {
      let images = try Self.dir.writeImageFolder("px")
      let ck = Self.dir.file("px-ck"), weights = Self.dir.file("px.safetensors"), code = Self.dir.file("pxmodel.py"), csv = Self.dir.file("px.csv")
      let list = "conv2d(4, 3, padding=1), batchnorm, relu, avgpool2d(2), flatten, dropout(0.1), dense(8), batchnorm, prelu, dense(3)"
      #expect(DPTBinary.run(["train", "--dataset", "idx:" + images, "--model", list, "--epochs", "3", "--checkpoint-dir", ck]).status == 0)
      let e = DPTBinary.run(["export", "--checkpoint", ck, "--output", weights, "--pytorch", code])
      #expect(e.status == 0, "\(e.stderr)")
      #expect(DPTBinary.run(["predict", "--checkpoint", ck, "--output", csv]).status == 0)
      let script = """
        import sys, importlib.util, numpy as np, torch
        spec = importlib.util.spec_from_file_location("pxmodel", sys.argv[1]); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        net = m.load(sys.argv[2])
        raw = open(sys.argv[3], "rb").read()[16:]
        x = torch.tensor(np.frombuffer(raw, np.uint8).reshape(30, 1, 8, 8).astype(np.float32))  # raw bytes: load() divides by 255
        p = torch.softmax(net(x), 1).detach().numpy()
        q = np.loadtxt(sys.argv[4], delimiter=",", skiprows=1)[:, 3:]
        print(float(np.abs(p - q).max()))
        """
      let py = Subprocess.run(["python3", "-c", script, code, weights, images + "/t10k-images-idx3-ubyte", csv])
      #expect(py.status == 0, "\(py.stderr)")
      #expect((Double(py.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1) < 1e-5, "largest difference \(py.stdout)")
    }
  }
}
