import Foundation
import Testing
import _TestSupport
import Datasets

/// numpy's .npy and .npz readers (`npz:FILE`, `npy:X.npy,Y.npy`): strict headers, both orders, stored and deflated
/// archives, Keras's four arrays, and every damaged input a one-line DataProblem.
@Suite struct NumpyTests {
  /// A .npy file's bytes: version 1, the header dict as numpy writes it, padded to 64 bytes.
  static func npy(_ header: String, _ data: [UInt8], version: UInt8 = 1) -> [UInt8] {
    var h = Array(header.utf8)
    let prefix = version == 1 ? 10 : 12
    while (prefix + h.count + 1) % 64 != 0 { h.append(0x20) }
    h.append(0x0A)
    let length: [UInt8] = version == 1 ? [UInt8(h.count & 0xFF), UInt8(h.count >> 8)]
      : [UInt8(h.count & 0xFF), UInt8((h.count >> 8) & 0xFF), 0, 0]
    return [0x93] + Array("NUMPY".utf8) + [version, 0] + length + h + data
  }

  static func floats(_ v: [Float]) -> [UInt8] { v.flatMap { f in (0..<4).map { UInt8((f.bitPattern >> (8 * UInt32($0))) & 0xFF) } } }

  /// numpy.savez_compressed(x=arange(12, float32).reshape(4, 3) / 4, y=[0, 1, 1, 0]): deflated, zip64 local headers.
  static let compressed = Array(Data(base64Encoded:
    "UEsDBC0AAAAIAAAAIQDG5klV//////////8FABQAeC5ucHkBABAAsAAAAAAAAABnAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6l" +
    "oG6TZqKuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GiY6CsaaOgq1CmQDLgYwaLADEvYMDA5A3ADEC4D4ABA/AGIGBwYG" +
    "ASBWAGIDBwBQSwMELQAAAAgAAAAhANJwnXb//////////wUAFAB5Lm5weQEAEACgAAAAAAAAAEsAAAAAAAAAm+wX6hsQychQxlCt" +
    "npJanFykbqWgbpNpoa6joJ6WX1RSlJgXn1+UkgoSd0vMKU4FihdnJBakAvkaJjqaOgq1ChQALgYoYESjYQAAUEsBAi0DLQAAAAgA" +
    "AAAhAMbmSVVnAAAAsAAAAAUAAAAAAAAAAAAAAIABAAAAAHgubnB5UEsBAi0DLQAAAAgAAAAhANJwnXZLAAAAoAAAAAUAAAAAAAAA" +
    "AAAAAIABngAAAHkubnB5UEsFBgAAAAACAAIAZgAAACABAAAAAA==")!)

  /// numpy.savez(x_train=(2, 2, 2) uint8 0-7, y_train=[0, 1], x_test=8-15, y_test=[1, 0]): stored.
  static let keras = Array(Data(base64Encoded:
    "UEsDBC0AAAAAAAAAIQBhYP21//////////8LABQAeF90cmFpbi5ucHkBABAAiAAAAAAAAACIAAAAAAAAAJNOVU1QWQEAdgB7J2Rl" +
    "c2NyJzogJ3x1MScsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCAyLCAyKSwgfSAgICAgICAgICAgICAgICAg" +
    "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAECAwQFBgdQSwMELQAAAAAAAAAhAJlid9///////////wsA" +
    "FAB5X3RyYWluLm5weQEAEACCAAAAAAAAAIIAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXIn" +
    "OiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg" +
    "ICAgICAgICAgIAoAAVBLAwQtAAAAAAAAACEAcodxhP//////////CgAUAHhfdGVzdC5ucHkBABAAiAAAAAAAAACIAAAAAAAAAJNO" +
    "VU1QWQEAdgB7J2Rlc2NyJzogJ3x1MScsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCAyLCAyKSwgfSAgICAg" +
    "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKCAkKCwwNDg9QSwMELQAAAAAAAAAhAE5j" +
    "a7H//////////woAFAB5X3Rlc3QubnB5AQAQAIIAAAAAAAAAggAAAAAAAACTTlVNUFkBAHYAeydkZXNjcic6ICd8dTEnLCAnZm9y" +
    "dHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg" +
    "ICAgICAgICAgICAgICAgICAgICAgCgEAUEsBAi0DLQAAAAAAAAAhAGFg/bWIAAAAiAAAAAsAAAAAAAAAAAAAAIABAAAAAHhfdHJh" +
    "aW4ubnB5UEsBAi0DLQAAAAAAAAAhAJlid9+CAAAAggAAAAsAAAAAAAAAAAAAAIABxQAAAHlfdHJhaW4ubnB5UEsBAi0DLQAAAAAA" +
    "AAAhAHKHcYSIAAAAiAAAAAoAAAAAAAAAAAAAAIABhAEAAHhfdGVzdC5ucHlQSwECLQMtAAAAAAAAACEATmNrsYIAAACCAAAACgAA" +
    "AAAAAAAAAAAAgAFIAgAAeV90ZXN0Lm5weVBLBQYAAAAABAAEAOIAAAAGAwAAAAA=")!)

  @Test func aHeaderIsReadAsNumpyWritesIt() throws {
    let a = try NumpyArray(parsing: Self.npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", Self.floats([1, 2, 3, 4, 5, 6])), path: "a.npy")
    #expect(a.shape == [2, 3] && a.element == .float32 && a.doubles == [1, 2, 3, 4, 5, 6])
    // Fortran order (columns first) comes out in C order; version 2's 4-byte header length.
    let f = try NumpyArray(parsing: Self.npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", Self.floats([1, 4, 2, 5, 3, 6]), version: 2), path: "f.npy")
    #expect(f.doubles == [1, 2, 3, 4, 5, 6])
    let one = try NumpyArray(parsing: Self.npy("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", [7, 8, 255]), path: "u.npy")
    #expect(one.shape == [3] && one.doubles == [7, 8, 255])
    let scalar = try NumpyArray(parsing: Self.npy("{'descr': '<i8', 'fortran_order': False, 'shape': (), }", [0xFE] + [UInt8](repeating: 0xFF, count: 7)), path: "s.npy")
    #expect(scalar.shape == [] && scalar.doubles == [-2])
  }

  @Test func aHeaderNumpyWouldNotWriteIsRefusedByName() {
    let cases: [(String, [UInt8], String)] = [
      ("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", [0], "dpt never unpickles"),
      ("{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", [UInt8](repeating: 0, count: 8), "dtype '>f8' is not one dpt reads"),
      ("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", [UInt8](repeating: 0, count: 12), "dtype '<U3'"),
      ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", [0, 0, 0, 0], "structured dtype"),
      ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }", Self.floats([1, 2]), "numpy writes only descr"),
      ("{'descr': '<f4', 'shape': (2,), }", Self.floats([1, 2]), "lacks fortran_order"),
      ("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", Self.floats([1, 2]), "(truncated: save or copy it again)"),
      ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Self.floats([1, 2]), "declares (1,) float32 = 4 bytes of data, but the file holds 8"),
      ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", [], "larger than dpt reads"),
    ]
    for (header, data, message) in cases {
      #expect(throws: DataProblem.self) { try NumpyArray(parsing: Self.npy(header, data), path: "bad.npy") }
      do { _ = try NumpyArray(parsing: Self.npy(header, data), path: "bad.npy"); Issue.record("accepted \(header)") } catch {
        #expect("\(error)".hasPrefix("bad.npy: ") && "\(error)".contains(message), "\(header): \(error)")
      }
    }
    #expect(throws: DataProblem.self) { try NumpyArray(parsing: Array("x,y\n1,2\n".utf8), path: "a.csv") }
  }

  @Test func archivesStoredAndDeflatedAreRead() throws {
    let c = try NumpyArchive.parse(Self.compressed, path: "c.npz")
    #expect(Set(c.keys) == ["x", "y"] && c["x"]!.shape == [4, 3] && c["x"]!.doubles == (0..<12).map { Double($0) / 4 } && c["y"]!.doubles == [0, 1, 1, 0])
    let split = try ArrayData.split(c, target: .infer, path: "c.npz", name: "npz:c.npz", testFraction: 0.25, defaultFraction: 0.2, seed: 1)
    #expect(split.train.count == 3 && split.test.count == 1 && split.train.task == .classification && split.train.classCount == 2)
    #expect(split.train.sampleShape == [3])
    let k = try NumpyArchive.parse(Self.keras, path: "k.npz")
    let s = try ArrayData.split(k, target: .infer, path: "k.npz", name: "npz:k.npz", testFraction: nil, defaultFraction: 0.2, seed: 0)
    // (N, H, W) bytes are one-channel images of pixel bytes; the test arrays are the test set, in their order.
    #expect(s.train.sampleShape == [1, 2, 2] && s.test.labels == [1, 0])
    guard case .bytes(let b, 255) = s.test.features else { Issue.record("uint8 images are pixel bytes"); return }
    #expect(b == (8..<16).map { UInt8($0) })
    // Keras's arrays have their own test set; float labels are targets unless --target class says.
    #expect(throws: DataProblem.self) { try ArrayData.split(k, target: .infer, path: "k.npz", name: "k", testFraction: 0.1, defaultFraction: 0.2, seed: 0) }
    let r = try ArrayData.split(c, target: .values(1), path: "c.npz", name: "c", testFraction: 0, defaultFraction: 0.2, seed: 0)
    #expect(r.train.task == .regression && r.train.targets == [0, 1, 1, 0])
  }

  @Test func aDamagedArchiveIsOneLineNamingIt() {
    var flipped = Self.compressed
    flipped[120] ^= 0x55  // inside x's deflated bytes
    var crc = Self.keras
    crc[190] ^= 0x01  // a stored pixel of x_train (its data is bytes 189-196): only the CRC-32 tells
    for (bytes, message) in [(Array(Self.compressed.prefix(300)), "no zip directory"), (flipped, "c.npz"), (crc, "fails its CRC-32 check"),
                             (Array("PK".utf8) + [UInt8](repeating: 0, count: 30), "no zip directory")] {
      do { _ = try NumpyArchive.parse(bytes, path: "c.npz"); Issue.record("accepted a damaged archive") } catch {
        #expect(error is DataProblem && "\(error)".contains(message) && !"\(error)".contains("\n"), "\(error)")
      }
    }
    #expect(throws: DataProblem.self) { try ArrayData.split(["z": NumpyArray(shape: [1], element: .uint8, data: [1])], target: .infer, path: "z.npz", name: "z", testFraction: nil, defaultFraction: 0.2, seed: 0) }
  }

  @Test func mutatedArraysAreReadOrRefusedCleanly() {
    var mutator = Mutator(seed: 0x4E50)
    let seeds = [Self.compressed, Self.keras, Self.npy("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", [UInt8](repeating: 0x3F, count: 32))]
    let r = Fuzzing.run(rounds: 3000, input: { mutator.mutate(seeds[$0 % seeds.count]) }, read: { bytes in
      if let a = try? NumpyArray(parsing: bytes, path: "fuzz") { _ = try ArrayData.rowsToPredict(["x": a], path: "fuzz"); return }
      let arrays = try NumpyArchive.parse(bytes, path: "fuzz")
      _ = try ArrayData.split(arrays, target: .infer, path: "fuzz", name: "fuzz", testFraction: nil, defaultFraction: 0.5, seed: 0)
    }, isClean: { $0 is DataProblem })
    for (i, error) in r.unexpected { Issue.record("input \(i) raised \(type(of: error)), not a DataProblem: \(error)") }
    #expect(r.read + r.rejected == 3000 && r.rejected > 0 && r.read > 0)
  }
}
