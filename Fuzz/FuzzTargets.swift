// libFuzzer's entry point for scripts/fuzz: DPT_FUZZ_TARGET=idx|gzip|csv|checkpoint picks the reader.
// Built only with DPT_FUZZ=1 (see Package.swift), as a coverage-instrumented shared library that clang links with
// libFuzzer's main.
import Datasets
import FileFormats
import Foundation

let target = ProcessInfo.processInfo.environment["DPT_FUZZ_TARGET"] ?? "idx"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  switch target {
  case "csv":
    if let t = try? NumericTable(parsing: bytes, path: "fuzz") { _ = try? Catalog.regressionTable(t, path: "fuzz") }
  case "checkpoint":
    _ = try? Checkpoint(decoding: bytes, path: "fuzz")
  case "gzip":
    if let raw = try? FileBytes.gunzip(bytes, path: "fuzz") { _ = try? IDXArray(parsing: raw, path: "fuzz") }
  default:
    _ = try? IDXArray(parsing: bytes, path: "fuzz")
  }
  return 0
}
