import Datasets
import Foundation
import Testing
import _TestSupport

/// images:DIR (issue 32, item 2): PNG through libpng and JPEG through libjpeg-turbo, channels kept, sizes checked,
/// resizing as PyTorch's bilinear interpolate, class folders as classes, every bad file one line naming it.
@Suite struct ImageTests {
  static func bytes(_ base64: String) -> [UInt8] { Array(Data(base64Encoded: base64)!) }
  /// Written by Pillow: a 3x2 gray PNG (0, 50, 100 / 150, 200, 255).
  static let gray = bytes("iVBORw0KGgoAAAANSUhEUgAAAAMAAAACCAAAAAC4HznGAAAAEElEQVR4nGNkMDJimHbiPwAGhwLD7bQTrAAAAABJRU5ErkJggg==")
  /// A 2x2 RGBA PNG: red 10, 20 / 30, 40, green 7, blue 200, alpha 255, 128 / 0, 64.
  static let rgba = bytes("iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAYAAABytg0kAAAAGklEQVR4nGPkYj/xn4uBoZFFhIGBkYuBwQEAIaUCyGXgkU4AAAAASUVORK5CYII=")
  /// An 8x8 RGB JPEG (quality 95): red 200, green 30 x column, blue 40.
  static let jpeg = bytes("/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAIBAQEBAQIBAQECAgICAgQDAgICAgUEBAMEBgUGBgYFBgYGBwkIBgcJBwYGCAsICQoKCgoKBggLDAsKDAkKCgr/2wBDAQICAgICAgUDAwUKBwYHCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgr/wAARCAAIAAgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwCv/wAEvv8AmG/8Aooor/PjxR/5Kyr/AF1Z++eM/wDyXFb+urP/2Q==")

  @Test func pngAndJpegDecodeWithTheirChannels() throws {
    #expect(try ImageFiles.info(Self.gray, path: "g.png") == (2, 3, 1))
    let g = try ImageFiles.decode(Self.gray, path: "g.png", channels: 1)
    #expect(g.pixels == [0, 50, 100, 150, 200, 255])
    let a = try ImageFiles.decode(Self.rgba, path: "a.png", channels: 4)
    #expect(a.pixels == [10, 7, 200, 255, 20, 7, 200, 128, 30, 7, 200, 0, 40, 7, 200, 64])
    // Channels first: (C, H, W).
    #expect(ImageFiles.planes(a, size: nil) == [10, 20, 30, 40, 7, 7, 7, 7, 200, 200, 200, 200, 255, 128, 0, 64])
    // A gray PNG widened to RGB by libpng repeats its value.
    #expect(try ImageFiles.decode(Self.gray, path: "g.png", channels: 3).pixels.prefix(6) == [0, 0, 0, 50, 50, 50])
    #expect(try ImageFiles.info(Self.jpeg, path: "j.jpg") == (8, 8, 3))
    let j = try ImageFiles.decode(Self.jpeg, path: "j.jpg", channels: 4)
    #expect(j.channels == 4 && j.pixels.count == 256 && stride(from: 3, to: 256, by: 4).allSatisfy { j.pixels[$0] == 255 })
    // Lossy, but near what was saved: red 200, green 30 x column, blue 40.
    for x in 0..<8 {
      let p = Array(j.pixels[x * 4..<x * 4 + 3]).map(Int.init)
      #expect(abs(p[0] - 200) <= 12 && abs(p[1] - 30 * x) <= 12 && abs(p[2] - 40) <= 12, "pixel \(x): \(p)")
    }
  }

  /// The values of torch.nn.functional.interpolate(mode="bilinear", align_corners=False), rounded.
  @Test func resizingIsPyTorchsBilinear() {
    let up = DecodedImage(height: 2, width: 2, channels: 1, pixels: [0, 100, 200, 255])
    #expect(ImageFiles.planes(up, size: (3, 3)) == [0, 50, 100, 100, 139, 178, 200, 228, 255])
    let down = DecodedImage(height: 4, width: 4, channels: 1, pixels: (0..<16).map { UInt8($0 * 10) })
    #expect(ImageFiles.planes(down, size: (2, 3)) == [22, 35, 48, 102, 115, 128])
  }

  @Test func aFolderOfClassFoldersIsADataSet() throws {
    let dir = TemporaryDirectory("dpt-images")
    for (name, bytes) in [("cat/a.png", Self.gray), ("cat/b.PNG", Self.gray), ("dog/c.png", Self.gray), ("dog/notes.txt", Array("x".utf8))] {
      try FileManager.default.createDirectory(atPath: dir.file((name as NSString).deletingLastPathComponent), withIntermediateDirectories: true)
      _ = dir.write(name, bytes)
    }
    let d = try ImageFiles.dataset(dir.path, size: nil)
    #expect(d.classNames == ["cat", "dog"] && d.labels == [0, 0, 1] && d.sampleShape == [1, 2, 3] && d.count == 3)
    let split = try Catalog.load(.images(directory: dir.path, height: 4, width: 4), testFraction: 0)
    #expect(split.train.sampleShape == [1, 4, 4] && split.train.classNames == ["cat", "dog"])
    // Another folder for a trained model (eval): its classes by the model's names, and the model's channels.
    let model = InputTransform(scaling: .divide(255), sampleShape: [3, 2, 3], featureNames: [], namedColumns: false, task: .classification,
                               classNames: ["bird", "cat", "dog"], targetNames: ["class"])
    let other = try ImageFiles.dataset(dir.path, size: nil, model: model)
    #expect(other.labels == [1, 1, 2] && other.classCount == 3 && other.sampleShape == [3, 2, 3])
    let stranger = InputTransform(scaling: .divide(255), sampleShape: [1, 2, 3], featureNames: [], namedColumns: false, task: .classification,
                                  classNames: ["cat", "fox"], targetNames: ["class"])
    do { _ = try ImageFiles.dataset(dir.path, size: nil, model: stranger); Issue.record("read a folder the model does not know") } catch {
      #expect("\(error)".contains("dog: a class folder the model was not trained on (it knows 'cat', 'fox')"), "\(error)")
    }
    // A JPEG among them: every image becomes RGB; sizes differ, so --image-size is needed.
    _ = dir.write("dog/d.jpg", Self.jpeg)
    #expect(throws: DataProblem.self) { try ImageFiles.dataset(dir.path, size: nil) }
    do { _ = try ImageFiles.dataset(dir.path, size: nil) } catch { #expect("\(error)".contains("give --image-size H,W"), "\(error)") }
    let mixed = try ImageFiles.dataset(dir.path, size: (8, 8))
    #expect(mixed.sampleShape == [3, 8, 8] && mixed.count == 4)
    // A damaged file is one line naming it.
    _ = dir.write("cat/z.png", Array(Self.gray.prefix(40)))
    do { _ = try ImageFiles.dataset(dir.path, size: (8, 8)); Issue.record("read a truncated PNG") } catch {
      #expect(error is DataProblem && "\(error)".hasPrefix(dir.file("cat/z.png") + ": not a valid PNG file"), "\(error)")
    }
  }

  /// Found by scripts/fuzz: a 353-byte JPEG whose header declares 33,288 x 35,152 pixels made the decoder ask for 3.5 GB.
  /// What one image may take is bounded before decoding.
  @Test func aSmallFileDeclaringAHugeImageIsRefused() {
    let bomb = Self.bytes("/9j/4AAQSgAAAAAAAAAAAAEAAQAA/9sAQwACAQEBAQECAQEBAgICAgIEAwICAgIFBAQD/9gEBgUGBgYFBgYGBwkIBgcJBwYGCAsICQoKCgoKBggLDAsKDAkKCgr/2wBDAQICAgICAgUDAwUKBwYHCgoKCllZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWQoKCgoKCgoKCgoKCke9YIIKCgoKCgoKCgoKiVBOR71gCgoKCgr/wAARCIlQgggDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECBAQDBAcFBAQAAQJ3AAECA1pjZGWSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIyMrS09TV1tfY2dri4+Tl5ufo6ery8/T19vf4+fr/2gAMAwEAAhEDEQA/AK//AAS+/wCYb/wCiiiv8+PFH/krKv8AXef7jFkAAfJcVv4=")
    do { _ = try ImageFiles.decode(bomb, path: "bomb.jpg", channels: 3); Issue.record("decoded a decompression bomb") } catch {
      #expect(error is DataProblem && "\(error)".contains("more than dpt decodes from one image"), "\(error)")
    }
  }

  @Test func mutatedImagesAreReadOrRefusedCleanly() {
    var mutator = Mutator(seed: 0x1A6E)
    let seeds = [Self.gray, Self.rgba, Self.jpeg]
    let r = Fuzzing.run(rounds: 3000, input: { mutator.mutate(seeds[$0 % seeds.count]) }, read: { bytes in
      _ = try ImageFiles.decode(bytes, path: "fuzz", channels: 3)
    }, isClean: { $0 is DataProblem })
    for (i, error) in r.unexpected { Issue.record("input \(i) raised \(type(of: error)), not a DataProblem: \(error)") }
    #expect(r.read + r.rejected == 3000 && r.rejected > 0 && r.read > 0)
  }
}
