import FileFormats
import Foundation
import Testing
import _Support
import _TestSupport

extension BinaryTests {
  /// Residual networks and character GPTs through `dpt` (issue 29): a GPT bitwise on 1, 2 and 3 ranks with
  /// --deterministic, `dpt generate`, `predict` at every position, PyTorch code that computes what dpt predicts for a
  /// GPT and a ResNet, and bad lists as one-line usage errors.
  @Suite struct OpenModelTests {
    static let dir = TemporaryDirectory("dpt-open")
    /// About 12,000 characters of Debian's GPL-3 text.
    static var text: String {
      let gpl = (try? String(contentsOfFile: "/usr/share/common-licenses/GPL-3", encoding: .utf8)) ?? ""
      return dir.write("gpl.txt", String(gpl.prefix(12_000)))
    }

    @Test func aGPTIsBitwiseOnOneTwoAndThreeRanksAndGenerates() throws {
      let text = Self.text
      var payloads: [[[UInt8]]] = []
      var losses: [Double] = []
      for ranks in [1, 2, 3] {
        let ck = Self.dir.file("gpt-\(ranks)")
        let r = DPTBinary.mpirun(ranks, ["train", "--dataset", "text:" + text, "--context", "16", "--model", "gpt:1,16,2", "--optimizer", "adamw",
                                         "--lr", "0.003", "--clip-grad-norm", "1", "--batch-size", "16", "--epochs", "2", "--deterministic",
                                         "--checkpoint-dir", ck, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        guard r.status == 0 else { return }
        payloads.append(try Checkpoint(decoding: try Checkpoint.readBytes(ck), path: ck).sections.map(\.bytes))
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        losses.append(o["test_loss"] as? Double ?? .nan)
      }
      #expect(payloads.count == 3 && payloads[0] == payloads[1] && payloads[0] == payloads[2], "bitwise on 1, 2 and 3 ranks")
      #expect(losses.count == 3 && losses[0] == losses[1] && losses[0] == losses[2] && losses[0] < 3.5, "\(losses)")
      // The header shows the shorthand expanded.
      let header = DPTBinary.run(["train", "--dataset", "text:" + text, "--context", "16", "--model", "gpt:1,16,2", "--epochs", "1"])
      #expect(header.stdout.contains("embedding(16), position-embedding, residual(layernorm, attention(2, causal=true)), residual(layernorm, dense(64), gelu, dense(16)), layernorm, dense("),
              "\(header.stdout)")

      let ck = Self.dir.file("gpt-1")
      let greedy = DPTBinary.run(["generate", "--checkpoint", ck, "--prompt", "the Program", "--tokens", "40", "--temperature", "0"])
      #expect(greedy.status == 0 && greedy.stdout.hasPrefix("the Program") && greedy.stdout.count == "the Program".count + 40 + 1, "\(greedy)")
      let a = DPTBinary.run(["generate", "--checkpoint", ck, "--prompt", "You ", "--tokens", "60", "--top-k", "5", "--seed", "4"])
      let b = DPTBinary.run(["generate", "--checkpoint", ck, "--prompt", "You ", "--tokens", "60", "--top-k", "5", "--seed", "4"])
      let c = DPTBinary.run(["generate", "--checkpoint", ck, "--prompt", "You ", "--tokens", "60", "--top-k", "5", "--seed", "5"])
      #expect(a.status == 0 && a.stdout == b.stdout && a.stdout != c.stdout, "the seed decides the draws")
      let bad = DPTBinary.run(["generate", "--checkpoint", ck, "--prompt", "caf\u{E9}", "--tokens", "3"])
      #expect(bad.status == 1 && bad.stderr.contains("--prompt: the character '\u{E9}' (U+00E9) is not in the model's vocabulary"), "\(bad.stderr)")
      let notText = Self.dir.file("corn-ck")
      #expect(DPTBinary.run(["train", "--dataset", "corn", "--epochs", "2", "--checkpoint-dir", notText]).status == 0)
      let wrong = DPTBinary.run(["generate", "--checkpoint", notText, "--prompt", "a", "--tokens", "3"])
      #expect(wrong.status == 1 && wrong.stderr.contains("is not a character model"), "\(wrong.stderr)")
    }

    /// A GPT run stopped after epoch 2 and resumed to epoch 3 ends bitwise where the uninterrupted run does; its
    /// trace writes every layer; a sweep of learning rates trains it on two groups of one rank.
    @Test func aGPTResumesTracesAndSweeps() throws {
      let text = Self.text
      let run = ["train", "--dataset", "text:" + text, "--context", "16", "--model", "gpt:1,16,2", "--optimizer", "adamw", "--clip-grad-norm", "1",
                 "--batch-size", "16"]
      let whole = Self.dir.file("gpt-whole"), part = Self.dir.file("gpt-part")
      #expect(DPTBinary.mpirun(2, run + ["--epochs", "3", "--checkpoint-dir", whole]).status == 0)
      #expect(DPTBinary.mpirun(2, run + ["--epochs", "2", "--checkpoint-dir", part]).status == 0)
      let resumed = DPTBinary.mpirun(2, run + ["--epochs", "3", "--checkpoint-dir", part, "--resume", part])
      #expect(resumed.status == 0, "\(resumed.stderr)")
      let a = try Checkpoint(decoding: try Checkpoint.readBytes(whole), path: whole), b = try Checkpoint(decoding: try Checkpoint.readBytes(part), path: part)
      #expect(a.epoch == 3 && b.epoch == 3 && a.sections.map(\.bytes) == b.sections.map(\.bytes), "resumed bitwise")

      let trace = Self.dir.file("gpt-trace.jsonl")
      let t = DPTBinary.mpirun(2, run + ["--epochs", "1", "--trace", trace, "--trace-steps", "1", "--trace-limit", "4"])
      #expect(t.status == 0, "\(t.stderr)")
      let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map { try JSON.parse(String($0)) }
      #expect(lines.count == 6 + 1, "6 layers and the loss: \(lines.count)")
      #expect(lines[2]["name"]?.string == "residual(layernorm, attention(2, causal=true))" && lines[0]["weight"] != nil, "\(lines[2])")
      let shown = DPTBinary.run(["trace", trace])
      #expect(shown.status == 0 && shown.stdout.contains("embedding(16)"), "\(shown.stderr)")

      let logs = Self.dir.file("gpt-sweep")
      let sweep = DPTBinary.mpirun(2, ["sweep", "--dataset", "text:" + text, "--context", "16", "--model", "gpt:1,16,2", "--optimizer", "adamw",
                                       "--lr", "1e-3,3e-3", "--epochs", "1", "--log-dir", logs])
      #expect(sweep.status == 0, "\(sweep.stderr)")
      let summary = try JSON.parse(try String(contentsOfFile: logs + "/summary.json", encoding: .utf8))
      #expect(summary["settings"]?.array?.count == 2, "\(summary)")
    }

    /// `dpt export --pytorch` of a GPT (Embedding, PositionEmbedding, Residual, SelfAttention with
    /// F.scaled_dot_product_attention) and of a ResNet (residual blocks with a projection shortcut): load() computes
    /// the probabilities `dpt predict` writes, at every position of a text's windows.
    @Test func exportedGPTAndResNetComputeWhatDptPredicts() throws {
      let text = Self.text
      let gpt = Self.dir.file("x-gpt")
      #expect(DPTBinary.run(["train", "--dataset", "text:" + text, "--context", "16", "--model", "gpt:2,16,4", "--optimizer", "adam",
                             "--epochs", "1", "--checkpoint-dir", gpt]).status == 0)
      let (weights, code, csv) = (Self.dir.file("gpt.safetensors"), Self.dir.file("gptmodel.py"), Self.dir.file("gpt.csv"))
      let e = DPTBinary.run(["export", "--checkpoint", gpt, "--output", weights, "--pytorch", code])
      #expect(e.status == 0, "\(e.stderr)")
      let p = DPTBinary.run(["predict", "--checkpoint", gpt, "--output", csv])
      #expect(p.status == 0, "\(p.stderr)")
      let script = """
        import sys, json, importlib.util, numpy as np, torch
        spec = importlib.util.spec_from_file_location("m", sys.argv[1]); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        net = m.load(sys.argv[2])
        text = open(sys.argv[3], encoding="utf-8").read(); T = 16
        chars = sorted(set(text)); ids = [chars.index(c) for c in text]; n = (len(ids) - 1) // T
        test = n - round(n * 0.1)
        x = torch.tensor([ids[i * T:(i + 1) * T] for i in range(test, n)], dtype=torch.float32)
        p = torch.softmax(net(x), -1).detach().numpy().reshape(-1, len(chars))
        q = np.loadtxt(sys.argv[4], delimiter=",", skiprows=1)[:, 4:]
        print(float(np.abs(p - q).max()), p.shape[0], q.shape[0])
        """
      let py = Subprocess.run(["python3", "-c", script, code, weights, text, csv])
      #expect(py.status == 0, "\(py.stderr)")
      let parts = py.stdout.split(separator: " ").map { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .nan }
      #expect(parts.count == 3 && parts[0] < 1e-5 && parts[1] == parts[2] && parts[1] > 0, "\(py.stdout)")
      let source = try String(contentsOfFile: code, encoding: .utf8)
      #expect(source.contains("scaled_dot_product_attention") && source.contains("class Residual") && source.contains("class PositionEmbedding"))

      // A ResNet on images: residual blocks, a projection shortcut with its BatchNorm (running statistics in eval).
      let images = try Self.dir.writeImageFolder("rx")
      let list = "conv2d(4, 3, padding=1, bias=false), batchnorm, relu, residual(conv2d(4, 3, padding=1), batchnorm, relu, conv2d(4, 3, padding=1)), relu, "
        + "residual(conv2d(8, 3, stride=2, padding=1, bias=false), batchnorm, relu, conv2d(8, 3, padding=1), shortcut=[conv2d(8, 1, stride=2, bias=false), batchnorm]), "
        + "relu, avgpool2d(4), flatten, dense(3)"
      let rck = Self.dir.file("rx-ck"), (rw, rc, rcsv) = (Self.dir.file("rx.safetensors"), Self.dir.file("rxmodel.py"), Self.dir.file("rx.csv"))
      #expect(DPTBinary.mpirun(2, ["train", "--dataset", "idx:" + images, "--model", list, "--epochs", "3", "--checkpoint-dir", rck]).status == 0)
      #expect(DPTBinary.run(["export", "--checkpoint", rck, "--output", rw, "--pytorch", rc]).status == 0)
      #expect(DPTBinary.run(["predict", "--checkpoint", rck, "--output", rcsv]).status == 0)
      let resnet = """
        import sys, importlib.util, numpy as np, torch
        spec = importlib.util.spec_from_file_location("m", sys.argv[1]); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        net = m.load(sys.argv[2])
        raw = open(sys.argv[3], "rb").read()[16:]
        x = torch.tensor(np.frombuffer(raw, np.uint8).reshape(30, 1, 8, 8).astype(np.float32))
        p = torch.softmax(net(x), 1).detach().numpy()
        q = np.loadtxt(sys.argv[4], delimiter=",", skiprows=1)[:, 3:]
        print(float(np.abs(p - q).max()))
        """
      let rpy = Subprocess.run(["python3", "-c", resnet, rc, rw, images + "/t10k-images-idx3-ubyte", rcsv])
      #expect(rpy.status == 0, "\(rpy.stderr)")
      #expect((Double(rpy.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1) < 1e-5, "largest difference \(rpy.stdout)")
    }

    /// A list that cannot be built is a one-line usage error naming its item, before any data is read where the data
    /// is not needed to tell.
    @Test(arguments: [
      ("residual(dense(4), relu", "item 1 'residual(dense(4), relu': unbalanced parentheses"),
      ("conv2d(4,3), residual(conv2d(8, 3, stride=2, padding=1), shortcut=[conv2d(8, 1)]), flatten, dense(10)",
       "its body gives 8x13x13 but its shortcut gives 8x26x26: make them give one shape"),
      ("embedding(8), flatten, dense(10)", "item 1 'embedding(8)': embedding needs token ids (a text data set: --dataset text:FILE --context T)"),
      ("dense(3, bias=maybe)", "bias=maybe: write bias=true or bias=false"),
      ("flatten, dense(12), layernorm(eps=0), dense(10)", "item 3 'layernorm(eps=0)': eps must be > 0"),
      ("flatten, dense(12), gelu(fast), dense(10)", "approximate=fast: use none or tanh"),
    ])
    func badListsAreUsageErrors(list: String, message: String) {
      let r = DPTBinary.run(["train", "--dataset", "mnist", "--model", list])
      #expect(r.status == 64 && r.stderr.contains(message) && r.stderr.split(separator: "\n").first?.contains(message) == true, "\(r.stderr)")
    }

    @Test func badTextRunsAreUsageErrors() throws {
      let text = Self.text
      let heads = DPTBinary.run(["train", "--dataset", "text:" + text, "--context", "8", "--model", "embedding(15), attention(4), dense(10)"])
      #expect(heads.status == 64 && heads.stderr.contains("4 heads do not divide the width 15"), "\(heads.stderr)")
      let context = DPTBinary.run(["train", "--dataset", "text:" + text])
      #expect(context.status == 64 && context.stderr.contains("needs --context T"), "\(context.stderr)")
      let shape = DPTBinary.run(["train", "--dataset", "text:" + text, "--context", "8", "--model", "gpt:1,15,2"])
      #expect(shape.status == 64 && shape.stderr.contains("H heads dividing D"), "\(shape.stderr)")
      // A model whose attention sees the future cannot continue a text.
      let v = Set(try String(contentsOfFile: text, encoding: .utf8).unicodeScalars).count, seeing = Self.dir.file("seeing")
      #expect(DPTBinary.run(["train", "--dataset", "text:" + text, "--context", "8", "--epochs", "1", "--checkpoint-dir", seeing,
                             "--model", "embedding(8), residual(layernorm, attention(2, causal=false)), dense(\(v))"]).status == 0)
      let future = DPTBinary.run(["generate", "--checkpoint", seeing, "--prompt", "the", "--tokens", "3"])
      #expect(future.status == 1 && future.stderr.contains("its attention is not causal (causal=false)"), "\(future.stderr)")
      let latin1 = Self.dir.write("latin1.txt", Array("caf".utf8) + [0xE9])
      let notUTF8 = DPTBinary.run(["train", "--dataset", "text:" + latin1, "--context", "2"])
      #expect(notUTF8.status != 0 && notUTF8.stderr.contains("byte 3 (0xE9) is not UTF-8"), "\(notUTF8.stderr)")
    }
  }
}
