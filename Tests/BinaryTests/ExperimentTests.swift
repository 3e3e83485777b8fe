import FileFormats
import Foundation
import Testing
import _Support
import _TestSupport

extension BinaryTests {
  /// Experiments, not just runs (issue 20): sweep any option, repeat seeds, random search, halving, early stopping,
  /// divergence and convergence, overlays of several runs, and PNG charts.
  @Suite struct ExperimentTests {
    static let dir = TemporaryDirectory("dpt-experiments")

    func json(_ path: String) throws -> JSON { try JSON.parse(try String(contentsOfFile: path, encoding: .utf8)) }
    func isPNG(_ path: String) -> Bool {
      (FileManager.default.contents(atPath: path).map { Array($0.prefix(4)) } ?? []) == [0x89, 0x50, 0x4E, 0x47]
    }

    /// --axis over the optimizer with --seed 0,1: a key per axis, the mean with `_sd`, the seeds' own rows; momentum,
    /// which L-BFGS does not take, is left out of the lbfgs setting and its config.json says so.
    @Test func anyOptionIsAnAxisAndSeedsRepeat() throws {
      let out = Self.dir.file("optimizers")
      let r = DPTBinary.mpirun(2, ["sweep", "--dataset", "mnist", "--hidden", "16", "--epochs", "2", "--axis", "optimizer=sgd;lbfgs",
                                   "--momentum", "0.9", "--seed", "0,1", "--log-dir", out, "--json"])
      #expect(r.status == 0, "\(r.stderr)")
      let summary = try JSON.parse(r.stdout)
      #expect(summary["axes"]?.array?.compactMap(\.string) == ["optimizer"] && summary["seeds"]?.array?.count == 2)
      let settings = summary["settings"]?.array ?? []
      #expect(settings.compactMap { $0["optimizer"]?.string } == ["sgd", "lbfgs"], "\(summary.serialized())")
      for s in settings {
        #expect(s["best_val_acc"]?.double != nil && s["best_val_acc_sd"]?.double != nil, "\(s.serialized())")
        #expect(s["seeds"]?.array?.compactMap(\.int) == [0, 1] && s["runs"]?.array?.count == 2)
        let mean = (s["runs"]?.array ?? []).compactMap { $0["best_val_acc"]?.double }.reduce(0, +) / 2
        #expect(abs(mean - (s["best_val_acc"]?.double ?? -1)) < 1e-12, "the row is the mean of its seeds")
        for run in s["runs"]?.array ?? [] {
          let config = try json(out + "/" + (run["folder"]?.string ?? "") + "/config.json")
          let lbfgs = s["optimizer"]?.string == "lbfgs"
          #expect(config["optimizer"]?.string == s["optimizer"]?.string && config["seed"]?.int == run["seed"]?.int)
          #expect(config["left_out"]?.array?.compactMap(\.string) == (lbfgs ? ["--momentum"] : []), "\(config.serialized())")
          #expect(lbfgs ? config["momentum"] == .null : config["momentum"]?.double == 0.9, "\(config.serialized())")
        }
      }
      #expect(["best", "tie"].contains(summary["findings"]?.array?.first?["kind"]?.string ?? ""), "\(summary.serialized())")
      for chart in ["accuracy", "loss", "validation_curve"] {
        #expect(FileManager.default.fileExists(atPath: out + "/\(chart).svg") && isPNG(out + "/\(chart).png"), "\(chart)")
      }
      // The axis is parsed like the option it names.
      let bad = DPTBinary.run(["sweep", "--dataset", "mnist", "--axis", "optimizer=sgd;newton", "--log-dir", Self.dir.file("bad")])
      #expect(bad.status != 0 && bad.stderr.contains("newton"), "\(bad.stderr)")
    }

    /// `dpt launch -np 2 sweep ARGS --log-dir LOGS`, stopped by SIGTERM to the launch once its first trial has
    /// finished: it exits 143.
    func stopWithSIGTERM(_ arguments: [String], logs: String) throws {
      let job = Subprocess.launch([DPTBinary.path, "launch", "-np", "2", "sweep"] + arguments + ["--log-dir", logs, "--", "--oversubscribe"])
      let deadline = Date().addingTimeInterval(60)
      while !FileManager.default.fileExists(atPath: logs + "/summary.json") && Date() < deadline { usleep(50_000) }
      let launcher = try #require(Subprocess.children(of: job.processIdentifier).first, "dpt launch not found")
      kill(launcher, SIGTERM)
      let stopped = job.wait(timeout: 120)
      #expect(stopped.status == 143, "\(stopped.status) \(stopped.stderr)")
    }

    /// TPE with Hyperband on 2 groups, stopped by SIGTERM and resumed: the resumed sweep proposes the rest of its
    /// settings (the search's state came from sweep.json) and prunes each at its bracket's rungs only (for 9 epochs,
    /// eta 3: 1 and 3, or 3; the fourth setting is in the bracket that prunes nothing).
    @Test func hyperbandWithTPEResumesAfterSIGTERM() throws {
      let logs = Self.dir.file("hyperband")
      try stopWithSIGTERM(["--dataset", "mnist", "--hidden", "64", "--epochs", "9", "--axis", "lr=loguniform(1e-4,1)", "--samples", "40",
                           "--search", "tpe", "--prune", "hyperband"], logs: logs)
      let before = (try json(logs + "/summary.json"))["settings"]?.array?.count ?? 0
      #expect(before < 40, "stopped before the end: \(before) settings")
      let r = DPTBinary.mpirun(2, ["sweep", "--resume", logs, "--json"])
      #expect(r.status == 0, "\(r.stderr)")
      let settings = try JSON.parse(r.stdout)["settings"]?.array ?? []
      #expect(settings.count == 40, "\(settings.count) settings")
      #expect(settings.contains { $0["status"]?.string == "pruned" }, "\(settings.compactMap { $0["status"]?.string })")
      for s in settings {
        let epochs = s["epochs"]?.int ?? 0, folder = s["folder"]?.string ?? ""
        if s["status"]?.string == "pruned" { #expect([1, 3].contains(epochs), "\(folder) pruned after \(epochs) epochs") }
        if folder.hasPrefix("04_") { #expect(s["status"]?.string == "finished" && epochs == 9, "\(s.serialized())") }
      }
    }

    /// Population-based training on 2 groups, stopped by SIGTERM and resumed: every member ends at the last epoch
    /// with its whole curve (a copied member's starts with its donor's), the segments before are "continued" or
    /// "replaced", the exploits are findings, and replay.sh trains the best member again to the same bits.
    @Test func populationBasedTrainingResumesAndReplays() throws {
      let logs = Self.dir.file("pbt")
      try stopWithSIGTERM(["--dataset", "mnist", "--hidden", "128", "--batch-size", "8", "--epochs", "8", "--axis", "lr=loguniform(1e-4,0.3)",
                           "--search", "pbt", "--population", "4", "--exploit-every", "1"], logs: logs)
      let r = DPTBinary.mpirun(2, ["sweep", "--resume", logs, "--json"], timeout: 600)
      #expect(r.status == 0, "\(r.stderr)")
      let summary = try JSON.parse(r.stdout)
      let settings = summary["settings"]?.array ?? []
      let finals = settings.filter { !["continued", "replaced"].contains($0["status"]?.string ?? "") }
      #expect(finals.count == 4 && settings.count > 4, "\(settings.compactMap { $0["status"]?.string })")
      for s in finals {
        let rows = try String(contentsOfFile: logs + "/" + (s["folder"]?.string ?? "") + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let epochs = try rows.map { try JSON.parse(String($0))["epoch"]?.int ?? 0 }
        #expect(epochs == Array(1...8), "\(s["setting"]?.string ?? ""): \(epochs)")
      }
      let exploits = (summary["findings"]?.array ?? []).filter { $0["kind"]?.string == "exploit" }
      #expect(!exploits.isEmpty, "\(summary["findings"]?.serialized() ?? "")")
      // The best member again, from replay.sh, to the same bits as its sweep trial's checkpoint.
      let script = try String(contentsOfFile: logs + "/replay.sh", encoding: .utf8).replacingOccurrences(of: " dpt train ", with: " \(DPTBinary.path) train ")
      let work = Self.dir.file("pbt-replay")
      try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
      let replay = Subprocess.run(["sh", "-c", "cd \(work) && " + script.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("set") }.joined(separator: "\n")],
                                  environment: DPTBinary.mpiEnvironment, timeout: 600)
      #expect(replay.status == 0, "\(replay.stderr)")
      let best = try #require(finals.first { $0["setting"]?.string == summary["best"]?.string })
      let replayed = try Checkpoint(decoding: try Checkpoint.readBytes(work + "/runs/pbt-replay"), path: "replay")
      let swept = try Checkpoint(decoding: try Checkpoint.readBytes(logs + "/" + (best["folder"]?.string ?? "")), path: "sweep")
      #expect(replayed.section("parameters") == swept.section("parameters") && replayed.epoch == 8 && swept.epoch == 8)
    }

    /// --samples with a log-uniform axis, pruned by successive halving: seeded draws inside the range, pruned
    /// settings keep their curves, at least one setting finishes every epoch.
    @Test func randomSearchWithHalving() throws {
      let out = Self.dir.file("random")
      let args = ["sweep", "--dataset", "mnist", "--hidden", "16", "--epochs", "4", "--axis", "weight-decay=loguniform(1e-6,1e-1)",
                  "--samples", "6", "--prune", "halving", "--json"]
      let r = DPTBinary.mpirun(2, args + ["--log-dir", out])
      #expect(r.status == 0, "\(r.stderr)")
      let settings = try JSON.parse(r.stdout)["settings"]?.array ?? []
      let decays = settings.compactMap { $0["weight_decay"]?.double }
      #expect(decays.count == 6 && decays.allSatisfy { $0 >= 1e-6 && $0 <= 1e-1 }, "\(decays)")
      let statuses = settings.compactMap { $0["status"]?.string }
      #expect(statuses.contains("pruned") && statuses.contains("finished"), "\(statuses)")
      for s in settings where s["status"]?.string == "pruned" {
        let rows = try String(contentsOfFile: out + "/" + (s["folder"]?.string ?? "") + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(rows.count >= 1 && rows.count < 4, "a pruned setting keeps its curve up to its rung")
      }
      // The same seed draws the same values.
      let again = DPTBinary.mpirun(2, args + ["--log-dir", Self.dir.file("random-again")])
      let decays2 = (try JSON.parse(again.stdout)["settings"]?.array ?? []).compactMap { $0["weight_decay"]?.double }
      #expect(Set(decays2) == Set(decays))
    }

    /// --early-stop in dpt train: without a validation set it watches the test loss and says so, stops with status
    /// stopped-early, keeps the best epoch as best.dptc, and export exports it and says so.
    @Test func earlyStoppingKeepsTheBestEpoch() throws {
      let logs = Self.dir.file("early-logs"), ck = Self.dir.file("early-ck")
      let r = DPTBinary.run(["train", "--dataset", "mnist", "--hidden", "64", "--epochs", "40", "--lr", "0.5", "--early-stop", "2",
                             "--log-dir", logs, "--checkpoint-dir", ck])
      #expect(r.status == 0, "\(r.stderr)")
      #expect(r.stdout.contains("stops when the test loss has not improved for 2 epochs (there is no validation set"), "\(r.stdout)")
      #expect(r.stdout.contains("stopped early after epoch") && r.stdout.contains("best.dptc keeps epoch"), "\(r.stdout)")
      let config = try json(logs + "/config.json")
      #expect(config["status"]?.string == "stopped-early", "\(config.serialized())")
      let rows = try String(contentsOfFile: logs + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { try JSON.parse(String($0)) }
      #expect(rows.count < 40)
      let losses = rows.compactMap { $0["test_loss"]?.double }
      let best = losses.indices.min { losses[$0] < losses[$1] }! + 1
      #expect(best == rows.count - 2, "two epochs without improvement after the best")
      #expect(FileManager.default.fileExists(atPath: ck + "/best.dptc"))
      let model = Self.dir.file("early.safetensors")
      let e = DPTBinary.run(["export", "--checkpoint", ck, "--output", model])
      #expect(e.status == 0 && e.stdout.contains("epoch \(best) (the best epoch, kept by --early-stop"), "\(e.stdout) \(e.stderr)")
    }

    /// A loss that grows 1e4-fold is divergence (a non-zero exit, and --json prints the error); L-BFGS at its
    /// tolerance says it converged and stops; a full batch is recorded as the number of rows.
    @Test func divergenceAndConvergence() throws {
      let diverged = DPTBinary.run(["train", "--dataset", "corn", "--epochs", "40", "--lr", "1", "--json"])
      #expect(diverged.status != 0)
      let error = try JSON.parse(diverged.stdout)["error"]?.string ?? ""
      #expect(error.contains("diverged at epoch") && error.contains("--diverge-factor 10000"), "\(diverged.stdout)")
      let factor = DPTBinary.run(["train", "--dataset", "corn", "--epochs", "40", "--lr", "1", "--diverge-factor", "1e30"])
      #expect(factor.status == 0, "a larger factor lets it run: \(factor.stderr)")
      let logs = Self.dir.file("lbfgs")
      let lbfgs = DPTBinary.run(["train", "--dataset", "corn", "--model", "linear", "--optimizer", "lbfgs", "--epochs", "60",
                                 "--log-dir", logs, "--json"])
      #expect(lbfgs.status == 0, "\(lbfgs.stderr)")
      let summary = try JSON.parse(lbfgs.stdout)
      #expect(summary["status"]?.string == "converged" && (summary["epoch"]?.int ?? 60) < 60, "\(lbfgs.stdout)")
      #expect(lbfgs.stderr.contains("converged at iteration"), "\(lbfgs.stderr)")
      let config = try json(logs + "/config.json")
      #expect(config["batch_size"]?.int == 10 && config["status"]?.string == "converged", "\(config.serialized())")
    }

    /// dpt plot overlays several folders (a run and a sweep) into --output, by evaluations; it never replaces an
    /// existing overlay without --overwrite. A sweep on a tiny table warns that validation is a handful of rows.
    @Test func overlaysAndSmallValidationSets() throws {
      let run = Self.dir.file("overlay-run"), sweep = Self.dir.file("overlay-sweep"), out = Self.dir.file("overlay")
      #expect(DPTBinary.run(["train", "--dataset", "corn", "--epochs", "5", "--log-dir", run]).status == 0)
      let s = DPTBinary.mpirun(2, ["sweep", "--dataset", "corn", "--epochs", "5", "--weight-decay", "0,0.1", "--log-dir", sweep])
      #expect(s.status == 0, "\(s.stderr)")
      #expect((s.stdout + s.stderr).contains("the validation set has 1 row"), "\(s.stdout)")
      let p = DPTBinary.run(["plot", run, sweep, "--output", out, "--x", "evaluations"])
      #expect(p.status == 0 && p.stdout.contains("3 lines from 2 folders"), "\(p.stdout) \(p.stderr)")
      let svg = try String(contentsOfFile: out + "/loss.svg", encoding: .utf8)
      #expect(svg.contains("overlay-run") && svg.contains("overlay-sweep: wd=0.1") && svg.contains("evaluations"))
      #expect(isPNG(out + "/loss.png"))
      let again = DPTBinary.run(["plot", run, sweep, "--output", out])
      #expect(again.status != 0 && again.stderr.contains("--overwrite"), "\(again.stderr)")
      #expect(DPTBinary.run(["plot", run, sweep, "--output", out, "--overwrite"]).status == 0)
    }
  }
}
