import Foundation
import Testing
import _Support
import _TestSupport

extension BinaryTests {
  /// The `dpt` command as a user runs it.
  @Suite struct CommandTests {
    @Test func binaryExists() {
      #expect(FileManager.default.isExecutableFile(atPath: DPTBinary.path), "build dpt first: \(DPTBinary.path)")
    }

    @Test func cornJSON() throws {
      let r = DPTBinary.run(["train", "--dataset", "corn", "--epochs", "3", "--json"])
      #expect(r.status == 0, "\(r.stderr)")
      let lines = r.stdout.split(separator: "\n")
      #expect(lines.count == 1, "stdout holds only the JSON object: \(r.stdout)")
      let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
      for key in ["epoch", "train_loss", "train_rmse", "train_r2", "seconds", "samples_per_sec", "world_size"] {
        #expect(o[key] != nil, "\(key) missing from \(r.stdout)")
      }
      #expect(o["epoch"] as? Int == 3)
      #expect(r.stderr.contains("train RMSE"), "the table goes to stderr with --json")
    }

    @Test func helpDocumentsEveryOption() {
      let r = DPTBinary.run(["train", "--help"])
      #expect(r.status == 0)
      for flag in ["--dataset", "--test-fraction", "--model", "--hidden", "--activation", "--loss", "--lr", "--momentum",
                   "--nesterov", "--weight-decay", "--batch-size", "--epochs", "--seed", "--log-dir", "--json"] {
        #expect(r.stdout.contains(flag), "\(flag) not in --help")
      }
    }

    /// Help is wrapped once, at the terminal's width: the sources' wrapped paragraphs are one line to ArgumentParser
    /// (a 1000-column terminal shows the model list's paragraph on one line; the source breaks it after
    /// "batchnorm"), examples keep their lines, and an 80-column terminal gets no line past 80 columns and no short
    /// line in the middle of that paragraph.
    @Test func helpIsWrappedOnceAtTheTerminalsWidth() {
      let wide = DPTBinary.run(["train", "--help"], environment: ["COLUMNS": "1000"])
      #expect(wide.status == 0)
      #expect(wide.stdout.split(separator: "\n").contains { $0.contains("batchnorm (momentum=0.1, eps=1e-5), relu") && $0.contains("LeNet-5's shape.") },
              "\(wide.stdout)")
      #expect(wide.stdout.contains("\n  dpt train --dataset mnist --epochs 5\n"), "the examples keep their lines: \(wide.stdout)")
      let narrow = DPTBinary.run(["train", "--help"], environment: ["COLUMNS": "80"]).stdout.split(separator: "\n")
      #expect(narrow.allSatisfy { $0.count <= 80 }, "\(narrow.filter { $0.count > 80 })")
      let paragraph = narrow.drop { !$0.contains("dense(N), conv2d(C, k") }.prefix { !$0.contains("LeNet-5's shape.") }
      #expect(paragraph.count >= 5 && paragraph.allSatisfy { $0.count >= 60 }, "\(paragraph)")
    }

    /// Issue 32, item 5: each subcommand lists only the flags it reads. `scaling` models a step (no epoch loop's
    /// flags), `eval` and `predict` put weights into a model (no update rule, no exchange, no epochs); `train` has
    /// them all. A flag a command does not read is an unknown option there.
    @Test func eachCommandListsOnlyTheFlagsItReads() {
      func flags(_ command: String) -> Set<String> {
        Set(DPTBinary.run([command, "--help"], environment: ["COLUMNS": "200"]).stdout.split(separator: "\n").compactMap { line in
          line.hasPrefix("  --") ? line.dropFirst(2).split(whereSeparator: { $0 == " " || $0 == "," || $0 == "/" || $0 == "=" }).first.map(String.init) : nil
        })
      }
      let loop: Set = ["--epochs", "--early-stop", "--stall-timeout", "--diverge-factor", "--on-nan", "--drop-last"]
      let update: Set = ["--lr", "--momentum", "--weight-decay", "--optimizer", "--lr-schedule"]
      let exchange: Set = ["--compress", "--bucket-size", "--deterministic", "--batch-size"]
      let model: Set = ["--model", "--loss", "--hidden", "--dataset", "--missing", "--image-size"]
      let train = flags("train"), sweep = flags("sweep"), scaling = flags("scaling"), eval = flags("eval"), predict = flags("predict")
      #expect(train.isSuperset(of: loop.union(update).union(exchange).union(model)) && sweep.isSuperset(of: loop.union(update)), "\(train)")
      #expect(scaling.isDisjoint(with: loop) && scaling.isSuperset(of: update.union(exchange).union(model)), "\(scaling)")
      #expect(eval.isDisjoint(with: loop.union(update).union(exchange)) && eval.isSuperset(of: model), "\(eval)")
      #expect(predict.isDisjoint(with: loop.union(update).union(exchange)) && predict.isSuperset(of: model), "\(predict)")
      let r = DPTBinary.run(["scaling", "--dataset", "corn", "--link", "1gbit,50us", "--early-stop", "3"])
      #expect(r.status == 64 && r.stderr.contains("Unknown option '--early-stop'"), "\(r.stderr)")
    }

    // MARK: Bad input: one line naming the problem, a non-zero exit, no files left behind

    struct BadInput: CustomStringConvertible {
      var arguments: [String]
      var message: String
      var description: String { arguments.joined(separator: " ") }
    }

    static let dir = TemporaryDirectory("dpt-cli")
    static func file(_ name: String, _ text: String) -> String { dir.write(name, text) }
    static func idxFolder(_ name: String, images: [UInt8], labels: [UInt8]) -> String {
      let d = dir.file(name)
      try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
      let good = [UInt8]([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2]) + Array(repeating: 9, count: 8)
      let goodLabels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 2, 1, 0]
      for (n, b) in [("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels),
                     ("t10k-images-idx3-ubyte", good), ("t10k-labels-idx1-ubyte", goodLabels)] {
        _ = FileManager.default.createFile(atPath: d + "/" + n, contents: Data(b))
      }
      return "idx:" + d
    }
    static let goodImages: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2] + Array(repeating: 9, count: 8)
    static let goodLabels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 2, 1, 0]

    static let badInputs: [BadInput] = [
      BadInput(arguments: ["--dataset", "csv:/nonexistent/data.csv"], message: "/nonexistent/data.csv: no such file"),
      BadInput(arguments: ["--dataset", idxFolder("magic", images: [1, 2, 3, 4] + Array(goodImages.dropFirst(4)), labels: goodLabels)],
               message: "wrong IDX magic number"),
      BadInput(arguments: ["--dataset", idxFolder("truncated", images: Array(goodImages.dropLast(3)), labels: goodLabels)],
               message: "truncated"),
      BadInput(arguments: ["--dataset", idxFolder("count", images: goodImages, labels: [0, 0, 8, 1, 0, 0, 0, 1, 1])],
               message: "holds 2 images but"),
      BadInput(arguments: ["--dataset", "csv:" + file("text.csv", "a,b\n1,2\n3,oops\n"), "--target", "value"],
               message: "text.csv:3: the target column 'b' holds 'oops'; a regression target is a number"),
      BadInput(arguments: ["--dataset", "csv:" + file("gap.csv", "a,b,c\n1,,2\n3,4,5\n1,1,2\n")], message: "gap.csv:2: column 'b' is empty: --missing drop"),
      BadInput(arguments: ["--dataset", "csv:" + file("ragged.csv", "1,2,3\n4,5\n")], message: "2 cells where the first row has 3"),
      BadInput(arguments: ["--dataset", "csv:" + file("empty.csv", "")], message: "the file is empty"),
      BadInput(arguments: ["--dataset", "csv:" + file("nan.csv", "1,2\nNaN,3\n")], message: "nan.csv:2: column 1 is empty"),
      BadInput(arguments: ["--dataset", "csv:" + file("inf.csv", "1,2\n4,-inf\n")], message: "is not finite"),
      BadInput(arguments: ["--dataset", "corn", "--lr", "0"], message: "--lr must be a number > 0"),
      BadInput(arguments: ["--dataset", "corn", "--lr=-1"], message: "--lr must be a number > 0"),
      BadInput(arguments: ["--dataset", "corn", "--weight-decay=-0.1"], message: "--weight-decay must be >= 0"),
      BadInput(arguments: ["--dataset", "corn", "--batch-size", "0"], message: "--batch-size must be a whole number from 1 to"),
      BadInput(arguments: ["--dataset", "corn", "--epochs", "0"], message: "--epochs must be from 1 to"),
      BadInput(arguments: ["--dataset", "nope"], message: "--dataset 'nope': unknown data set"),
      BadInput(arguments: ["--dataset", "csv:/tmp"], message: "/tmp: is a folder, not a file"),
      BadInput(arguments: ["--dataset", "corn", "--loss", "cross-entropy"], message: "needs class labels"),
      BadInput(arguments: ["--dataset", "corn", "--momentum", "0", "--nesterov"], message: "--nesterov needs --momentum > 0"),
      BadInput(arguments: ["--dataset", "corn", "--hidden", "0,4", "--model", "mlp"], message: "--hidden must list positive widths"),
      // Tables: constant targets, values beyond what can be standardised or held, labels that are not labels.
      BadInput(arguments: ["--dataset", "csv:" + file("constant.csv", "x,y\n1,5\n2,5\n3,5\n4,5\n")],
               message: "the target column 'y' holds one value (5.0) in every row"),
      BadInput(arguments: ["--dataset", "csv:" + file("oneclass.csv", "x,label\n1,2\n2,2\n3,2\n4,2\n"), "--target", "class"],
               message: "the class column 'label' holds one class (2) in every row"),
      BadInput(arguments: ["--dataset", "csv:" + file("fraction.csv", "x,label\n1,0\n2,1.5\n3,1\n"), "--target", "class"],
               message: "row 2: the class label 'label' is 1.5"),
      BadInput(arguments: ["--dataset", "csv:" + file("huge.csv", "a,b,y\n1,2,3\n2,1e308,4\n3,4,5\n4,5,9\n6,1,2\n"), "--test-fraction", "0"],
               message: "feature column 'b' holds values too large to standardise"),
      BadInput(arguments: ["--dataset", "csv:" + file("big.csv", "a,b,y\n1,2,3\n2,1e39,4\n3,4,5\n4,5,9\n6,1,2\n"), "--no-standardize"],
               message: "feature column 'b' is 1e+39, beyond Float's range"),
      BadInput(arguments: ["--dataset", "mnist", "--target", "class"], message: "--target applies to --dataset csv:PATH, npz:PATH and npy:X.npy,Y.npy"),
      BadInput(arguments: ["--dataset", "mnist", "--header", "yes"], message: "--targets, --header and --missing apply to --dataset csv:PATH"),
      BadInput(arguments: ["--dataset", "corn", "--loss", "mse", "--hinge-reduction", "mean"], message: "--hinge-reduction applies to --loss hinge only"),
      // A run stopped by a non-finite loss before any epoch ended leaves no log folder behind.
      BadInput(arguments: ["--dataset", "corn", "--lr", "1e30", "--batch-size", "2"], message: "the training loss became inf at epoch 1, step 2"),
    ]

    /// A test row holding a value the model's float cannot hold is an error naming the column, not a silent inf: with
    /// the training rows alone standardised, the test row's 1e300 stays far beyond Float's range.
    @Test func aTestRowBeyondFloatIsAnError() {
      var rows = "a,b,y\n"
      for i in 0..<40 { rows += "\(i),\(i % 7),\(i * 2 + 1)\n" }
      rows += "5,1e300,3\n"
      let path = Self.file("test-row.csv", rows)
      // Which rows are held out depends on the seed: find one that puts the big row in the test set.
      let r = DPTBinary.run(["train", "--dataset", "csv:" + path, "--epochs", "1", "--test-fraction", "0.5", "--seed", "1"])
      #expect(r.status != 0)
      #expect(r.stderr.contains("feature column 'b'"), "\(r.stderr)")
    }

    /// --help as a user pastes from it: examples are whole lines (long ones continued with a backslash), value
    /// placeholders say what they take, each option's values are listed once; usage errors exit 64 (EX_USAGE)
    /// before any data is loaded, negative numbers after a space included.
    @Test func helpAndUsageErrors() {
      for command in ["train", "sweep", "lstsq", "scaling", "export", "eval", "predict"] {
        let help = DPTBinary.run([command, "--help"]).stdout
        #expect(!help.isEmpty, "dpt \(command) --help")
        // A re-wrapped example continues at column 0 on the line after its command.
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false)
        for (a, b) in zip(lines, lines.dropFirst()) {
          let example = a.drop { $0 == " " }
          if (example.hasPrefix("dpt ") || example.hasPrefix("mpirun ")) && !a.hasSuffix("\\") && b.hasPrefix("-") {
            Issue.record("dpt \(command) --help: an example was re-wrapped: '\(a)' / '\(b)'")
          }
        }
        #expect(!help.contains("| lbfgs") || !help.contains("values: sgd"), "--optimizer lists its values twice")
      }
      let train = DPTBinary.run(["train", "--help"]).stdout
      #expect(train.contains("--resume <dir>") && train.contains("--init <file.safetensors>") && train.contains("default: strong-wolfe"))
      for arguments in [["--lr", "-1"], ["--weight-decay", "-0.5"], ["--dataset", "corn", "--loss", "hinge"],
                        ["--dataset", "csv:/nonexistent.csv", "--target", "class", "--loss", "mse", "--model", "softmax"]] {
        let r = DPTBinary.run(["train"] + arguments)
        #expect(r.status == 64, "\(arguments): \(r.status) \(r.stderr)")
        #expect(!r.stderr.contains("Missing value"), "\(r.stderr)")
      }
    }

    /// `dpt eval` reports what training reported for the same weights, on any rank count; `dpt predict` writes one
    /// row per test sample whose predicted classes give the same accuracy.
    @Test func evalAndPredictFromACheckpoint() throws {
      let ck = Self.dir.file("eval-ck"), csv = Self.dir.file("predictions.csv")
      let trained = DPTBinary.run(["train", "--dataset", "mnist", "--hidden", "16", "--epochs", "1", "--checkpoint-dir", ck, "--json"])
      #expect(trained.status == 0, "\(trained.stderr)")
      let t = try jsonObject(trained.stdout)
      for run in [DPTBinary.run(["eval", "--checkpoint", ck, "--json"]), DPTBinary.mpirun(2, ["eval", "--checkpoint", ck, "--json"])] {
        #expect(run.status == 0, "\(run.stderr)")
        let e = try jsonObject(run.stdout)
        for key in ["train_loss", "train_acc", "test_loss", "test_acc"] {
          #expect(abs((e[key] as! Double) - (t[key] as! Double)) <= 1e-6 * max(1, abs(t[key] as! Double)), "\(key): \(e) vs \(t)")
        }
      }
      let p = DPTBinary.run(["predict", "--checkpoint", ck, "--output", csv])
      #expect(p.status == 0, "\(p.stderr)")
      let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
      #expect(rows.count == 1000)
      let correct = rows.filter { $0[1] == $0[2] }.count
      #expect(abs(Double(correct) / 1000 - (t["test_acc"] as! Double)) < 1e-9)
      let wrong = DPTBinary.run(["eval"])
      #expect(wrong.status == 64 && wrong.stderr.contains("give one of --checkpoint DIR and --weights FILE.safetensors"), "\(wrong.stderr)")
    }

    /// On a terminal (here a pseudo-terminal from util-linux's `script`) rank 0 draws a progress bar with the time
    /// left, also under mpirun, whose ranks write to pipes; piped output has none, and the counts read in the right
    /// number ("1 rank", "2 ranks").
    @Test func progressBarOnATerminalOnly() {
      let train = "train --dataset mnist --hidden 16 --epochs 1"
      let alone = Subprocess.run(["script", "-qec", "\(DPTBinary.path) \(train)", "/dev/null"], timeout: 120)
      #expect(alone.stdout.contains("epoch 1 [") && alone.stdout.contains("s left"), "\(alone.stdout)")
      #expect(alone.stdout.contains("| 1 rank | blas: "), "\(alone.stdout)")
      let under = Subprocess.run(["script", "-qec", "mpirun -np 2 --oversubscribe \(DPTBinary.path) \(train)", "/dev/null"],
                                 environment: DPTBinary.mpiEnvironment, timeout: 120)
      #expect(under.stdout.contains("epoch 1 [") && under.stdout.contains("2 ranks"), "\(under.stdout)")
      let piped = DPTBinary.run(train.split(separator: " ").map(String.init))
      #expect(piped.status == 0 && !piped.stderr.contains("epoch 1 [") && !piped.stdout.contains("\r"), "\(piped.stderr)")
    }

    /// --init loads `dpt export`'s file: the same weights start the same run; a file of another model is an error
    /// that names the first tensor that does not fit.
    @Test func initStartsFromExportedWeights() throws {
      let ck = Self.dir.file("init-ck"), weights = Self.dir.file("init.safetensors")
      let first = DPTBinary.run(["train", "--dataset", "corn", "--epochs", "3", "--checkpoint-dir", ck, "--json"])
      #expect(first.status == 0, "\(first.stderr)")
      #expect(DPTBinary.run(["export", "--checkpoint", ck, "--output", weights]).status == 0)
      // From the trained weights, one more epoch at a tiny lr stays where the first run ended.
      let again = DPTBinary.run(["train", "--dataset", "corn", "--epochs", "1", "--lr", "1e-9", "--init", weights, "--json"])
      #expect(again.status == 0, "\(again.stderr)")
      let (a, b) = (try jsonObject(first.stdout), try jsonObject(again.stdout))
      #expect(abs((a["train_loss"] as! Double) - (b["train_loss"] as! Double)) < 1e-6 * (a["train_loss"] as! Double))
      let wrong = DPTBinary.run(["train", "--dataset", "corn", "--model", "mlp", "--hidden", "4", "--init", weights])
      #expect(wrong.status != 0)
      #expect(wrong.stderr.contains("tensor '0.weight' has shape [1, 2]; this model's 0.weight is [4, 2]"), "\(wrong.stderr)")
      let missing = DPTBinary.run(["train", "--dataset", "corn", "--init", Self.dir.file("nothing.safetensors")])
      #expect(missing.status != 0 && missing.stderr.contains("nothing.safetensors: no such file"), "\(missing.stderr)")
    }

    /// A CSV whose last column holds a few small whole numbers is read as class labels, and dpt says so; --target
    /// value regresses on the same column; --targets K takes K target columns.
    @Test func csvTargetsAreInferredOrGiven() throws {
      var text = "a,b,label\n"
      for i in 0..<60 { text += "\(Double(i) / 7),\(Double(i % 5)),\(i % 3)\n" }
      let path = Self.file("classes.csv", text)
      let inferred = DPTBinary.run(["train", "--dataset", "csv:" + path, "--epochs", "2"])
      #expect(inferred.status == 0, "\(inferred.stderr)")
      #expect(inferred.stdout.contains("the last column holds 3 small non-negative whole numbers: read as class labels"), "\(inferred.stdout)")
      #expect(inferred.stdout.contains("cross-entropy") && inferred.stdout.contains("train acc"))
      let value = DPTBinary.run(["train", "--dataset", "csv:" + path, "--epochs", "2", "--target", "value"])
      #expect(value.status == 0 && value.stdout.contains("mse") && !value.stdout.contains("read as class labels"), "\(value.stdout)")
      let corn = DPTBinary.run(["train", "--dataset", "csv:" + path, "--epochs", "2", "--json"])
      #expect(try jsonObject(corn.stdout)["train_acc"] is Double)
      let two = DPTBinary.run(["train", "--dataset", "csv:" + path, "--epochs", "2", "--targets", "2", "--json"])
      #expect(two.status == 0, "\(two.stderr)")
      #expect(try jsonObject(two.stdout)["parameters"] as? Int == 1 * 2 + 2, "one feature, two targets: W (1, 2) and b (2)")
    }

    @Test(arguments: badInputs)
    func badInputIsAOneLineError(_ bad: BadInput) {
      let logs = Self.dir.file("logs-\(UUID().uuidString.prefix(6))")
      let r = DPTBinary.run(["train", "--log-dir", logs] + bad.arguments)
      #expect(r.status != 0)
      #expect(!r.timedOut)
      let errorLines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
      #expect(errorLines.count == 1, "stderr: \(r.stderr)")
      #expect(r.stderr.contains(bad.message), "stderr: \(r.stderr)")
      #expect(!FileManager.default.fileExists(atPath: logs), "a failed run must not leave a log folder")
    }

    @Test func badInputUnderMPIEndsEveryRankWithOneMessage() {
      let r = DPTBinary.mpirun(3, ["train", "--dataset", "csv:/nonexistent/data.csv"], timeout: 60)
      #expect(!r.timedOut)
      #expect(r.status != 0)
      let messages = r.stderr.components(separatedBy: "/nonexistent/data.csv: no such file").count - 1
      #expect(messages == 1, "printed by rank 0 only: \(r.stderr)")
    }

    @Test func fewerSamplesThanRanks() {
      let path = Self.file("two.csv", "x,y\n1,2\n3,4\n")
      let r = DPTBinary.mpirun(3, ["train", "--dataset", "csv:" + path, "--test-fraction", "0"], timeout: 60)
      #expect(!r.timedOut && r.status != 0)
      #expect(r.stderr.contains("2 training samples for 3 ranks"), "\(r.stderr)")
    }

    /// A file only one rank cannot read: every rank ends, with that rank's message.
    @Test func anErrorOnOneRankOnlyEndsEveryRank() {
      let good = Self.file("good.csv", "x,y\n1,2\n3,4\n5,6\n7,8\n")
      let r = Subprocess.run(
        ["mpirun", "--oversubscribe", "-np", "1", DPTBinary.path, "train", "--dataset", "csv:" + good, "--epochs", "2",
         ":", "-np", "1", DPTBinary.path, "train", "--dataset", "csv:/nonexistent/shard.csv", "--epochs", "2"],
        environment: DPTBinary.mpiEnvironment, timeout: 60)
      #expect(!r.timedOut)
      #expect(r.status != 0)
      #expect(r.stderr.contains("rank 1: /nonexistent/shard.csv: no such file"), "\(r.stderr)")
    }

    // MARK: Results do not depend on the number of ranks

    @Test func metricsAreEqualAcrossWorldSizes() throws {
      var results: [[String: Any]] = []
      for ranks in [1, 2, 3] {
        let r = DPTBinary.mpirun(ranks, ["train", "--dataset", "mnist", "--hidden", "32", "--epochs", "2", "--json"])
        #expect(r.status == 0 && !r.timedOut, "np \(ranks): \(r.stderr)")
        guard r.status == 0 else { return }
        results.append(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any])
      }
      #expect(results.map { $0["world_size"] as? Int } == [1, 2, 3])
      let reference = results[0]
      for r in results.dropFirst() {
        for key in ["train_loss", "test_loss"] {
          let a = r[key] as! Double, b = reference[key] as! Double
          #expect(abs(a - b) < 1e-4 * b, "\(key): \(a) vs \(b)")
        }
        for key in ["train_acc", "test_acc"] {
          let a = r[key] as! Double, b = reference[key] as! Double
          #expect(abs(a - b) <= 0.002, "\(key): \(a) vs \(b)")
        }
      }
    }

    @Test func logDirUnderMPI() throws {
      let logs = Self.dir.file("mpi-logs")
      let r = DPTBinary.mpirun(2, ["train", "--dataset", "corn", "--epochs", "4", "--log-dir", logs])
      #expect(r.status == 0, "\(r.stderr)")
      #expect(TemporaryDirectory.list(logs) == [".dpt-run.json", "accuracy.png", "accuracy.svg", "config.json", "findings.json", "loss.png", "loss.svg", "metrics.csv",
                                                 "metrics.jsonl", "report.html", "steps.jsonl"])
      let lines = try String(contentsOfFile: logs + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
      #expect(lines.count == 4)
      // Rank 0 alone prints: a header, the column names, 4 epoch rows (then the closed form beside SGD).
      let printed = r.stdout.split(separator: "\n")
      #expect(printed.count > 6 && printed[1].hasPrefix("epoch") && printed[2...5].allSatisfy { $0.trimmingCharacters(in: .whitespaces).first!.isNumber }, "\(r.stdout)")
      #expect(r.stdout.components(separatedBy: "epoch  train loss").count == 2, "one table, not one per rank")
    }
  }
}

