import Foundation
import Testing
import _Support
import _TestSupport

extension BinaryTests {
  @Suite struct SweepCommandTests {
    static let dir = TemporaryDirectory("dpt-sweep")

    func metrics(_ path: String) throws -> [[String: Any]] {
      try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try jsonObject(String($0)) }
    }

    /// Two settings on 2 groups of 1 rank: the files, and each setting equal to `dpt train` alone on 1 rank.
    @Test func sweepFilesAndEqualityWithStandaloneTraining() throws {
      let out = Self.dir.file("wd")
      let common = ["--dataset", "mnist", "--hidden", "32", "--epochs", "2"]
      let r = DPTBinary.mpirun(2, ["sweep"] + common + ["--weight-decay", "5e-2,5e-4", "--log-dir", out, "--tensorboard"])
      #expect(r.status == 0, "\(r.stderr)")
      #expect(r.stdout.contains("best (wd=5e-4): chosen by best validation accuracy"), "\(r.stdout)")
      let summary = try jsonObject(try String(contentsOfFile: out + "/summary.json", encoding: .utf8))
      let settings = summary["settings"] as! [[String: Any]]
      #expect(settings.count == 2 && settings.allSatisfy { $0["status"] as? String == "finished" })
      for f in ["summary.csv", "accuracy.svg", "loss.svg", "report.html"] {
        #expect(FileManager.default.fileExists(atPath: out + "/" + f), "\(f)")
      }
      for (i, wd) in ["5e-2", "5e-4"].enumerated() {
        let folder = out + "/" + (settings[i]["folder"] as! String)
        for f in ["config.json", "metrics.jsonl", "metrics.csv", "accuracy.svg", "loss.svg"] {
          #expect(FileManager.default.fileExists(atPath: folder + "/" + f), "\(folder)/\(f)")
        }
        let alone = Self.dir.file("alone-\(i)")
        let t = DPTBinary.run(["train"] + common + ["--weight-decay", wd, "--val-fraction", "0.1", "--log-dir", alone],
                              environment: ["OPENBLAS_NUM_THREADS": "1"])
        #expect(t.status == 0, "\(t.stderr)")
        let a = try metrics(folder + "/metrics.jsonl"), b = try metrics(alone + "/metrics.jsonl")
        #expect(a.count == 2 && b.count == 2)
        for (x, y) in zip(a, b) {
          for key in ["train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"] {
            #expect(x[key] as? Double == y[key] as? Double, "wd \(wd) \(key): \(x[key]!) in the sweep, \(y[key]!) alone")
          }
        }
      }
      // dpt plot redraws what is deleted.
      try FileManager.default.removeItem(atPath: out + "/accuracy.svg")
      try FileManager.default.removeItem(atPath: out + "/report.html")
      let p = DPTBinary.run(["plot", out])
      #expect(p.status == 0, "\(p.stderr)")
      #expect(FileManager.default.fileExists(atPath: out + "/accuracy.svg") && FileManager.default.fileExists(atPath: out + "/report.html"))
      // TensorBoard's own reader (PyPI's tensorboard, installed by scripts/test).
      let script = """
        import sys
        try:
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        except ImportError:
            print("tensorboard is not installed: pip install tensorboard (scripts/test does)"); sys.exit(2)
        import glob
        runs = sorted(glob.glob(sys.argv[1] + "/tensorboard/*/"))
        for run in runs:
            ea = EventAccumulator(run); ea.Reload()
            tags = set(ea.Tags()["scalars"])
            need = {"loss/train", "loss/test", "accuracy/train", "accuracy/test", "accuracy/val"}
            assert need <= tags, (run, tags)
            assert [e.step for e in ea.Scalars("accuracy/test")] == [1, 2], run
            assert [round(e.value, 6) for e in ea.Scalars("learning_rate")] == [0.1, 0.1], run
            # The HParams dashboard: each run's hyperparameters and its end.
            from tensorboard.plugins.hparams import plugin_data_pb2 as hp
            content = ea.PluginTagToContent("hparams")
            start = hp.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
            assert {k: v.number_value for k, v in start.hparams.items()}["weight_decay"] in (5e-2, 5e-4), run
            assert hp.HParamsPluginData.FromString(content["_hparams_/session_end_info"]).session_end_info.status == 1
        top = EventAccumulator(sys.argv[1] + "/tensorboard"); top.Reload()
        experiment = hp.HParamsPluginData.FromString(top.PluginTagToContent("hparams")["_hparams_/experiment"]).experiment
        assert [h.name for h in experiment.hparam_infos] == ["weight_decay"], experiment
        assert "accuracy/val" in [m.name.tag for m in experiment.metric_infos], experiment
        print(len(runs))
        """
      let py = Subprocess.run(["python3", "-c", script, out])
      #expect(py.status == 0, "TensorBoard's reader: \(py.stdout) \(py.stderr)")
      #expect(py.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "2")
    }

    /// One run in sight step by step (issue 31): steps.jsonl every 5 steps, TensorBoard's step/ scalars at the same
    /// steps, a histogram of each layer's parameters and gradients each epoch, and HParams for the run alone; read by
    /// TensorBoard's own reader. 2 ranks under shared memory's sharded step: the gradient histogram is gathered.
    @Test func aRunIsVisibleStepByStep() throws {
      let out = Self.dir.file("steps")
      let r = DPTBinary.mpirun(2, ["train", "--dataset", "mnist", "--hidden", "16", "--epochs", "2", "--log-dir", out, "--tensorboard",
                                   "--histograms", "--log-every", "5"])
      #expect(r.status == 0, "\(r.stderr)")
      let text = try String(contentsOfFile: out + "/steps.jsonl", encoding: .utf8)
      let lines: [JSON] = try text.split(separator: "\n").map { try JSON.parse(String($0)) }
      #expect(!lines.isEmpty)
      for l in lines {
        let step = l["step"]?.int ?? 0
        #expect(step % 5 == 0 && l["grad_norm"]?.double != nil && l["loss"]?.double != nil, "\(l.serialized())")
      }
      let script = """
        import sys
        try:
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        except ImportError:
            print("tensorboard is not installed: pip install tensorboard (scripts/test does)"); sys.exit(2)
        from tensorboard.plugins.hparams import plugin_data_pb2 as hp
        ea = EventAccumulator(sys.argv[1] + "/tensorboard", size_guidance={"histograms": 0, "scalars": 0}); ea.Reload()
        steps = [e.step for e in ea.Scalars("step/loss")]
        assert steps and all(s % 5 == 0 for s in steps), steps
        hist = set(ea.Tags()["histograms"])
        assert {"layer1_dense/parameters", "layer1_dense/gradients", "layer3_dense/parameters", "layer3_dense/gradients"} <= hist, hist
        h = ea.Histograms("layer1_dense/parameters")
        assert [e.step for e in h] == [1, 2] and h[0].histogram_value.num == 784 * 16 + 16, h[0]
        content = ea.PluginTagToContent("hparams")
        start = hp.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
        assert start.hparams["lr"].number_value == 0.1 and start.hparams["optimizer"].string_value == "sgd", start
        experiment = hp.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
        assert "accuracy/val" in [m.name.tag for m in experiment.metric_infos] or "accuracy/test" in [m.name.tag for m in experiment.metric_infos]
        print("ok")
        """
      let py = Subprocess.run(["python3", "-c", script, out])
      #expect(py.status == 0 && py.stdout.contains("ok"), "TensorBoard's reader: \(py.stdout) \(py.stderr)")
    }

    @Test func badSweepInput() {
      let cases: [(Int, [String], String)] = [
        (2, ["--ranks-per-trial", "3"], "--ranks-per-trial 3 does not divide the 2 ranks"),
        (1, ["--val-fraction", "0"], "--val-fraction must be > 0 for a sweep"),
        (1, ["--weight-decay", "1e-3,-1"], "--weight-decay must be >= 0"),
      ]
      for (ranks, arguments, message) in cases {
        let r = DPTBinary.mpirun(ranks, ["sweep", "--dataset", "mnist", "--epochs", "1", "--log-dir", Self.dir.file("bad")] + arguments)
        #expect(r.status != 0 && !r.timedOut, "\(arguments)")
        #expect(r.stderr.contains(message), "\(arguments): \(r.stderr)")
      }
      let t = DPTBinary.run(["train", "--dataset", "mnist", "--lr", "0.1,0.01"])
      #expect(t.stderr.contains("--lr takes one value in dpt train"))
      let p = DPTBinary.run(["plot", Self.dir.file("nothing-here")])
      #expect(p.status != 0 && p.stderr.contains("no such folder"), "\(p.stderr)")
    }
  }
}
