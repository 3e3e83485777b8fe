import FileFormats
import Foundation
import Testing
import _Support
import _TestSupport

extension BinaryTests {
  /// Every number right, every file safe (issue 28): predictions that do not depend on their neighbours, the weights
  /// a command uses said and chosen, runs that end honestly, and single-file outputs that never replace what they
  /// should not. Each test names its items.
  @Suite struct ExactnessTests {
    static let dir = TemporaryDirectory("dpt-exact")

    /// A CSV of 300 rows (three features on different scales, a class label), cut into files: 200 to train on, then
    /// the next 100, their first 50 alone, the 50 without labels and with the columns in another order, and one row.
    static let files: (train: String, hundred: String, fifty: String, unlabelled: String, one: String) = {
      var rng = SystemRandomNumberGenerator()
      var rows: [[Double]] = []
      for _ in 0..<300 {
        let a = Double.random(in: 0...10, using: &rng), b = Double.random(in: -5 ... -1, using: &rng), c = Double.random(in: 50...150, using: &rng)
        rows.append([a, b, c, a + 0.5 * b + 0.01 * c + Double.random(in: -1...1, using: &rng) > 4 ? 1 : 0])
      }
      func csv(_ header: String, _ part: ArraySlice<[Double]>, _ columns: [Int]) -> String {
        header + "\n" + part.map { r in columns.map { "\(r[$0])" }.joined(separator: ",") }.joined(separator: "\n") + "\n"
      }
      return (dir.write("train.csv", csv("a,b,c,y", rows[0..<200], [0, 1, 2, 3])), dir.write("new100.csv", csv("a,b,c,y", rows[200..<300], [0, 1, 2, 3])),
              dir.write("new50.csv", csv("a,b,c,y", rows[200..<250], [0, 1, 2, 3])), dir.write("new50-unlabelled.csv", csv("c,a,b", rows[200..<250], [2, 0, 1])),
              dir.write("one.csv", csv("a,b,c", rows[200..<201], [0, 1, 2])))
    }()

    /// The model trained on `files.train`, standardised (the CSV default), in a checkpoint folder.
    static let trained: String = {
      let ck = dir.file("ck")
      let r = DPTBinary.run(["train", "--dataset", "csv:" + files.train, "--epochs", "5", "--hidden", "16", "--checkpoint-dir", ck])
      precondition(r.status == 0, r.stderr)
      return ck
    }()

    func rows(_ path: String) -> [[String]] {
      ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    /// Items 2 and 3: a row's prediction is the same in a file of 100, in a file of its 50, without the label column
    /// and with the columns in another order (found by name), and alone; the output keeps the file's order and
    /// numbers its lines; the exported module's load() computes the same from the raw rows, and so does predict
    /// from the exported safetensors.
    @Test func predictionsDoNotDependOnTheirNeighbours() throws {
      let f = Self.files, ck = Self.trained
      func predict(_ file: String, _ extra: [String] = [], weights: [String]? = nil) -> [[String]] {
        let out = Self.dir.file("p-\(Files.lastComponent(file))-\(extra.count)-\(weights == nil)")
        try? FileManager.default.removeItem(atPath: out)
        let r = DPTBinary.run(["predict"] + (weights ?? ["--checkpoint", ck]) + ["--dataset", "csv:" + file, "--output", out] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        return rows(out)
      }
      let hundred = predict(f.hundred, ["--test-fraction", "0", "--rows", "all"]), fifty = predict(f.fifty)
      let unlabelled = predict(f.unlabelled), one = predict(f.one)
      #expect(hundred.first == ["line", "label", "predicted", "p0", "p1"] && unlabelled.first == ["line", "predicted", "p0", "p1"])
      #expect(hundred.count == 101 && fifty.count == 51 && unlabelled.count == 51 && one.count == 2)
      guard hundred.count == 101 && fifty.count == 51 && unlabelled.count == 51 && one.count == 2 else { return }
      #expect(Array(hundred[1...50]) == Array(fifty[1...]), "the same 50 rows inside 100 and alone")
      #expect(hundred[1...].map { $0[0] } == (1...100).map(String.init), "the lines of the file, in order")
      #expect(fifty[1...].map { [$0[0]] + $0[2...] } == Array(unlabelled[1...]), "without labels, the columns found by name")
      #expect(one[1] == unlabelled[1])
      // The label column is the file's own.
      let labels = rows(f.fifty)[1...].map { $0[3].hasPrefix("1") ? "1" : "0" }
      #expect(fifty[1...].map { $0[1] } == labels)
      // The export: its metadata carries the transform, so predict --weights gives the same; its PyTorch module takes raw rows.
      let weights = Self.dir.file("w.safetensors"), code = Self.dir.file("wmodel.py")
      let e = DPTBinary.run(["export", "--checkpoint", ck, "--output", weights, "--pytorch", code])
      #expect(e.status == 0, "\(e.stderr)")
      #expect(predict(f.fifty, weights: ["--weights", weights, "--hidden", "16"]) == fifty)
      let script = """
        import sys, importlib.util, numpy as np, torch
        spec = importlib.util.spec_from_file_location("wmodel", sys.argv[1]); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        x = np.loadtxt(sys.argv[3], delimiter=",", skiprows=1)[:, :3]
        p = torch.softmax(m.load(sys.argv[2])(x), 1).detach().numpy()
        q = np.loadtxt(sys.argv[4], delimiter=",", skiprows=1)[:, 3:]
        print(float(np.abs(p - q).max()))
        """
      let out = Self.dir.file("p-new50.csv-0-true")
      let py = Subprocess.run(["python3", "-c", script, code, weights, f.fifty, out])
      #expect(py.status == 0, "\(py.stderr)")
      #expect((Double(py.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1) < 2e-6, "load()(raw rows) against predict: \(py.stdout)")
      // A file predict cannot read as the model's rows is one line naming it.
      let bad = Self.dir.write("bad-columns.csv", "a,b\n1,2\n")
      let r = DPTBinary.run(["predict", "--checkpoint", ck, "--dataset", "csv:" + bad, "--output", Self.dir.file("bad.csv")])
      #expect(r.status != 0 && r.stderr.contains("\(bad): no column named 'c'"), "\(r.stderr)")
      let split = DPTBinary.run(["predict", "--checkpoint", ck, "--dataset", "csv:" + f.fifty, "--rows", "test", "--output", Self.dir.file("x.csv")])
      #expect(split.status == 64 && split.stderr.contains("is predicted whole"), "\(split.stderr)")
    }

    /// Item 4: after --early-stop, eval, predict and export use best.dptc and say which epoch; --which last takes the
    /// last; eval reports the validation rows apart from the training rows, with the run's own numbers.
    @Test func theBestEpochIsUsedAndSaid() throws {
      let ck = Self.dir.file("es")
      let r = DPTBinary.run(["train", "--dataset", "csv:" + Self.files.train, "--epochs", "30", "--lr", "0.5", "--hidden", "32", "--early-stop", "2",
                             "--val-fraction", "0.2", "--checkpoint-dir", ck, "--log-dir", Self.dir.file("es-logs")])
      #expect(r.status == 0 && r.stdout.contains("stopped early"), "\(r.stdout) \(r.stderr)")
      let metrics = try String(contentsOfFile: Self.dir.file("es-logs/metrics.jsonl"), encoding: .utf8).split(separator: "\n").map { try JSON.parse(String($0)) }
      let best = try Checkpoint(decoding: try Checkpoint.readBytes(ck + "/best.dptc"), path: "best").epoch
      #expect(best < metrics.count)
      let e = DPTBinary.run(["eval", "--checkpoint", ck, "--json"])
      let o = try JSON.parse(e.stdout)
      #expect(o["weights"]?.string?.hasSuffix("best.dptc") == true && o["weights_epoch"]?.int == best, "\(e.stdout)")
      let row = metrics[best - 1]
      for key in ["train_loss", "val_loss", "test_loss"] {
        #expect(abs((o[key]?.double ?? 0) - (row[key]?.double ?? 1)) < 1e-6, "\(key): eval \(o[key]?.double ?? .nan), the run \(row[key]?.double ?? .nan)")
      }
      #expect(o["validation_samples"]?.int == 32 && o["train_samples"]?.int == 128, "\(e.stdout)")
      let text = DPTBinary.run(["eval", "--checkpoint", ck])
      #expect(text.stdout.contains("epoch \(best) (the best epoch") && text.stdout.contains("validation loss"), "\(text.stdout)")
      let last = try JSON.parse(DPTBinary.run(["eval", "--checkpoint", ck, "--which", "last", "--json"]).stdout)
      #expect(last["weights_epoch"]?.int == metrics.count && abs((last["val_loss"]?.double ?? 0) - (metrics.last!["val_loss"]?.double ?? 1)) < 1e-6)
      let p = DPTBinary.run(["predict", "--checkpoint", ck, "--output", Self.dir.file("es.csv")])
      #expect(p.stdout.contains("best.dptc, epoch \(best)"), "\(p.stdout)")
      let x = DPTBinary.run(["export", "--checkpoint", ck, "--output", Self.dir.file("es.safetensors")])
      #expect(x.stdout.contains("epoch \(best) (the best epoch"), "\(x.stdout)")
      let none = DPTBinary.run(["eval", "--checkpoint", Self.trained, "--which", "best"])
      #expect(none.status != 0 && none.stderr.contains("holds no best epoch's checkpoint (best.dptc)"), "\(none.stderr)")
    }

    /// Item 5: a run whose every batch of an epoch was skipped (--on-nan skip-batch) has diverged: it says so and
    /// exits non-zero, and metrics.jsonl counts the skipped batches.
    @Test func skippingEveryBatchIsDivergence() throws {
      let logs = Self.dir.file("skip-logs")
      let r = DPTBinary.run(["train", "--dataset", "corn", "--epochs", "3", "--lr", "1e30", "--on-nan", "skip-batch", "--log-dir", logs])
      #expect(r.status == 1 && r.stderr.contains("diverged at epoch 2: every batch of the epoch (1) was skipped"), "\(r.stdout) \(r.stderr)")
      let config = try JSON.parse(try String(contentsOfFile: logs + "/config.json", encoding: .utf8))
      #expect(config["status"]?.string == "diverged")
      #expect((try String(contentsOfFile: logs + "/metrics.jsonl", encoding: .utf8)).contains("\"skipped_batches\":1,\"batches\":1"))
    }

    /// Item 7: the closed form is set beside the optimizer that trained (not "SGD" for L-BFGS), and an R^2 of one row
    /// is "-", not -inf.
    @Test func theClosedFormNamesItsOptimizer() {
      let r = DPTBinary.run(["train", "--dataset", "corn", "--optimizer", "lbfgs", "--epochs", "5", "--test-fraction", "0.1"])
      #expect(r.status == 0, "\(r.stderr)")
      #expect(r.stdout.contains(") beside L-BFGS:") && r.stdout.contains("L-BFGS") && !r.stdout.contains("SGD"), "\(r.stdout)")
      #expect(!r.stdout.contains("inf") && !r.stdout.contains("nan"), "\(r.stdout)")
      let line = r.stdout.split(separator: "\n").first { $0.contains("R^2 (test)") } ?? ""
      #expect(line.split(separator: " ").dropFirst(2).allSatisfy { $0 == "-" }, "\(line)")
    }

    /// Items 10 and 11: single-file outputs write through to character devices and pipes, never replace a device,
    /// a link (its file is written) or a file that is not an earlier output of theirs (unless --overwrite), never
    /// write inside a run's folder, and two outputs of one command are never one file.
    @Test func singleFileOutputsReplaceNothingTheyShouldNot() throws {
      let ck = Self.trained, base = ["train", "--dataset", "corn", "--epochs", "1"]
      var s = stat()
      #expect(DPTBinary.run(base + ["--trace", "/dev/null"]).status == 0)
      #expect(stat("/dev/null", &s) == 0 && (s.st_mode & S_IFMT) == S_IFCHR, "/dev/null is still a character device")
      let full = DPTBinary.run(["export", "--checkpoint", ck, "--output", "/dev/full"])
      #expect(full.status == 1 && full.stderr.contains("--output /dev/full: write failed"), "\(full.stderr)")
      // A run's own checkpoint, another run's files, the training data: refused, and unchanged.
      let before = try Data(contentsOf: URL(fileURLWithPath: ck + "/checkpoint.dptc"))
      let run = Self.dir.file("own")
      for (args, message) in [
        (base + ["--checkpoint-dir", run, "--timeline", run + "/checkpoint.dptc"], "is inside \(run), a folder this run writes and owns"),
        (base + ["--timeline", ck + "/checkpoint.dptc"], "a dpt run's output folder"),
        (base + ["--trace", ck + "/.dpt-run.json"], "a dpt run's output folder"),
        (["predict", "--checkpoint", ck, "--output", ck + "/checkpoint.dptc"], "--checkpoint \(ck)/checkpoint.dptc is also an output"),
        (["predict", "--checkpoint", ck, "--output", ck + "/other.csv"], "a dpt run's output folder"),
        (["export", "--checkpoint", ck, "--output", Self.dir.file("e1.safetensors"), "--pytorch", Self.files.train], "the checkpoint's data set \(Self.files.train) is also an output"),
        (["export", "--checkpoint", ck, "--output", Self.dir.file("e1.safetensors"), "--pytorch", Self.files.hundred], "holds a file that is not PyTorch code dpt exported"),
        (base + ["--timeline", Self.dir.file("same.json"), "--trace", Self.dir.file("same.json")], "--timeline \(Self.dir.file("same.json")) is also --trace's file"),
      ] {
        let r = DPTBinary.run(args)
        #expect(r.status != 0 && r.stderr.contains(message), "\(args): \(r.stderr)")
      }
      #expect(try Data(contentsOf: URL(fileURLWithPath: ck + "/checkpoint.dptc")) == before)
      #expect(try String(contentsOfFile: Self.files.train, encoding: .utf8).hasPrefix("a,b,c,y\n"))
      // An earlier output of the same kind is replaced; another file only with --overwrite.
      let trace = Self.dir.file("t.jsonl")
      #expect(DPTBinary.run(base + ["--trace", trace]).status == 0 && DPTBinary.run(base + ["--trace", trace]).status == 0)
      let notes = Self.dir.write("notes.txt", "mine\n")
      let refused = DPTBinary.run(base + ["--trace", notes])
      #expect(refused.status != 0 && refused.stderr.contains("--trace \(notes) already holds a file that is not a trace dpt wrote"), "\(refused.stderr)")
      #expect(try String(contentsOfFile: notes, encoding: .utf8) == "mine\n")
      #expect(DPTBinary.run(base + ["--trace", notes, "--overwrite"]).status == 0)
      // A link stays a link, its file written; a link to nothing is refused; a pipe is written through.
      let target = Self.dir.file("target.safetensors"), link = Self.dir.file("link.safetensors")
      try? FileManager.default.removeItem(atPath: link)
      #expect(DPTBinary.run(["export", "--checkpoint", ck, "--which", "last", "--output", target]).status == 0)
      try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
      #expect(DPTBinary.run(["export", "--checkpoint", ck, "--output", link]).status == 0)
      #expect(lstat(link, &s) == 0 && (s.st_mode & S_IFMT) == S_IFLNK && (try? SafeTensorsFile(decoding: [UInt8](try Data(contentsOf: URL(fileURLWithPath: target))), path: target)) != nil)
      let dangling = Self.dir.file("dangling")
      try? FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: Self.dir.file("nothing-there"))
      let d = DPTBinary.run(["export", "--checkpoint", ck, "--output", dangling])
      #expect(d.status != 0 && d.stderr.contains("is a link to nothing"), "\(d.stderr)")
      let fifo = Self.dir.file("fifo")
      #expect(mkfifo(fifo, 0o600) == 0)
      let reader = Subprocess.launch(["cat", fifo], environment: [:], directory: nil)
      #expect(DPTBinary.run(["predict", "--checkpoint", ck, "--output", fifo]).status == 0)
      let read = reader.wait(timeout: 30)
      #expect(read.stdout.hasPrefix("row,label,predicted,p0,p1\n"), "\(read.stdout.prefix(80))")
      #expect(lstat(fifo, &s) == 0 && (s.st_mode & S_IFMT) == S_IFIFO)
      // `-` is standard output, and the notes go to stderr.
      let stdout = DPTBinary.run(["predict", "--checkpoint", ck, "--output", "-"])
      #expect(stdout.stdout.hasPrefix("row,label,predicted") && stdout.stderr.contains("wrote -"), "\(stdout.stdout.prefix(80))")
    }

    /// Item 12: a checkpoint folder whose name holds Python code, and a weights name with a quote and a newline, do
    /// not run on `import`, and load() still finds the weights.
    @Test func exportedCodeRunsNoInjectedCode() throws {
      let evil = Self.dir.file("ck\nimport os; os.system(\"touch PWNED\")\n#")
      try? FileManager.default.removeItem(atPath: evil)
      try FileManager.default.copyItem(atPath: Self.trained, toPath: evil)
      let weights = Self.dir.file("w\"x\\y.safetensors"), code = Self.dir.file("evilmodel.py")
      let e = DPTBinary.run(["export", "--checkpoint", evil, "--output", weights, "--pytorch", code])
      #expect(e.status == 0, "\(e.stderr)")
      let script = """
        import os, sys, importlib.util
        os.chdir(sys.argv[2])
        spec = importlib.util.spec_from_file_location("evilmodel", sys.argv[1]); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        net = m.load()
        print("PWNED" if os.path.exists("PWNED") else "clean", sum(p.numel() for p in net.parameters()))
        """
      let py = Subprocess.run(["python3", "-c", script, code, Self.dir.path])
      #expect(py.status == 0 && py.stdout.hasPrefix("clean "), "\(py.stdout) \(py.stderr)")
    }
  
    /// Items 16 and 21: every value a user gives is checked before it becomes a count or a number of steps, and each
    /// message names what is wrong with it: the flag, the tensor, the list, the file.
    @Test func messagesNameWhatIsWrong() throws {
      let base = ["train", "--dataset", "corn", "--epochs", "1"]
      func error(_ args: [String]) -> (Int32, String) {
        let r = DPTBinary.run(args)
        return (r.status, r.stderr.split(separator: "\n").first.map(String.init) ?? "")
      }
      for (args, status, message) in [
        (base + ["--warmup-epochs", "1e18"], 64, "--warmup-epochs must be a number of epochs from 0 to 1000000 (got 1e+18)"),
        (base + ["--warmup-epochs", "inf"], 64, "--warmup-epochs must be a number of epochs"),
        (base + ["--stall-timeout", "1e-300"], 64, "--stall-timeout must be 0 (no watchdog) or at least 1 s (got 1e-300)"),
        (base + ["--seed", "-1"], 64, "--seed takes whole numbers from 0"),
        (base + ["--early-stop", "-2"], 64, "--early-stop must be a number of epochs from 1"),
        (["train", "--dataset", "mnist", "--model", "flatten, dense(10), softmax"], 64, "--model ends in softmax and --loss cross-entropy applies softmax itself"),
      ] as [([String], Int32, String)] {
        let (s, line) = error(args)
        #expect(s == status && line.contains(message) && !line.contains("Missing value"), "\(args): \(s) \(line)")
      }
      // A negative number is a value, not a flag: --predict's rows may start with one.
      let r = DPTBinary.run(base + ["--predict", "-6,4", "--json"])
      #expect(r.status == 0, "\(r.stderr)")
      let big = Self.dir.write("big.model", String(repeating: "a", count: 2_000_000))
      #expect(error(base + ["--model-file", big]).1.contains("is larger than dpt reads (1.0 MB, the most a list of layers may take)"))
      // Weights that are not numbers are named, not blamed on the step size.
      let nan = ModelListTests.weights("nan.safetensors", [("0.weight", [1, 2], [Double.nan, 1]), ("0.bias", [1], [0])])
      let n = error(base + ["--init", nan])
      #expect(n.0 != 0 && n.1.contains("tensor '0.weight' holds 1 value that is not a finite Float (the first, at 0, is nan)") && !n.1.contains("--lr"), "\(n.1)")
      // A PyTorch pickle points at safetensors.
      let pt = Self.dir.file("model.pt")
      let saved = Subprocess.run(["python3", "-c", "import sys, torch; torch.save({'0.weight': torch.zeros(1, 2)}, sys.argv[1])", pt])
      #expect(saved.status == 0, "\(saved.stderr)")
      let p = error(base + ["--init", pt])
      #expect(p.1.contains("a PyTorch file written by torch.save") && p.1.contains("safetensors.torch.save_file"), "\(p.1)")
      // A hand-edited sweep.json: one line naming the file.
      let sweep = Self.dir.file("edited-sweep")
      #expect(DPTBinary.run(["sweep", "--dataset", "corn", "--epochs", "1", "--lr", "0.1,0.01", "--log-dir", sweep]).status == 0)
      var state = try JSON.parse(try String(contentsOfFile: sweep + "/sweep.json", encoding: .utf8))
      if case .object(var o) = state {
        o = o.map { $0.0 == "arguments" ? ($0.0, .array([JSON("--bogus")])) : $0 }
        state = .object(o)
      }
      try state.serialized().write(toFile: sweep + "/sweep.json", atomically: true, encoding: .utf8)
      let resumed = error(["sweep", "--resume", sweep])
      #expect(resumed.1.contains("sweep.json records arguments this dpt does not take (Unknown option '--bogus'") && !resumed.1.contains("CommandError("),
              "\(resumed.1)")
    }
}
}
