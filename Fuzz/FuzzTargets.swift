// libFuzzer's entry point for scripts/fuzz: DPT_FUZZ_TARGET=idx|gzip|csv|checkpoint|json|safetensors|npy|npz|image picks
// the reader.
// Built only with DPT_FUZZ=1 (see Package.swift), as a coverage-instrumented shared library that clang links with
// libFuzzer's main.
import Datasets
import FileFormats
import Foundation
import _Support

let target = ProcessInfo.processInfo.environment["DPT_FUZZ_TARGET"] ?? "idx"

/// A checkpoint whose header is the fuzzer's input, framed with a valid length and checksum (and a payload of zeros
/// as long as the header claims, when it says): the checks behind the checksums are what is fuzzed.
func checkpoint(header: [UInt8]) -> [UInt8] {
  let le = { (v: UInt32) in (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xFF) } }
  let claimed = (try? JSON.parse(bytes: header))?["payload_bytes"]?.int ?? 0
  let payload = [UInt8](repeating: 0, count: min(max(claimed, 0), 1 << 16))
  return Checkpoint.magic + le(Checkpoint.formatVersion) + le(UInt32(header.count)) + le(CRC32C.checksum(header)) + header + payload
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  switch target {
  case "csv":
    if let t = try? NumericTable(parsing: bytes, path: "fuzz") {
      _ = try? Catalog.regressionTable(t, path: "fuzz")
      var warnings: [DataWarning] = []
      for missing in MissingValues.allCases {
        _ = try? TableEncoding.fit(t, path: "fuzz", classes: missing != .drop, targets: 1, missing: missing, lenient: false, warnings: &warnings)
      }
    }
  case "checkpoint":
    _ = try? Checkpoint(decoding: bytes, path: "fuzz")
    _ = try? Checkpoint(decoding: checkpoint(header: bytes), path: "fuzz")
  case "json":
    _ = try? JSON.parse(bytes: bytes)
  case "safetensors":
    if let file = try? SafeTensorsFile(decoding: bytes, path: "fuzz") {
      for name in file.names { _ = try? file.values(name, path: "fuzz") }
    }
  case "image":
    _ = try? ImageFiles.decode(bytes, path: "fuzz", channels: 3)
    _ = try? ImageFiles.decode(bytes, path: "fuzz", channels: 2)
  case "npy":
    if let a = try? NumpyArray(parsing: bytes, path: "fuzz") { _ = try? ArrayData.rowsToPredict(["x": a], path: "fuzz") }
  case "npz":
    if let arrays = try? NumpyArchive.parse(bytes, path: "fuzz") {
      _ = try? ArrayData.inferTarget(arrays, path: "fuzz")
      _ = try? ArrayData.rowsToPredict(arrays, path: "fuzz")
    }
  case "gzip":
    if let raw = try? FileBytes.gunzip(bytes, path: "fuzz", limit: 1 << 24) { _ = try? IDXArray(parsing: raw, path: "fuzz") }
  default:
    _ = try? IDXArray(parsing: bytes, path: "fuzz")
  }
  return 0
}
