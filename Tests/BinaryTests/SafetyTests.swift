import FileFormats
import Foundation
import Testing
import _Support
import _TestSupport

extension BinaryTests {
  /// Your files are safe (issue 18): dpt deletes only what it wrote, never writes over its inputs, runs one at a time
  /// per folder, and every crafted file is a one-line error. Each test is one numbered item of the issue.
  @Suite struct SafetyTests {
    static let dir = TemporaryDirectory("dpt-safety")
    let base = ["train", "--dataset", "corn", "--epochs", "2"]

    func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    /// A clean failure: one "Error:" line, a status from 1 to 64 (no trap: 132, 134, 139), no backtrace.
    func expectCleanError(_ r: Subprocess.Result, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
      #expect(r.status >= 1 && r.status <= 64 && !r.timedOut, "status \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
      #expect(r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count == 1, "\(r.stderr)", sourceLocation: sourceLocation)
      #expect(r.stderr.contains(message), "expected '\(message)' in: \(r.stderr)", sourceLocation: sourceLocation)
      #expect(!r.stderr.contains("Backtrace") && !r.stderr.contains("Fatal error"), "\(r.stderr)", sourceLocation: sourceLocation)
    }

    /// 1. --overwrite and --resume delete only the files dpt's manifests list: a project folder survives both.
    @Test func overwriteAndResumeDeleteNothingDptDidNotWrite() throws {
      let h = Self.dir.file("H"), h2 = Self.dir.file("H2")
      for folder in [h, h2] {
        try FileManager.default.createDirectory(atPath: folder + "/projectA/src", withIntermediateDirectories: true)
        Self.dir.write(Files.lastComponent(folder) + "/projectA/config.json", "{}")
        Self.dir.write(Files.lastComponent(folder) + "/projectA/src/main.c", "work")
      }
      let r = DPTBinary.run(base + ["--log-dir", h, "--overwrite"])
      expectCleanError(r, "--log-dir \(h) holds files dpt did not write (projectA)")
      #expect(read(h + "/projectA/src/main.c") == "work")
      let ck = Self.dir.file("ck1")
      #expect(DPTBinary.run(base + ["--checkpoint-dir", ck]).status == 0)
      let resumed = DPTBinary.run(["train", "--dataset", "corn", "--epochs", "4", "--resume", ck, "--log-dir", h2])
      expectCleanError(resumed, "holds files dpt did not write (projectA)")
      #expect(read(h2 + "/projectA/src/main.c") == "work")
      // A sweep with --overwrite into a folder of other runs removes none of them.
      let runs = Self.dir.file("runs")
      #expect(DPTBinary.run(base + ["--log-dir", runs + "/mnist"]).status == 0)
      let sweep = DPTBinary.run(["sweep", "--dataset", "corn", "--epochs", "1", "--weight-decay", "0,0.1", "--log-dir", runs, "--overwrite"])
      expectCleanError(sweep, "holds files dpt did not write (mnist)")
      #expect(read(runs + "/mnist/metrics.jsonl") != nil)
    }

    /// 2. One-letter output folders work (Foundation's path methods trapped on them).
    @Test func oneLetterFolders() throws {
      let cwd = Self.dir.file("letters")
      try FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: true)
      let r = Subprocess.run([DPTBinary.path] + base + ["--log-dir", "Z", "--checkpoint-dir", "Y"], directory: cwd)
      #expect(r.status == 0, "\(r.stderr)")
      #expect(read(cwd + "/Z/metrics.jsonl")?.split(separator: "\n").count == 2 && FileManager.default.fileExists(atPath: cwd + "/Y/checkpoint.dptc"))
    }

    /// 3. A resume appends to its own log; a failed resume or a failed --overwrite changes nothing.
    @Test func resumeAppendsAndFailuresChangeNothing() throws {
      let l = Self.dir.file("L"), c = Self.dir.file("C")
      #expect(DPTBinary.run(base + ["--log-dir", l, "--checkpoint-dir", c]).status == 0)
      let r = DPTBinary.run(["train", "--dataset", "corn", "--epochs", "4", "--resume", c, "--log-dir", l, "--checkpoint-dir", c])
      #expect(r.status == 0, "\(r.stderr)")
      let epochs = try ReportFiles_epochs(l)
      #expect(epochs == [1, 2, 3, 4], "epochs 1-2 kept, 3-4 appended: \(epochs)")
      let before = try TemporaryDirectory.list(l).map { ($0, try Data(contentsOf: URL(fileURLWithPath: l + "/" + $0))) }
      let truncated = Self.dir.file("T")
      try FileManager.default.createDirectory(atPath: truncated, withIntermediateDirectories: true)
      let bytes = try Data(contentsOf: URL(fileURLWithPath: c + "/checkpoint.dptc"))
      FileManager.default.createFile(atPath: truncated + "/checkpoint.dptc", contents: bytes.prefix(100))
      expectCleanError(DPTBinary.run(["train", "--dataset", "corn", "--epochs", "6", "--resume", truncated, "--log-dir", l]), "truncated")
      expectCleanError(DPTBinary.run(["train", "--dataset", "csv:/nonexistent.csv", "--target", "value", "--log-dir", l, "--overwrite"]),
                       "no such file")
      let after = try TemporaryDirectory.list(l).map { ($0, try Data(contentsOf: URL(fileURLWithPath: l + "/" + $0))) }
      #expect(after.map(\.0) == before.map(\.0) && after.map(\.1) == before.map(\.1), "nothing of L changed")
      // Interrupted twice more, resumed each time: still every epoch exactly once.
      for total in [5, 6] {
        #expect(DPTBinary.run(["train", "--dataset", "corn", "--epochs", "\(total)", "--resume", c, "--log-dir", l, "--checkpoint-dir", c]).status == 0)
      }
      #expect(try ReportFiles_epochs(l) == [1, 2, 3, 4, 5, 6])
    }

    func ReportFiles_epochs(_ folder: String) throws -> [Int] {
      try String(contentsOfFile: folder + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        .map { try JSON.parse(String($0))["epoch"]!.int! }
    }

    /// 4. An output that is an input (also through a link) is refused before anything is written.
    @Test func inputsAreNeverOutputs() throws {
      var rows = "a,b,y\n"
      for i in 0..<30 { rows += "\(i),\(i % 7),\(2 * i + 1)\n" }
      let data = Self.dir.write("mydata.csv", rows)
      let ck = Self.dir.file("io-ck")
      #expect(DPTBinary.run(["train", "--dataset", "csv:" + data, "--epochs", "2", "--checkpoint-dir", ck]).status == 0)
      let original = try Data(contentsOf: URL(fileURLWithPath: ck + "/checkpoint.dptc"))
      expectCleanError(DPTBinary.run(["predict", "--checkpoint", ck, "--output", data]), "is also an output")
      #expect(read(data) == rows)
      let link = Self.dir.file("link.csv")
      try? FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: data)
      expectCleanError(DPTBinary.run(["predict", "--checkpoint", ck, "--output", link]), "is also an output")
      expectCleanError(DPTBinary.run(["export", "--checkpoint", ck, "--output", ck + "/checkpoint.dptc"]), "--checkpoint \(ck)/checkpoint.dptc is also an output")
      #expect(try Data(contentsOf: URL(fileURLWithPath: ck + "/checkpoint.dptc")) == original)
      // A data file inside a log folder that --overwrite would replace.
      let l = Self.dir.file("io-logs")
      #expect(DPTBinary.run(base + ["--log-dir", l]).status == 0)
      expectCleanError(DPTBinary.run(["train", "--dataset", "csv:" + l + "/metrics.csv", "--target", "value", "--log-dir", l, "--overwrite"]),
                       "is also an output: --log-dir would replace")
    }

    /// 5. One run per folder: a second run into a folder in use is an error naming the first's pid and host.
    @Test func oneRunPerFolder() throws {
      let l = Self.dir.file("busy")
      let first = Subprocess.launch([DPTBinary.path, "train", "--dataset", "fashion-mnist", "--hidden", "16", "--epochs", "1000",
                                     "--log-dir", l, "--checkpoint-dir", l])
      defer {
        for p in Subprocess.children(of: first.processIdentifier) { kill(p, SIGKILL) }
        _ = first.wait(timeout: 30)
      }
      let deadline = Date().addingTimeInterval(60)
      while !FileManager.default.fileExists(atPath: l) && Date() < deadline { usleep(20_000) }
      usleep(200_000)
      for flag in ["--log-dir", "--checkpoint-dir"] {
        let second = DPTBinary.run(["train", "--dataset", "corn", "--epochs", "1", flag, l, "--overwrite"])
        expectCleanError(second, "\(flag) \(l) is in use by another run (dpt train, pid ")
        #expect(second.stderr.contains(" on \(ProcessInfo.processInfo.hostName))"), "\(second.stderr)")
      }
    }

    /// 6. Files dpt did not write are never replaced, and a folder of someone else's (here through a link) is refused.
    @Test func foreignFilesAreNotReplaced() throws {
      let l = Self.dir.file("foreign")
      try FileManager.default.createDirectory(atPath: l, withIntermediateDirectories: true)
      Self.dir.write("foreign/report.html", "my report")
      expectCleanError(DPTBinary.run(base + ["--log-dir", l]), "holds files dpt did not write (report.html)")
      #expect(read(l + "/report.html") == "my report")
      let elsewhere = Self.dir.file("system-like")
      try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
      Self.dir.write("system-like/passwd", "root:x:0:0")
      let link = Self.dir.file("link-to-system")
      try? FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: elsewhere)
      expectCleanError(DPTBinary.run(base + ["--log-dir", link]), "holds files dpt did not write (passwd)")
      #expect(TemporaryDirectory.list(elsewhere) == ["passwd"])
    }

    /// 7. Crafted safetensors and checkpoints (checksums recomputed) are one-line errors, never a trap.
    @Test func craftedFilesAreErrors() throws {
      func safetensors(_ name: String, _ header: String, data: Int = 4) -> String {
        let h = Array(header.utf8)
        return Self.dir.write(name, (0..<8).map { UInt8((UInt64(h.count) >> (8 * UInt64($0))) & 0xFF) } + h + [UInt8](repeating: 0, count: data))
      }
      let cases: [(String, String)] = [
        (safetensors("shape.st", #"{"0.weight":{"dtype":"F32","shape":[1e300],"data_offsets":[0,4]}}"#), "not a safetensors file"),
        (safetensors("offset.st", #"{"0.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,1e300]}}"#), "not a safetensors file"),
        (safetensors("big.st", #"{"0.weight":{"dtype":"F32","shape":[1],"data_offsets":[9223372036854774784,9223372036854774788]}}"#), "not a safetensors file"),
        (safetensors("deep.st", "{\"a\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"), "nested more than"),
        (safetensors("overlap.st", #"{"0.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"0.bias":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: 8), "overlaps"),
        (safetensors("dup.st", #"{"0.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"0.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: 8), "appears twice"),
      ]
      for (file, message) in cases {
        expectCleanError(DPTBinary.run(base + ["--init", file]), message)
      }
      let ck = Self.dir.file("craft-ck")
      #expect(DPTBinary.run(base + ["--checkpoint-dir", ck]).status == 0)
      let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: ck + "/checkpoint.dptc")))
      let length = Int(good[12]) | Int(good[13]) << 8 | Int(good[14]) << 16 | Int(good[15]) << 24
      let header = String(decoding: good[20..<20 + length], as: UTF8.self), payload = Array(good[(20 + length)...])
      func crafted(_ name: String, _ edit: (String) -> String) -> String {
        let h = Array(edit(header).utf8)
        let le = { (v: UInt32) in (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xFF) } }
        let folder = Self.dir.file("crafted-" + name)
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        Self.dir.write("crafted-\(name)/checkpoint.dptc", Array(good[0..<12]) + le(UInt32(h.count)) + le(CRC32C.checksum(h)) + h + payload)
        return folder
      }
      func replacing(_ pattern: String, _ with: String) -> (String) -> String {
        { $0.replacingOccurrences(of: pattern, with: with, options: .regularExpression, range: $0.range(of: pattern, options: .regularExpression)) }
      }
      let crc = header.range(of: #"(?<="payload_crc32c":)\d+"#, options: .regularExpression).map { UInt64(header[$0])! } ?? 0
      for (name, edit) in [("epoch", replacing(#""epoch":\d+"#, #""epoch":1e300"#)),
                           ("bytes", replacing(#""bytes":\d+"#, #""bytes":1e300"#)),
                           ("negative", replacing(#""bytes":\d+"#, #""bytes":-40"#)),
                           ("shape", replacing(#""shape":\[\d+"#, #""shape":[1e300"#)),
                           ("crc", replacing(#""payload_crc32c":\d+"#, "\"payload_crc32c\":\(crc + (1 << 32))")),
                           ("deep", { String($0.dropLast()) + ",\"deep\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}" })] {
        let folder = crafted(name, edit)
        for run in [DPTBinary.run(["eval", "--checkpoint", folder]), DPTBinary.run(base + ["--epochs", "5", "--resume", folder]),
                    DPTBinary.run(["export", "--checkpoint", folder, "--output", Self.dir.file("x.safetensors")])] {
          expectCleanError(run, "crafted-\(name)/checkpoint.dptc")
        }
      }
      // Settings inside the config are numbers too: a seed or width of 1e300 cannot trap the rebuilding of the model.
      for (name, edit) in [("seed", replacing(#""seed":\d+"#, #""seed":1e300"#)), ("hidden", replacing(#""hidden":\[\]"#, #""hidden":[1e300]"#))] {
        let r = DPTBinary.run(["eval", "--checkpoint", crafted(name, edit)])
        #expect(r.status == 0 || (r.status <= 64 && r.stderr.hasPrefix("Error:")), "\(name): \(r.status) \(r.stderr)")
      }
      // dpt plot on a deeply nested metrics line, and a model too large for the machine.
      let logs = Self.dir.file("deep-plot")
      #expect(DPTBinary.run(base + ["--log-dir", logs]).status == 0)
      Self.dir.write("deep-plot/metrics.jsonl", String(repeating: "[", count: 100_000) + "\n")
      expectCleanError(DPTBinary.run(["plot", logs]), "metrics.jsonl:1: not a JSON object")
      expectCleanError(DPTBinary.run(["train", "--dataset", "mnist", "--hidden", "10000000", "--epochs", "1"]), "the model needs about")
      expectCleanError(DPTBinary.run(["train", "--dataset", "mnist", "--model", "cnn:100000", "--epochs", "1"]), "this host has")
      let huge = DPTBinary.run(["train", "--dataset", "mnist", "--hidden", "100000000"])
      #expect(huge.status == 64 && huge.stderr.contains("--hidden width 100000000 is more than"), "\(huge.stderr)")
    }

    /// 8. gzip inflates at most what the IDX header declares; --init is never inflated nor read from a device.
    @Test func gzipAndDevicesAreBounded() throws {
      let folder = Self.dir.file("bomb")
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      let header: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 100, 0, 0, 0, 28, 0, 0, 0, 28]  // 78,400 bytes declared
      Self.dir.writeGzip("bomb/train-images-idx3-ubyte.gz", header + [UInt8](repeating: 0, count: 50_000_000))
      Self.dir.write("bomb/train-labels-idx1-ubyte", [0, 0, 8, 1, 0, 0, 0, 100] + (0..<100).map { UInt8($0 % 10) })
      Self.dir.write("bomb/t10k-images-idx3-ubyte", [0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28] + [UInt8](repeating: 0, count: 7840))
      Self.dir.write("bomb/t10k-labels-idx1-ubyte", [0, 0, 8, 1, 0, 0, 0, 10] + (0..<10).map { UInt8($0) })
      let r = DPTBinary.run(["train", "--dataset", "idx:" + folder, "--epochs", "1"])
      expectCleanError(r, "inflates to more than the 78416 bytes its IDX header declares")
      #expect(r.seconds < 5, "stopped at the declared size: \(r.seconds) s")
      expectCleanError(DPTBinary.run(base + ["--init", "/dev/zero"]), "/dev/zero: is not a regular file")
      let st = Self.dir.writeGzip("weights.safetensors", Array(#"{"a":1}"#.utf8))
      expectCleanError(DPTBinary.run(base + ["--init", st]), "not a safetensors file")
    }

    /// 9. A sweep has the watchdog and the signals of dpt train: a stopped rank ends it naming the rank; SIGTERM
    /// keeps the finished settings in summary.json.
    @Test func sweepsStopCleanly() throws {
      let grid = ["sweep", "--dataset", "fashion-mnist", "--hidden", "16", "--epochs", "3", "--weight-decay", "0,1e-4,1e-3,1e-2"]
      let stalled = Self.dir.file("sweep-stalled")
      let job = Subprocess.launch(["mpirun", "-np", "2", "--oversubscribe", DPTBinary.path] + grid + ["--log-dir", stalled, "--stall-timeout", "4"],
                                  environment: DPTBinary.mpiEnvironment)
      let deadline = Date().addingTimeInterval(60)
      while !FileManager.default.fileExists(atPath: stalled + "/01_wd-0/metrics.jsonl") && Date() < deadline { usleep(50_000) }
      let victim = try #require(Subprocess.rankProcess(marker: stalled, rank: 1))
      let stoppedAt = Date()
      kill(victim, SIGSTOP)
      let r = job.wait(timeout: 60)
      kill(victim, SIGKILL)
      #expect(!r.timedOut && r.status != 0)
      #expect(Date().timeIntervalSince(stoppedAt) < 4 + 12)
      #expect(r.stderr.contains("rank 1 (host ") && r.stderr.contains("stopped answering"), "\(r.stderr)")
      // SIGTERM to the ranks (as a scheduler sends it): the sweep ends after the running settings' next step,
      // summary.json holds what finished, and mpirun passes on 143.
      let term = Self.dir.file("sweep-term")
      let job2 = Subprocess.launch(["mpirun", "-np", "2", "--oversubscribe", DPTBinary.path] + grid + ["--log-dir", term],
                                   environment: DPTBinary.mpiEnvironment)
      while !FileManager.default.fileExists(atPath: term + "/summary.json") && Date() < deadline.addingTimeInterval(60) { usleep(50_000) }
      for rank in [0, 1] { if let p = Subprocess.rankProcess(marker: term, rank: rank) { kill(p, SIGTERM) } }
      let t = job2.wait(timeout: 60)
      #expect(t.status == 143, "\(t.status) \(t.stderr)")
      #expect(t.stderr.contains("interrupted (SIGTERM)") && t.stderr.contains("summary.json"), "\(t.stderr)")
      let summary = try JSON.parse(try String(contentsOfFile: term + "/summary.json", encoding: .utf8))
      let statuses = summary["settings"]?.array?.compactMap { $0["status"]?.string } ?? []
      #expect(statuses.contains("finished") && summary["status"]?.string == "interrupted", "\(summary.serialized())")
      #expect(t.stderr.contains("go on with: dpt sweep --resume \(term)"), "\(t.stderr)")
      // dpt sweep --resume: the finished settings are kept as they were, the others go on from their checkpoints,
      // and every epoch of every setting is logged exactly once.
      let settings = summary["settings"]?.array ?? []
      let kept = try settings.filter { $0["status"]?.string == "finished" }.map { s -> (String, String) in
        let folder = term + "/" + (s["folder"]?.string ?? "")
        return (folder, try String(contentsOfFile: folder + "/metrics.jsonl", encoding: .utf8))
      }
      let resumed = DPTBinary.mpirun(2, ["sweep", "--resume", term])
      #expect(resumed.status == 0, "\(resumed.stderr)")
      for (folder, before) in kept { #expect(try String(contentsOfFile: folder + "/metrics.jsonl", encoding: .utf8) == before, "\(folder)") }
      let after = try JSON.parse(try String(contentsOfFile: term + "/summary.json", encoding: .utf8))
      #expect(after["status"]?.string == "finished" && after["settings"]?.array?.count == 4, "\(after.serialized())")
      for s in after["settings"]?.array ?? [] {
        #expect(s["status"]?.string == "finished", "\(s.serialized())")
        let rows = try String(contentsOfFile: term + "/" + (s["folder"]?.string ?? "") + "/metrics.jsonl", encoding: .utf8)
          .split(separator: "\n").map { try JSON.parse(String($0))["epoch"]?.int ?? 0 }
        #expect(rows == [1, 2, 3], "\(s["setting"]?.string ?? ""): epochs \(rows)")
      }
      let extra = DPTBinary.run(["sweep", "--resume", term, "--epochs", "5"])
      #expect(extra.status != 0 && extra.stderr.contains("--epochs"), "\(extra.stderr)")
    }

    /// 10. Resuming with another batch size continues at exactly the checkpoint's sample, or is an error.
    @Test func resumePositionIsInSamples() throws {
      let ck = Self.dir.file("position")
      let run = ["train", "--dataset", "fashion-mnist", "--hidden", "16", "--epochs", "2"]
      let job = Subprocess.launch([DPTBinary.path] + run + ["--checkpoint-dir", ck, "--checkpoint-every", "20"])
      let deadline = Date().addingTimeInterval(60)
      while !FileManager.default.fileExists(atPath: ck + "/checkpoint.dptc") && Date() < deadline { usleep(20_000) }
      kill(Subprocess.children(of: job.processIdentifier).first ?? job.processIdentifier, SIGINT)
      #expect(job.wait(timeout: 30).status == 130)
      let c = try Checkpoint(decoding: try Checkpoint.readBytes(ck), path: ck)
      try #require(c.epoch == 0 && c.batch > 0, "a checkpoint in the middle of epoch 1: \(c.epoch), \(c.batch)")
      #expect(c.samples == c.batch * 128)
      // A batch size at whose multiples the checkpoint's sample does not fall (where SIGINT landed decides which).
      let misfit = try #require([1024, 896, 768, 640, 384].first { c.samples % $0 != 0 })
      expectCleanError(DPTBinary.run(run + ["--resume", ck, "--batch-size", "\(misfit)"]), "where no batch of \(misfit) starts")
      let half = DPTBinary.run(run + ["--resume", ck, "--batch-size", "64", "--json"])
      #expect(half.status == 0 && half.stderr.contains("\(2 * c.batch) batches done"), "\(half.stderr)")
      let o = try JSONSerialization.jsonObject(with: Data(half.stdout.utf8)) as! [String: Any]
      #expect(o["epoch"] as? Int == 2)
    }

    /// 11. A --checkpoint-dir that is a dangling link fails before training starts.
    @Test func danglingCheckpointFolderFailsAtOnce() throws {
      let link = Self.dir.file("dangling")
      try? FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/nonexistent/dpt/checkpoints")
      let r = DPTBinary.run(["train", "--dataset", "mnist", "--epochs", "3", "--checkpoint-dir", link])
      expectCleanError(r, "--checkpoint-dir \(link) is a link to /nonexistent/dpt/checkpoints, which does not exist")
      #expect(!r.stdout.contains("epoch"), "nothing trained: \(r.stdout)")
    }

    /// 12. CSV headers: a byte-order mark is not data, a numeric header is read with --header yes, and the run says.
    @Test func csvHeaders() throws {
      var rows = "a,b,y\n"
      for i in 0..<20 { rows += "\(i),\(i % 3),\(3 * i + 1)\n" }
      let bom = Self.dir.write("bom.csv", [0xEF, 0xBB, 0xBF] + Array(rows.utf8))
      let r = DPTBinary.run(["train", "--dataset", "csv:" + bom, "--test-fraction", "0", "--epochs", "1", "--json"])
      #expect(r.status == 0, "\(r.stderr)")
      #expect(r.stderr.contains("the first row names the columns ('a', 'b', 'y')"), "\(r.stderr)")
      #expect((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any])["train_samples"] as? Int == 20)
      let numeric = Self.dir.write("numeric.csv", "1,2,3\n" + rows.split(separator: "\n").dropFirst().joined(separator: "\n") + "\n")
      let auto = DPTBinary.run(["train", "--dataset", "csv:" + numeric, "--test-fraction", "0", "--epochs", "1"])
      #expect(auto.stdout.contains("no header row; the first row (1, 2, 3) is data (--header yes if it names the columns)"), "\(auto.stdout)")
      let yes = DPTBinary.run(["train", "--dataset", "csv:" + numeric, "--test-fraction", "0", "--epochs", "1", "--header", "yes", "--json"])
      #expect(yes.status == 0, "\(yes.stderr)")
      let o = try JSONSerialization.jsonObject(with: Data(yes.stdout.utf8)) as! [String: Any]
      #expect(o["train_samples"] as? Int == 20)
    }

    /// 13. IDX labels must be 0 ..< C with every class present.
    @Test func idxLabelsAreChecked() throws {
      func folder(_ name: String, labels: [UInt8]) -> String {
        let f = Self.dir.file(name)
        try? FileManager.default.createDirectory(atPath: f, withIntermediateDirectories: true)
        Self.dir.write(name + "/train-images-idx3-ubyte", [0, 0, 8, 3, 0, 0, 0, 100, 0, 0, 0, 4, 0, 0, 0, 4] + [UInt8](repeating: 7, count: 1600))
        Self.dir.write(name + "/train-labels-idx1-ubyte", [0, 0, 8, 1, 0, 0, 0, 100] + labels)
        Self.dir.write(name + "/t10k-images-idx3-ubyte", [0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 4, 0, 0, 0, 4] + [UInt8](repeating: 7, count: 160))
        Self.dir.write(name + "/t10k-labels-idx1-ubyte", [0, 0, 8, 1, 0, 0, 0, 10] + labels.prefix(10))
        return "idx:" + f
      }
      expectCleanError(DPTBinary.run(["train", "--dataset", folder("all255", labels: [UInt8](repeating: 255, count: 100))]),
                       "hold one class (255) in every row")
      expectCleanError(DPTBinary.run(["train", "--dataset", folder("one200", labels: (0..<99).map { UInt8($0 % 10) } + [200])]),
                       "190 of the 201 classes 0-200 never occur")
    }

    /// 14. A path that is not UTF-8 is refused by name, before anything is read or written.
    @Test func nonUTF8PathsAreRefused() {
      let r = Subprocess.run(["/bin/sh", "-c", "\"$0\" train --dataset \"csv:$(printf 'caf\\351.csv')\"", DPTBinary.path])
      #expect(r.status == 64, "\(r.status) \(r.stderr)")
      #expect(r.stderr.contains("argument 3") && r.stderr.contains("is not valid UTF-8"), "\(r.stderr)")
    }

    /// 15. A full disk: an error naming the file, and no half-written or empty file left behind. Needs root (tmpfs).
    @Test(.enabled(if: getuid() == 0)) func fullDiskNamesTheFile() throws {
      let mount = Self.dir.file("full")
      try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
      guard Subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", mount]).status == 0 else { return }
      defer { _ = Subprocess.run(["umount", mount]) }
      let r = DPTBinary.run(["train", "--dataset", "corn", "--epochs", "200", "--log-dir", mount + "/run"])
      expectCleanError(r, "write failed (No space left on device: free some space or write elsewhere)")
      #expect(r.stderr.contains(mount + "/run/"), "names the file: \(r.stderr)")
      for name in TemporaryDirectory.list(mount + "/run") {
        let size = (try? FileManager.default.attributesOfItem(atPath: mount + "/run/" + name)[.size] as? Int) ?? 0
        #expect(size > 0 && !name.contains(".tmp-"), "\(name): \(size) bytes")
        if name == "metrics.jsonl" { #expect(read(mount + "/run/" + name)?.hasSuffix("\n") == true, "whole lines only") }
      }
    }

    /// 16. Smaller ones: stale temporary files go, evaluations add up across a resume, messages name the right flag.
    @Test func smallerMismatches() throws {
      let ck = Self.dir.file("small-ck")
      let whole = DPTBinary.run(["train", "--dataset", "corn", "--epochs", "4", "--json"])
      #expect(DPTBinary.run(base + ["--checkpoint-dir", ck]).status == 0)
      Self.dir.write("small-ck/checkpoint.dptc.tmp-4194999", [UInt8](repeating: 1, count: 1000))
      let resumed = DPTBinary.run(["train", "--dataset", "corn", "--epochs", "4", "--resume", ck, "--checkpoint-dir", ck, "--json"])
      #expect(resumed.status == 0, "\(resumed.stderr)")
      #expect(TemporaryDirectory.list(ck) == [".dpt-run.json", "checkpoint.dptc"], "the killed write's temporary file is gone")
      let (a, b) = (try JSONSerialization.jsonObject(with: Data(whole.stdout.utf8)) as! [String: Any],
                    try JSONSerialization.jsonObject(with: Data(resumed.stdout.utf8)) as! [String: Any])
      let c = try Checkpoint(decoding: try Checkpoint.readBytes(ck), path: ck)
      #expect(c.evaluations == a["evaluations"] as? Int, "\(c.evaluations) vs \(a["evaluations"] ?? "-") (resumed run: \(b["evaluations"] ?? "-"))")
      for command in [["eval", "--checkpoint", Self.dir.file("none")], ["export", "--checkpoint", Self.dir.file("none"), "--output", Self.dir.file("o.st")]] {
        let r = DPTBinary.run(command)
        expectCleanError(r, "no checkpoint there (check --checkpoint;")
        #expect(!r.stderr.contains("--resume"), "\(r.stderr)")
      }
    }

    /// 17. Fields of a file are not trusted: a checkpoint naming a file it was not trained on does not make dpt read
    /// (and print) it; a summary.json cannot point dpt plot outside its folder.
    @Test func fieldsOfFilesAreNotTrusted() throws {
      let ck = Self.dir.file("trusted-ck")
      var rows = "a,b,y\n"
      for i in 0..<30 { rows += "\(i),\(i % 7),\(2 * i + 1)\n" }
      let data = Self.dir.write("trusted.csv", rows)
      #expect(DPTBinary.run(["train", "--dataset", "csv:" + data, "--epochs", "1", "--checkpoint-dir", ck]).status == 0)
      #expect(DPTBinary.run(["eval", "--checkpoint", ck]).status == 0, "its own file: evaluated")
      let secret = Self.dir.write("secret.txt", "root:x:0:0:root:/root:/bin/bash\nline two\n")
      let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: ck + "/checkpoint.dptc")))
      let length = Int(good[12]) | Int(good[13]) << 8 | Int(good[14]) << 16 | Int(good[15]) << 24
      let header = String(decoding: good[20..<20 + length], as: UTF8.self).replacingOccurrences(of: data, with: secret)  // the path, in the text and in the typed run description
      let h = Array(header.utf8)
      let le = { (v: UInt32) in (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xFF) } }
      let evil = Self.dir.file("evil-ck")
      try FileManager.default.createDirectory(atPath: evil, withIntermediateDirectories: true)
      Self.dir.write("evil-ck/checkpoint.dptc", Array(good[0..<12]) + le(UInt32(h.count)) + le(CRC32C.checksum(h)) + h + Array(good[(20 + length)...]))
      let r = DPTBinary.run(["eval", "--checkpoint", evil])
      expectCleanError(r, "that file is not the one it was trained on")
      #expect(!r.stderr.contains("root:x") && !r.stdout.contains("root:x"), "\(r.stderr)")
      // plot: a setting folder of "../x" in summary.json.
      let sweep = Self.dir.file("plot-sweep")
      #expect(DPTBinary.run(["sweep", "--dataset", "corn", "--epochs", "2", "--weight-decay", "0,0.1", "--val-fraction", "0.2", "--log-dir", sweep]).status == 0)
      let summaryPath = sweep + "/summary.json"
      let text = try String(contentsOfFile: summaryPath, encoding: .utf8).replacingOccurrences(of: "\"01_wd-0\"", with: "\"../escaped\"")
      try text.write(toFile: summaryPath, atomically: true, encoding: .utf8)
      expectCleanError(DPTBinary.run(["plot", sweep]), "names the folder '../escaped', which is not a folder inside")
      #expect(!FileManager.default.fileExists(atPath: Self.dir.file("escaped")))
    }
  
    /// Issue 28, item 23: docs/SECURITY.md's one-host advice. `--mca btl self,vader --mca oob_tcp_if_include lo`
    /// leaves mpirun's out-of-band listener on every address (OpenMPI 4.1 binds them all); a network namespace of the
    /// job's own keeps every listener off the host's network: `ss -ltnp` there shows none of the job's.
    @Test(.enabled(if: getuid() == 0)) func oneHostListenersStayOnLoopback() throws {
      /// The listening addresses of the processes whose pid is in `pids`, as `ss -ltnp` prints them (in this namespace).
      func listeners(_ pids: [Int32]) -> [String] {
        Subprocess.run(["ss", "-ltnpH"]).stdout.split(separator: "\n").filter { line in pids.contains { line.contains("pid=\($0),") } }
          .map { String($0.split(separator: " ", omittingEmptySubsequences: true)[3]) }
      }
      // Long enough to be looked at; each job is ended once it has been.
      let run = [DPTBinary.path, "train", "--dataset", "fashion-mnist", "--hidden", "64", "--epochs", "100"]
      /// The job's processes under `launched` (mpirun and its ranks) once its ranks run (at most 30 s).
      func processes(_ launched: Subprocess.Running) -> [Int32] {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
          var job = Subprocess.children(of: launched.processIdentifier)
          job += job.flatMap { Subprocess.children(of: $0) }
          if job.count >= 3 { return job }
          usleep(100_000)
        }
        return []
      }
      /// Ends a job: its processes (mpirun and the ranks, which mpirun's process group may not hold) at once.
      func end(_ launched: Subprocess.Running, _ job: [Int32]) {
        for pid in job { kill(pid, SIGKILL) }
        _ = launched.wait(timeout: 30)
      }
      let plain = Subprocess.launch(["mpirun", "-np", "2", "--oversubscribe", "--mca", "btl", "self,vader", "--mca", "oob_tcp_if_include", "lo"] + run,
                                    environment: DPTBinary.mpiEnvironment)
      let plainJob = processes(plain)
      let open = listeners(plainJob)
      #expect(open.contains { !$0.hasPrefix("127.0.0.1:") }, "OpenMPI's out-of-band listener, on every address: \(open)")
      end(plain, plainJob)
      let script = "ip link set lo up && exec mpirun -np 2 --oversubscribe --mca btl self,vader " + run.map { "'\($0)'" }.joined(separator: " ")
      let contained = Subprocess.launch(["unshare", "--net", "sh", "-c", script], environment: DPTBinary.mpiEnvironment)
      let job = processes(contained)
      #expect(!job.isEmpty && listeners(job).isEmpty, "the job's listeners in the host's namespace: \(listeners(job))")
      let links = Subprocess.run(["nsenter", "--target", "\(job.first ?? 1)", "--net", "ip", "-o", "link"]).stdout
      #expect(links.split(separator: "\n").count == 1 && links.contains(": lo:"), "\(links)")
      let inside = Subprocess.run(["nsenter", "--target", "\(job.first ?? 1)", "--net", "ss", "-ltnH"]).stdout
      #expect(!inside.isEmpty, "the job listens inside its namespace, on its loopback")
      end(contained, job)
    }
}
}
