import Datasets
import Testing
import _TestSupport

@Suite struct IDXTests {
  let images = IDXArray(dimensions: [3, 2, 2], bytes: Array(0..<12))
  let labels = IDXArray(dimensions: [3], bytes: [2, 0, 1])

  @Test func headerBytesAreMNISTs() {
    #expect(images.encoded.prefix(16) == [0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2])
    #expect(labels.encoded.prefix(8) == [0, 0, 8, 1, 0, 0, 0, 3])
  }

  @Test func readsRawAndGzip() throws {
    let dir = TemporaryDirectory()
    let raw = dir.write("images", images.encoded)
    let gz = dir.writeGzip("images.gz", images.encoded)
    #expect(try IDXArray.read(raw) == images)
    #expect(try IDXArray.read(gz) == images)
  }

  func error(_ bytes: [UInt8]) -> String {
    do {
      _ = try IDXArray(parsing: bytes, path: "f.idx")
      return "no error"
    } catch { return "\(error)" }
  }

  @Test func corruptFilesAreNamedErrors() {
    #expect(error([]).contains("too short"))
    #expect(error([1, 2, 8, 3] + Array(images.encoded.dropFirst(4))).contains("wrong IDX magic number 01 02 08 03"))
    #expect(error([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]).contains("element type 0xd"))
    #expect(error([0, 0, 8, 0]).contains("0 dimensions"))
    #expect(error(Array(images.encoded.prefix(10))).contains("truncated IDX header"))
    #expect(error(Array(images.encoded.dropLast(3))).contains("truncated: the header declares 3x2x2 = 12 bytes of data but the file holds 9"))
    #expect(error(images.encoded + [1, 2]).contains("2 bytes after"))
    #expect(error([1]).hasPrefix("f.idx: "))
  }

  @Test func truncatedGzipIsAnError() {
    let dir = TemporaryDirectory()
    let gz = dir.writeGzip("t.gz", IDXArray(dimensions: [1000, 10, 10], bytes: Array(repeating: 7, count: 100_000)).encoded)
    let bytes = FileBytesForTest.read(gz)
    let cut = dir.write("cut.gz", Array(bytes.prefix(bytes.count / 2)))
    #expect(throws: DataProblem.self) { try IDXArray.read(cut) }
    do { _ = try IDXArray.read(cut) } catch { #expect("\(error)".contains("truncated")) }
    let garbage = dir.write("bad.gz", [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF])
    do { _ = try IDXArray.read(garbage) } catch { #expect("\(error)".contains("bad.gz")) }
  }

  @Test func missingFileNamesThePathAndTheFix() {
    do { _ = try IDXArray.read("/nonexistent/x-idx3-ubyte") } catch {
      #expect("\(error)" == "/nonexistent/x-idx3-ubyte: no such file (check the path)")
    }
  }

  func folder(train: (IDXArray, IDXArray), test: (IDXArray, IDXArray), gzip: Bool = false) -> TemporaryDirectory {
    let dir = TemporaryDirectory()
    let files = [("train-images-idx3-ubyte", train.0), ("train-labels-idx1-ubyte", train.1),
                 ("t10k-images-idx3-ubyte", test.0), ("t10k-labels-idx1-ubyte", test.1)]
    for (name, a) in files {
      if gzip { dir.writeGzip(name + ".gz", a.encoded) } else { dir.write(name, a.encoded) }
    }
    return dir
  }

  @Test func folderOfFourFiles() throws {
    for gzip in [false, true] {
      let dir = folder(train: (images, labels), test: (images, labels), gzip: gzip)
      let split = try Catalog.load(.idx(directory: dir.path))
      #expect(split.train.count == 3 && split.test.count == 3)
      #expect(split.train.sampleShape == [1, 2, 2])
      #expect(split.train.classCount == 3)
      #expect(split.train.labels == [2, 0, 1])
      let x: Tensor<Float> = split.train.features(at: [1])
      #expect(x.scalars == [4, 5, 6, 7].map { Float($0) / 255 })
    }
  }

  @Test func imagesAndLabelsMustAgree() {
    let dir = folder(train: (images, IDXArray(dimensions: [2], bytes: [1, 2])), test: (images, labels))
    do {
      _ = try Catalog.load(.idx(directory: dir.path))
      Issue.record("no error")
    } catch {
      #expect("\(error)".contains("holds 3 images but"))
      #expect("\(error)".contains("holds 2 labels"))
    }
    let swapped = folder(train: (labels, images), test: (images, labels))
    do { _ = try Catalog.load(.idx(directory: swapped.path)) } catch {
      #expect("\(error)".contains("1 dimensions, expected 3"))
    }
  }

  @Test func missingFileInFolder() throws {
    let dir = folder(train: (images, labels), test: (images, labels))
    try FileManager.default.removeItem(atPath: dir.file("t10k-labels-idx1-ubyte"))
    do { _ = try Catalog.load(.idx(directory: dir.path)) } catch {
      #expect("\(error)".contains("t10k-labels-idx1-ubyte[.gz] not found"))
    }
    do { _ = try Catalog.load(.idx(directory: dir.path + "/nope")) } catch {
      #expect("\(error)".contains("no such folder"))
    }
  }
}

import Foundation
import TensorCore

enum FileBytesForTest {
  static func read(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path)!) }
}
