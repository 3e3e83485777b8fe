import Foundation
import Testing
import _TestSupport

func jsonObject(_ text: String) throws -> [String: Any] {
  try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
}

extension BinaryTests {
  /// `dpt lstsq`, and the closed form beside SGD in `dpt train`.
  @Suite struct LeastSquaresCommandTests {
    @Test func cornMatchesTheCourse() throws {
      let r = DPTBinary.run(["lstsq", "--dataset", "corn", "--json"])
      #expect(r.status == 0, "\(r.stderr)")
      let o = try jsonObject(r.stdout)
      let coefficients = o["coefficients"] as! [Double], intercept = o["intercept"] as! Double
      #expect(abs(intercept - 31.980671) < 1e-6)
      #expect(abs(coefficients[0] - 0.650051) < 1e-6 && abs(coefficients[1] - 1.109868) < 1e-6)
      let predictions = o["predictions"] as! [Double]
      for (p, e) in zip(predictions, [40.320448, 44.030519, 49.960326]) { #expect(abs(p - e) < 1e-6) }
      for key in ["train_mse", "test_mse", "r2", "condition_number", "method", "standard_errors"] {
        #expect(o.keys.contains(key), "\(key)")
      }
      #expect(o["method"] as? String == "normal")
      #expect((o["standard_errors"] as! [Double]).count == 3)
      let text = DPTBinary.run(["lstsq", "--dataset", "corn", "--predict", "6,4"])
      #expect(text.stdout.contains("40.320448") && text.stdout.contains("std error"))
    }

    @Test func resultsDoNotDependOnTheRankCount() throws {
      var results: [[String: Any]] = []
      for ranks in [1, 2, 3] {
        for method in ["normal", "qr"] {
          let r = DPTBinary.mpirun(ranks, ["lstsq", "--dataset", "synthetic:3000,12", "--method", method, "--json"])
          #expect(r.status == 0, "np \(ranks) \(method): \(r.stderr)")
          guard r.status == 0 else { continue }
          results.append(try jsonObject(r.stdout))
        }
      }
      let reference = results[0]["coefficients"] as! [Double]
      for o in results {
        let c = o["coefficients"] as! [Double]
        #expect(zip(c, reference).map { abs($0 - $1) }.max()! < 1e-12)
      }
    }

    @Test func mnistLeastSquaresClassifier() throws {
      // Plain least squares is singular on MNIST (always-zero pixels): --method normal says so and what to do.
      let normal = DPTBinary.mpirun(2, ["lstsq", "--dataset", "mnist", "--method", "normal"])
      #expect(normal.status != 0)
      #expect(normal.stderr.contains("X^T X is singular") && normal.stderr.contains("--ridge"), "\(normal.stderr)")
      // auto falls back to QR with the minimum-norm solution and says why.
      let auto = DPTBinary.mpirun(2, ["lstsq", "--dataset", "mnist", "--json"])
      #expect(auto.status == 0, "\(auto.stderr)")
      let a = try jsonObject(auto.stdout)
      #expect(a["method"] as? String == "qr")
      #expect((a["rank"] as! Int) < 785)
      #expect((a["method_reason"] as! String).contains("singular"))
      // A ridge makes it well posed: a 785 x 10 linear classifier.
      let ridge = DPTBinary.mpirun(2, ["lstsq", "--dataset", "mnist", "--ridge", "10", "--json"])
      let o = try jsonObject(ridge.stdout)
      #expect(o["method"] as? String == "normal")
      #expect((o["coefficients"] as! [[Double]]).count == 784 && (o["intercept"] as! [Double]).count == 10)
      #expect((o["test_acc"] as! Double) > 0.8)
    }

    @Test func trainPrintsTheClosedFormBesideSGD() throws {
      let r = DPTBinary.mpirun(2, ["train", "--dataset", "corn", "--json"])
      #expect(r.status == 0, "\(r.stderr)")
      let o = try jsonObject(r.stdout)
      // The run's own metrics at the top; the closed form and the SGD fit nested, so no key hides another.
      for key in ["train_loss", "train_rmse", "train_r2", "closed_form", "sgd", "max_abs_parameter_difference"] {
        #expect(o.keys.contains(key), "\(key)")
      }
      let closed = o["closed_form"] as! [String: Any]
      for key in ["coefficients", "intercept", "predictions", "train_mse", "test_mse", "r2", "condition_number", "method", "lambda"] {
        #expect(closed.keys.contains(key), "\(key)")
      }
      #expect(!o.keys.contains("coefficients") && !o.keys.contains("condition_number"))
      let sgd = o["sgd"] as! [String: Any]
      for key in ["coefficients", "intercept", "predictions", "train_mse", "test_mse", "r2"] { #expect(sgd.keys.contains(key)) }
      #expect((o["max_abs_parameter_difference"] as! Double) < 1e-5)
      let text = DPTBinary.run(["train", "--dataset", "corn", "--print-every", "500"])
      #expect(text.stdout.contains("closed form") && text.stdout.contains("largest |parameter difference|"))
      #expect(text.stdout.contains("standardised features, shown in original units"))
    }

    /// Every statistic dpt prints about the fits is the same on 1, 2 and 3 ranks: the condition numbers (once an
    /// estimate whose path turned on the order of the ranks' sums: 72 and 8.47 on 1 rank, 56 and 7.5 on 2; numpy
    /// gives 71.8 and 8.47), R^2, errors, parameters and predictions. --deterministic makes SGD's side bitwise equal.
    @Test func everyPrintedStatisticIsTheSameOnAnyRankCount() throws {
      func closedFormLines(_ ranks: Int, _ arguments: [String]) -> [String] {
        let r = DPTBinary.mpirun(ranks, arguments)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        // From the closed form's title (train) or the method line (lstsq, without its timing) to the end.
        guard let start = lines.firstIndex(where: { $0.hasPrefix("closed form") || $0.hasPrefix("method:") }) else { return lines }
        return lines[start...].map { $0.hasPrefix("method:") ? String($0.prefix { $0 != ";" }) : $0 }
      }
      for arguments in [["train", "--dataset", "corn", "--epochs", "100", "--deterministic"],
                        ["lstsq", "--dataset", "corn"], ["lstsq", "--dataset", "corn", "--standardize", "--method", "qr"]] {
        let one = closedFormLines(1, arguments)
        #expect(one.contains { $0.contains("condition number ~ ") })
        for ranks in [2, 3] { #expect(closedFormLines(ranks, arguments) == one, "\(arguments) on \(ranks) ranks") }
      }
      let text = closedFormLines(1, ["train", "--dataset", "corn", "--epochs", "10"]).joined(separator: "\n")
      #expect(text.contains("cond(X^T X) ~ 72 ") && text.contains("condition number ~ 8.47,"), "\(text)")
    }

    @Test func weightDecayIsTheRidgeOfTheComparison() throws {
      let r = DPTBinary.run(["train", "--dataset", "corn", "--weight-decay", "0.1", "--decay-bias", "false", "--epochs", "800", "--json"])
      let o = try jsonObject(r.stdout)
      #expect((o["closed_form"] as! [String: Any])["lambda"] as? Double == 10 * 1 * 0.1 / 2)
      #expect((o["max_abs_parameter_difference"] as! Double) < 1e-4)
    }

    @Test func badLeastSquaresInput() {
      let cases: [([String], String)] = [
        (["lstsq", "--dataset", "corn", "--ridge=-1"], "--ridge must be >= 0"),
        (["lstsq", "--dataset", "corn", "--predict", "6,x"], "--predict takes rows of numbers"),
        (["lstsq", "--dataset", "corn", "--predict", "6,4,1"], "--predict row 1 has 3 values; corn has 2 features"),
        (["lstsq", "--dataset", "csv:/nonexistent.csv"], "no such file"),
        (["lstsq", "--dataset", "synthetic:10"], "synthetic:ROWS,FEATURES"),
      ]
      for (arguments, message) in cases {
        let r = DPTBinary.run(arguments)
        #expect(r.status != 0, "\(arguments)")
        #expect(r.stderr.contains(message), "\(arguments): \(r.stderr)")
      }
    }
  }
}
