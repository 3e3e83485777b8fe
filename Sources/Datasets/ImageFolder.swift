import Foundation
import _CImage
import _Support

/// One decoded image: height x width x channels bytes, rows top to bottom (as the file holds it).
public struct DecodedImage: Equatable, Sendable {
  public var height: Int
  public var width: Int
  public var channels: Int
  public var pixels: [UInt8]

  public init(height: Int, width: Int, channels: Int, pixels: [UInt8]) {
    precondition(pixels.count == height * width * channels, "\(pixels.count) bytes for \(height)x\(width)x\(channels)")
    (self.height, self.width, self.channels, self.pixels) = (height, width, channels, pixels)
  }
}

/// PNG (libpng) and JPEG (libjpeg-turbo) files, and `images:DIR`: one folder per class, as torchvision's
/// `ImageFolder` reads them.
///
/// A folder's images keep their channels: gray (1), gray with alpha (2), RGB (3) or RGBA (4); when its files differ,
/// every image takes the widest (color if any is, alpha if any has it: libpng converts a PNG, a JPEG's pixels are
/// repeated into RGB or given an opaque alpha). Samples are channels first, (C, H, W), bytes read as x / 255. The
/// images must all be of one size unless `--image-size H,W` resizes them (bilinear, pixel centres aligned as
/// PyTorch's `interpolate(mode="bilinear", align_corners=False)`, no antialiasing). Sizes come from each file's header
/// and are checked against the memory limit before anything is decoded.
public enum ImageFiles {
  /// The most pixels one image may have: 8192 x 8192 (256 MiB as RGBA bytes).
  public static let maximumPixels = 1 << 26

  /// The extensions read (any case).
  public static let extensions: Set<String> = ["png", "jpg", "jpeg"]

  static func isImage(_ name: String) -> Bool { extensions.contains((name as NSString).pathExtension.lowercased()) }

  static func isPNG(_ bytes: [UInt8]) -> Bool { bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) }
  static func isJPEG(_ bytes: [UInt8]) -> Bool { bytes.starts(with: [0xFF, 0xD8]) }

  /// The file's size and channels, from its header.
  public static func info(_ bytes: [UInt8], path: String) throws -> (height: Int, width: Int, channels: Int) {
    var info = dpt_image_info()
    var message = [CChar](repeating: 0, count: 256)
    let status: Int32 = bytes.withUnsafeBufferPointer { b in
      if isPNG(bytes) { return dpt_png_info(b.baseAddress, b.count, &info, &message, message.count) }
      if isJPEG(bytes) { return dpt_jpeg_read(b.baseAddress, b.count, &info, 0, nil, 0, &message) }
      return -2
    }
    guard status != -2 else { throw DataProblem.malformed("\(path): neither a PNG nor a JPEG file (by its first bytes): images:DIR reads .png, .jpg and .jpeg") }
    guard status == 0 else { throw DataProblem.malformed("\(path): not a valid \(isPNG(bytes) ? "PNG" : "JPEG") file (\(text(message))): replace it or remove it") }
    let (h, w) = (Int(info.height), Int(info.width))
    guard h > 0, w > 0, h <= 1 << 16, w <= 1 << 16 else { throw DataProblem.malformed("\(path): \(w)x\(h) pixels is not a size dpt reads (1 to 65,536 a side)") }
    // A small file may declare a huge image (a decompression bomb): what one image may take is bounded before decoding.
    guard h * w <= maximumPixels else {
      throw DataProblem.malformed("\(path): \(w)x\(h) pixels is more than dpt decodes from one image (\(maximumPixels) pixels, 8192x8192): shrink it first")
    }
    return (h, w, Int(info.channels))
  }

  static func text(_ message: [CChar]) -> String {
    String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// Decodes the file into `channels` (see `ImageFiles`).
  public static func decode(_ bytes: [UInt8], path: String, channels: Int) throws -> DecodedImage {
    let (h, w, _) = try info(bytes, path: path)
    var message = [CChar](repeating: 0, count: 256)
    if isPNG(bytes) {
      var pixels = [UInt8](repeating: 0, count: h * w * channels)
      let status = bytes.withUnsafeBufferPointer { b in
        pixels.withUnsafeMutableBufferPointer { p in
          dpt_png_decode(b.baseAddress, b.count, UInt32(channels), p.baseAddress, p.count, &message, message.count)
        }
      }
      guard status == 0 else { throw DataProblem.malformed("\(path): not a valid PNG file (\(text(message))): replace it or remove it") }
      return DecodedImage(height: h, width: w, channels: channels, pixels: pixels)
    }
    // JPEG: gray or RGB as libjpeg gives them, then widened to `channels`.
    let decoded = channels >= 3 ? 3 : 1
    var pixels = [UInt8](repeating: 0, count: h * w * decoded)
    var info = dpt_image_info()
    let status = bytes.withUnsafeBufferPointer { b in
      pixels.withUnsafeMutableBufferPointer { p in dpt_jpeg_read(b.baseAddress, b.count, &info, UInt32(decoded), p.baseAddress, p.count, &message) }
    }
    guard status == 0 else { throw DataProblem.malformed("\(path): not a valid JPEG file (\(text(message))): replace it or remove it") }
    guard channels != decoded else { return DecodedImage(height: h, width: w, channels: channels, pixels: pixels) }
    var out = [UInt8](repeating: 255, count: h * w * channels)  // an opaque alpha
    for i in 0..<h * w { for c in 0..<decoded { out[i * channels + c] = pixels[i * decoded + c] } }
    return DecodedImage(height: h, width: w, channels: channels, pixels: out)
  }

  /// The image's pixels channels first, (C, H, W), resized to `size` (height, width) when given and different.
  public static func planes(_ image: DecodedImage, size: (height: Int, width: Int)?) -> [UInt8] {
    let (h, w, c) = (image.height, image.width, image.channels)
    let (H, W) = size ?? (h, w)
    var out = [UInt8](repeating: 0, count: c * H * W)
    if H == h && W == w {
      for y in 0..<h { for x in 0..<w { for k in 0..<c { out[(k * h + y) * w + x] = image.pixels[(y * w + x) * c + k] } } }
      return out
    }
    // Bilinear, source coordinate (i + 0.5) * scale - 0.5, clamped at the edges.
    let sy = Double(h) / Double(H), sx = Double(w) / Double(W)
    func taps(_ i: Int, _ scale: Double, _ n: Int) -> (Int, Int, Double) {
      let s = max((Double(i) + 0.5) * scale - 0.5, 0)
      let a = min(Int(s), n - 1)
      return (a, min(a + 1, n - 1), s - Double(a))
    }
    for Y in 0..<H {
      let (y0, y1, fy) = taps(Y, sy, h)
      for X in 0..<W {
        let (x0, x1, fx) = taps(X, sx, w)
        for k in 0..<c {
          let p = { (y: Int, x: Int) in Double(image.pixels[(y * w + x) * c + k]) }
          let v = (1 - fy) * ((1 - fx) * p(y0, x0) + fx * p(y0, x1)) + fy * ((1 - fx) * p(y1, x0) + fx * p(y1, x1))
          out[(k * H + Y) * W + X] = UInt8(min(max(v.rounded(), 0), 255))
        }
      }
    }
    return out
  }

  /// The image files of `directory` (not in subfolders), sorted by name.
  public static func files(in directory: String) throws -> [String] {
    let names = try FileManager.default.contentsOfDirectory(atPath: directory)
    return names.filter { isImage($0) && !$0.hasPrefix(".") }.sorted()
  }

  /// The class folders of `directory` (sorted) and each one's image files, or nil when it has no subfolder with
  /// images (a folder of images alone, as `predict` reads one).
  public static func classes(_ directory: String) throws -> [(name: String, files: [String])]? {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
      throw DataProblem.malformed("\(directory): no such folder (images:DIR needs a folder with one subfolder of PNG or JPEG files per class)")
    }
    let entries = try FileManager.default.contentsOfDirectory(atPath: directory).filter { !$0.hasPrefix(".") }.sorted()
    var out: [(String, [String])] = []
    for name in entries {
      let path = Files.join(directory, name)
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { continue }
      let images = try files(in: path).map { Files.join(path, $0) }
      if !images.isEmpty { out.append((name, images)) }
    }
    return out.isEmpty ? nil : out
  }

  /// The images at `paths` as samples (C, H, W) of one size: `size`, or the images' own (which must then agree).
  /// `channels` nil: the widest the files have.
  public static func samples(_ paths: [String], size: (height: Int, width: Int)?, channels given: Int? = nil)
    throws -> (pixels: [UInt8], shape: [Int])
  {
    var heads: [(bytes: [UInt8], height: Int, width: Int, channels: Int)] = []
    var color = false, alpha = false
    for path in paths {
      let bytes = try FileBytes.raw(path)
      let (h, w, c) = try info(bytes, path: path)
      if size == nil, let first = heads.first, (first.height, first.width) != (h, w) {
        throw DataProblem.malformed("\(path): \(w)x\(h) pixels, but \(paths[0]) is \(first.width)x\(first.height): give --image-size H,W to resize every image to one size")
      }
      color = color || c >= 3
      alpha = alpha || c == 2 || c == 4
      heads.append((bytes, h, w, c))
    }
    let channels = given ?? ((color ? 3 : 1) + (alpha ? 1 : 0))
    let (H, W) = size ?? (heads.first.map { ($0.height, $0.width) } ?? (1, 1))
    let (bytes, overflow) = (H * W * channels).multipliedReportingOverflow(by: paths.count)
    guard !overflow, bytes <= MachineMemory.fileLimit else {
      throw DataProblem.malformed("\(paths.count) images of \(channels)x\(H)x\(W) are \(ByteCount.text(bytes)), more than dpt holds (\(ByteCount.text(MachineMemory.fileLimit))): give a smaller --image-size")
    }
    var pixels = [UInt8]()
    pixels.reserveCapacity(bytes)
    for (k, head) in heads.enumerated() {
      let image = try decode(head.bytes, path: paths[k], channels: channels)
      pixels += planes(image, size: size)
    }
    return (pixels, [channels, H, W])
  }

  /// Each file's class: its folder's place among `names` (a trained model's classes: a folder it does not know is an
  /// error naming it), or among the folders themselves (sorted) when nil.
  public static func labels(_ classes: [(name: String, files: [String])], names: [String]?, directory: String) throws -> [Int32] {
    try classes.enumerated().flatMap { k, c -> [Int32] in
      guard let names else { return [Int32](repeating: Int32(k), count: c.files.count) }
      guard let at = names.firstIndex(of: c.name) else {
        throw DataProblem.malformed("\(Files.join(directory, c.name)): a class folder the model was not trained on (it knows \(InputTransform.list(names)))")
      }
      return [Int32](repeating: Int32(at), count: c.files.count)
    }
  }

  /// `images:DIR`: a data set of one class a subfolder (class names the folder names, sorted), split by
  /// --test-fraction. `model`: a trained model's transform (eval on another folder): its classes and channels, so that
  /// a folder holding some of the classes keeps each one's index.
  public static func dataset(_ directory: String, size: (height: Int, width: Int)?, model: InputTransform? = nil) throws -> Dataset {
    guard let classes = try classes(directory) else {
      throw DataProblem.malformed("\(directory): no subfolder holds PNG or JPEG files: images:DIR reads one subfolder per class (DIR/cat/1.png, DIR/dog/2.jpg, ...)")
    }
    let names = model.flatMap { $0.task == .classification && $0.sampleShape.count == 3 ? $0.classNames : nil }
    guard classes.count >= 2 || names != nil else {
      throw DataProblem.malformed("\(directory): one class folder (\(quoted(classes[0].name))): classification needs at least 2")
    }
    let paths = classes.flatMap(\.files)
    let labels = try labels(classes, names: names, directory: directory)
    let (pixels, shape) = try samples(paths, size: size, channels: names != nil ? model?.sampleShape.first : nil)
    let classNames = names ?? classes.map(\.name)
    return Dataset(features: .bytes(pixels, divisor: 255), count: paths.count, sampleShape: shape, labels: labels, task: .classification,
                   classCount: classNames.count, featureNames: Catalog.pixelNames(shape.reduce(1, *)), targetName: "class",
                   classNames: classNames)
  }
}
