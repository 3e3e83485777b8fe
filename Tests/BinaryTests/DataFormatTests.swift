import Datasets
import Foundation
import TensorCore
import Testing
import _Support
import _TestSupport

extension BinaryTests {
  /// Data as people hold it (issue 32, item 2): numpy's npz (Keras's four arrays, from numpy.savez) and npy pair,
  /// each trained on 2 ranks and predicted back from the file.
  @Suite struct DataFormatTests {
    static let dir = TemporaryDirectory("dpt-formats")

    func csvRows(_ path: String) -> [[String]] {
      ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map {
        $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
      }
    }

    /// Trains on 2 ranks, then predicts `predictData` whole; returns predict's rows (header first).
    func trainAndPredict(_ name: String, _ dataset: String, _ options: [String], predict predictData: String) -> [[String]] {
      let ck = Self.dir.file("ck-\(name)"), out = Self.dir.file("p-\(name).csv")
      let t = DPTBinary.mpirun(2, ["train", "--dataset", dataset, "--checkpoint-dir", ck] + options)
      #expect(t.status == 0, "\(t.stderr)")
      let p = DPTBinary.run(["predict", "--checkpoint", ck, "--dataset", predictData, "--output", out])
      #expect(p.status == 0, "\(p.stderr)")
      return csvRows(out)
    }

    /// An npz of Keras's layout written by numpy.savez (uint8 digits (N, 28, 28), int64 labels) trains a CNN on 2
    /// ranks; predict reads the same file's x_test whole and its labels, and a second file of x alone; an npy pair of
    /// float rows and float targets is a regression, predicted back with its targets.
    @Test func numpyArraysTrainAndPredictBack() throws {
      let script = """
        import sys, os, gzip, numpy as np
        out, mnist = sys.argv[1:3]
        a = np.loadtxt(gzip.open(mnist), delimiter=",", dtype=np.int64)[np.random.default_rng(3).permutation(5000)]
        x, y = a[:, :784].astype(np.uint8).reshape(-1, 28, 28), a[:, 784]
        np.savez(os.path.join(out, "digits.npz"), x_train=x[:4000], y_train=y[:4000], x_test=x[4000:], y_test=y[4000:])
        np.savez_compressed(os.path.join(out, "new.npz"), x=x[4000:4010])
        rng = np.random.default_rng(4)
        f = rng.normal(size=(600, 3)) * [1, 10, 100]
        np.save(os.path.join(out, "f.npy"), f)
        np.save(os.path.join(out, "t.npy"), np.stack([f[:, 0] + 0.1 * f[:, 1], f[:, 2] / 100], 1))
        """
      let r = Subprocess.run(["python3", "-c", script, Self.dir.path, DataCache.mnist5kPath])
      try #require(r.status == 0, "\(r.stderr)")
      let digits = "npz:" + Self.dir.file("digits.npz")
      let rows = trainAndPredict("npz", digits, ["--model", "cnn:4,8", "--hidden", "32", "--epochs", "2"], predict: digits)
      #expect(rows.first == ["line", "label", "predicted"] + (0..<10).map { "p\($0)" } && rows.count == 1001)
      let right = rows.dropFirst().filter { $0.count > 2 && $0[1] == $0[2] }.count
      #expect(right > 800, "\(right) of 1000 test digits right")
      // A file of x alone: the same rows, the same predictions, without labels.
      let out = Self.dir.file("p-new.csv")
      let p = DPTBinary.run(["predict", "--checkpoint", Self.dir.file("ck-npz"), "--dataset", "npz:" + Self.dir.file("new.npz"), "--output", out])
      #expect(p.status == 0, "\(p.stderr)")
      let new = csvRows(out)
      #expect(new.count == 11 && new.first?.first == "line" && new.dropFirst().map { $0[1] } == rows[1...10].map { $0[2] })
      // npy:X,Y of floats: regression with two targets, standardised rows.
      let pair = "npy:" + Self.dir.file("f.npy") + "," + Self.dir.file("t.npy")
      let reg = trainAndPredict("npy", pair, ["--epochs", "30", "--lr", "0.05"], predict: pair)
      #expect(reg.first == ["line", "target1", "target2", "prediction1", "prediction2"] && reg.count == 601)
      let errors = reg.dropFirst().compactMap { r -> Double? in
        guard r.count == 5, let a = Double(r[1]), let b = Double(r[3]) else { return nil }
        return abs(a - b)
      }
      #expect(errors.count == 600 && errors.reduce(0, +) / 600 < 0.1, "the linear fit's mean error \(errors.reduce(0, +) / 600)")
    }

    /// A CSV with a text feature, a text label and gaps trains on 2 ranks with --missing mean; predict reads a new file
    /// (its columns in another order, gaps and all) by the saved categories and means, and writes class names; a
    /// category the model never saw is one line naming it.
    @Test func aCSVWithTextAndGapsTrainsAndPredictsBack() throws {
      var lines = ["size,color,weight,grade"]
      var rng = RandomSource(seed: 11, stream: 0)
      for i in 0..<600 {
        let color = ["red", "green", "blue"][i % 3], size = 10 + 3 * rng.normal(), weight = 50 + 10 * rng.normal()
        let score = (color == "red" ? 2 : 0) + (size - 10) / 3
        let grade = score > 1 ? "good" : score > -0.5 ? "fair" : "poor"
        lines.append([i % 17 == 0 ? "" : "\(size)", i % 29 == 0 ? "" : color, i % 13 == 0 ? "" : "\(weight)", grade].joined(separator: ","))
      }
      let train = Self.dir.write("shop.csv", lines.joined(separator: "\n") + "\n")
      let new = Self.dir.write("shop-new.csv", "color,weight,size\nred,,13\nblue,40,\ngreen,55,6\n")
      let rows = trainAndPredict("csv", "csv:" + train, ["--missing", "mean", "--epochs", "20"], predict: "csv:" + new)
      #expect(rows == [["line", "predicted", "p_fair", "p_good", "p_poor"]] + rows.dropFirst() && rows.count == 4)
      #expect(rows.dropFirst().map { $0[1] } == ["good", "fair", "poor"], "\(rows)")
      // The run's own test rows, by class name.
      let split = Self.dir.file("p-csv-split.csv")
      let p = DPTBinary.run(["predict", "--checkpoint", Self.dir.file("ck-csv"), "--rows", "test", "--output", split])
      #expect(p.status == 0, "\(p.stderr)")
      let test = csvRows(split).dropFirst()
      let right = test.filter { $0[1] == $0[2] }.count
      #expect(test.count == 120 && right >= 96, "\(right) of \(test.count) test rows right")
      let bad = Self.dir.write("shop-bad.csv", "color,weight,size\npurple,1,2\n")
      let b = DPTBinary.run(["predict", "--checkpoint", Self.dir.file("ck-csv"), "--dataset", "csv:" + bad, "--output", Self.dir.file("pb.csv")])
      #expect(b.status != 0 && b.stderr.contains("\(bad):2: column 'color' holds 'purple', a category the model was not trained on"), "\(b.stderr)")
      // Without --missing, the first gap is the error.
      let e = DPTBinary.run(["train", "--dataset", "csv:" + train, "--epochs", "1"])
      #expect(e.status != 0 && e.stderr.contains("shop.csv:2: column 'size' is empty: --missing drop"), "\(e.stderr)")
    }

    /// A folder of PNG digits, one subfolder per class (written with zlib, as any PNG encoder writes them), trains a
    /// CNN on 2 ranks; predict reads the folder back with labels from the folder names, and a folder of loose files
    /// without; --image-size resizes, and a model's size is asked for when it differs.
    @Test func aFolderOfPNGDigitsTrainsAndPredictsBack() throws {
      let script = """
        import sys, os, gzip, zlib, struct, numpy as np
        out, mnist = sys.argv[1:3]
        a = np.loadtxt(gzip.open(mnist), delimiter=",", dtype=np.int64)[np.random.default_rng(5).permutation(5000)[:2000]]
        def png(path, img):
            h, w = img.shape
            raw = b"".join(b"\\x00" + img[y].astype(np.uint8).tobytes() for y in range(h))
            chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
            ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
            open(path, "wb").write(b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
        names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
        for i, r in enumerate(a):
            d = os.path.join(out, "digits", names[r[784]]); os.makedirs(d, exist_ok=True)
            png(os.path.join(d, f"{i:04d}.png"), r[:784].reshape(28, 28))
        os.makedirs(os.path.join(out, "loose"), exist_ok=True)
        for i, r in enumerate(a[:3]):
            png(os.path.join(out, "loose", f"{names[r[784]]}.png"), r[:784].reshape(28, 28))
        """
      let r = Subprocess.run(["python3", "-c", script, Self.dir.path, DataCache.mnist5kPath])
      try #require(r.status == 0, "\(r.stderr)")
      let digits = "images:" + Self.dir.file("digits")
      let rows = trainAndPredict("png", digits, ["--model", "cnn:4,8", "--hidden", "32", "--epochs", "3"], predict: digits)
      let names = ["eight", "five", "four", "nine", "one", "seven", "six", "three", "two", "zero"]
      #expect(rows.first == ["file", "label", "predicted"] + names.map { "p_" + $0 } && rows.count == 2001)
      #expect(rows.dropFirst().allSatisfy { $0[0].hasPrefix($0[1] + "/") && $0[0].hasSuffix(".png") })
      let right = rows.dropFirst().filter { $0[1] == $0[2] }.count
      #expect(right > 1700, "\(right) of 2000 digits right")
      // Loose files: no label column; each named by its file.
      let out = Self.dir.file("p-loose.csv"), ck = Self.dir.file("ck-png")
      let p = DPTBinary.run(["predict", "--checkpoint", ck, "--dataset", "images:" + Self.dir.file("loose"), "--output", out])
      #expect(p.status == 0, "\(p.stderr)")
      let loose = csvRows(out)
      #expect(loose.first?.prefix(2) == ["file", "predicted"] && loose.count == 4)
      #expect(loose.dropFirst().filter { $0[0] == $0[1] + ".png" }.count >= 2, "\(loose)")
      // Another size: asked for; --image-size resizes.
      let small = DPTBinary.run(["predict", "--checkpoint", ck, "--dataset", "images:" + Self.dir.file("loose"), "--image-size", "14,14", "--output", Self.dir.file("p-small.csv")])
      #expect(small.status != 0 && small.stderr.contains("its images are 14x14 pixels but the model reads 28x28: give --image-size 28,28"), "\(small.stderr)")
      let resized = DPTBinary.mpirun(2, ["train", "--dataset", digits, "--image-size", "16,16", "--epochs", "1", "--model", "cnn:4,8"])
      #expect(resized.status == 0 && resized.stdout.contains("flatten"), "\(resized.stderr)")
    }
  }
}
