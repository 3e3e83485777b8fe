import ArgumentParser
import Datasets
import Layers
import Optimizers
import Training
import Foundation
import _Support

/// Which rows a run uses: the data set, its split and the feature scaling. `train` and `lstsq` share it, so the
/// closed form is fitted on exactly the rows SGD trains on.
struct DataOptions: ParsableArguments {
  @Option(name: .customLong("dataset"), help: ArgumentHelp("mnist | fashion-mnist | corn | idx:DIR | csv:PATH (a CSV, target in the last column; text columns are categories) | npz:PATH (numpy arrays x, y or x_train, y_train, x_test, y_test) | npy:X.npy,Y.npy | images:DIR (PNG or JPEG, a folder per class) | text:PATH (a UTF-8 text, character by character, with --context) | synthetic:ROWS,FEATURES (default: mnist).", valueName: "name"))
  var givenDataset: String?

  /// --dataset, or mnist when it was not given (eval and predict take a checkpoint's own data set then).
  var dataset: String { givenDataset ?? "mnist" }

  @Option(help: ArgumentHelp(
    "What a CSV's last column holds: class labels 0, 1, ..., or a real-valued target.",
    discussion: "Without it, dpt reads class labels when the last column holds a few small non-negative whole numbers, and says what it inferred."))
  var target: CSVTargetKind?

  @Option(parsing: .unconditional, help: ArgumentHelp("With --target value: the number of target columns at the end of each row (default 1).", valueName: "k"))
  var targets: Int?

  @Option(help: ArgumentHelp(
    "Whether a CSV's first row names the columns: auto | yes | no.",
    discussion: "auto: a header when a cell of the first row is text (neither a number nor empty). A numeric header such as 1,2,3,4 needs yes. The first line of a run says which it was."))
  var header: CSVHeader = .auto

  @Option(help: ArgumentHelp(
    "What becomes of a CSV's empty cells: error | drop | mean.",
    discussion: "error (the default) names the first empty cell's line and column; drop leaves out every row that has one; mean fills a number column's gaps with its mean over the training rows and leaves a text column's gap without a category. The means are saved with the model and fill the gaps of files it predicts.",
    valueName: "policy"))
  var missing: MissingValues = .error

  @Option(parsing: .unconditional, help: ArgumentHelp(
    "Fraction of a table's rows held out as the test set, chosen by --seed (default 0.2; corn 0).",
    discussion: "Applies to mnist, corn, csv:PATH and synthetic; the IDX data sets have their own test files.", valueName: "fraction"))
  var testFraction: Double?

  @Option(parsing: .unconditional, help: ArgumentHelp(
    "With --dataset text:PATH: the characters a sample reads, its window (each position's target is the character after it).",
    valueName: "T"))
  var context: Int?

  @Option(help: ArgumentHelp("With --dataset images:DIR: resize every image to H x W pixels (bilinear), e.g. 28,28. Without it the images must all be of one size.",
                             valueName: "H,W"))
  var imageSize: ImageSize?

  @Option(parsing: .unconditional, help: ArgumentHelp("Fraction of the training rows held out as a validation set, chosen by --seed (train: 0; sweep: 0.1).", valueName: "fraction"))
  var valFraction: Double?

  @Option(parsing: .unconditional, help: ArgumentHelp("Seed of initialisation, shuffling, dropout and the train/test split. A sweep takes a list, 0,1,2: every setting is repeated with each seed.", valueName: "seed"))
  var seed: String = "0"

  /// The seeds of --seed: one for train, several for a sweep's repeats.
  var seeds: [UInt64] {
    get throws {
      let parts = seed.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
      let values = parts.map { UInt64($0) }
      guard !parts.isEmpty, values.allSatisfy({ $0 != nil }) else {
        throw ValidationError("--seed takes whole numbers from 0 to \(UInt64.max), or a sweep's list such as 0,1,2 (got '\(seed)')")
      }
      guard Set(values).count == values.count else { throw ValidationError("--seed lists a seed twice (got '\(seed)')") }
      return values.map { $0! }
    }
  }

  /// The first (for train, the only) seed.
  var firstSeed: UInt64 { (try? seeds.first) ?? 0 }

  @Flag(inversion: .prefixedNo, help: "Standardise table features with the training rows' mean and std (train: default on for tables; lstsq: off).")
  var standardize: Bool?

  func validate() throws {
    _ = try seeds
    if let f = testFraction, !(f >= 0 && f < 1) { throw ValidationError("--test-fraction must be in [0, 1) (got \(f))") }
    if let f = valFraction, !(f >= 0 && f < 1) { throw ValidationError("--val-fraction must be in [0, 1) (got \(f))") }
    if target != nil {
      switch try DatasetSource(dataset) {
      case .csv, .npz, .npy: break
      default: throw ValidationError("--target applies to --dataset csv:PATH, npz:PATH and npy:X.npy,Y.npy")
      }
    }
    if imageSize != nil, givenDataset != nil {
      guard case .images = try DatasetSource(dataset) else { throw ValidationError("--image-size applies to --dataset images:DIR") }
    }
    if targets != nil || header != .auto || missing != .error {
      guard case .csv = try DatasetSource(dataset) else { throw ValidationError("--targets, --header and --missing apply to --dataset csv:PATH") }
    }
    if let k = targets, k < 1 { throw ValidationError("--targets must be at least 1 (got \(k))") }
    if case .text = try? DatasetSource(dataset) {
      guard let t = context else { throw ValidationError("--dataset \(dataset) needs --context T, the characters a sample reads, e.g. --context 64") }
      guard t >= 1 && t <= 1 << 20 else { throw ValidationError("--context must be from 1 to \(1 << 20) characters (got \(t))") }
    } else if context != nil, givenDataset != nil {
      throw ValidationError("--context applies to --dataset text:PATH")
    }
    if targets != nil && target == .class { throw ValidationError("--targets applies to --target value (class labels take one column)") }
    if testFraction != nil, !(try DatasetSource(dataset)).isTable {
      throw ValidationError("--test-fraction applies to tables (mnist, corn, csv:PATH, synthetic); \(dataset) has its own test files")
    }
  }

  /// Reads this command's CSV once, for the inference of its target and for the load (shared by copies of the options).
  private var tables = Tables()
  private var reader: TableReader { tables.reader }

  /// The data set named by --dataset (a CSV's target kind from --target, or inferred from the file).
  var source: DatasetSource {
    get throws { try resolved.source }
  }

  /// What dpt inferred about a CSV's target (nil when --target said it, or for other data sets).
  var inferenceNote: String? {
    get throws { try resolved.note.map(ErrorMessages.text) }
  }

  var resolved: (source: DatasetSource, note: CSVInference?) {
    get throws {
      var s: DatasetSource
      do { s = try DatasetSource(dataset) } catch { throw ValidationError(ErrorMessages.line(error)) }
      if case .text(let path, _) = s { return (.text(path: path, context: context ?? 0), nil) }
      if case .images(let dir, _, _) = s { return (.images(directory: dir, height: imageSize?.height ?? 0, width: imageSize?.width ?? 0), nil) }
      let given: CSVTarget? = target.map { $0 == .class ? .classes : .values(targets ?? 1) }
      switch s {
      case .npz(let path, _): s = .npz(path: path, target: given ?? .infer)
      case .npy(let x, let y, _): s = .npy(features: x, labels: y, target: given ?? .infer)
      default: break
      }
      if case .npz = s { return (try? reader.resolve(s)) ?? (s, nil) }
      if case .npy = s { return (try? reader.resolve(s)) ?? (s, nil) }
      guard case .csv(let path, _, _, _) = s else { return (s, nil) }
      let gaps = missing == .error ? nil : missing
      switch target {
      case .class: s = .csv(path: path, target: .classes, header: header, missing: gaps)
      case .value: s = .csv(path: path, target: .values(targets ?? 1), header: header, missing: gaps)
      case nil: s = .csv(path: path, target: targets.map { .values($0) } ?? .infer, header: header, missing: gaps)
      }
      // A file that cannot be read here is reported where the data is loaded, on every rank together.
      return (try? reader.resolve(s)) ?? (s, nil)
    }
  }

  /// The data set, split into train and test, with `fraction` of the training rows held out for validation.
  /// `lenient`: a constant target or missing classes are accepted (training from given weights; see `DataWarning`).
  /// `encoding`: a trained model's input transform, to encode a CSV as its training rows were.
  func load(validation fraction: Double = 0, lenient: Bool = false, encoding: InputTransform? = nil) throws -> DataSplit {
    try reader.load(try source, testFraction: testFraction, seed: firstSeed, lenient: lenient, encoding: encoding)
      .holdingOutValidation(fraction: fraction, seed: firstSeed)
  }
}

/// Parses `--predict "6,4;10,5;14,8"`: rows separated by ';', values by ','.
func parsePredictRows(_ text: String) throws -> [[Double]] {
  let rows = text.split(separator: ";").map { $0.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) } }
  guard !rows.isEmpty, rows.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 != nil && $0!.isFinite } }) else {
    throw ValidationError("--predict takes rows of numbers such as \"6,4;10,5;14,8\" (got '\(text)')")
  }
  return rows.map { $0.map { $0! } }
}

/// The rows to predict: --predict, else the course's rows for corn, else none. Checks their width.
func predictionRows(_ text: String?, source: DatasetSource, features: Int) throws -> [[Double]] {
  let rows = try text.map(parsePredictRows) ?? (source == .corn ? Corn.predictionRows : [])
  if let bad = rows.firstIndex(where: { $0.count != features }) {
    throw CommandError("--predict row \(bad + 1) has \(rows[bad].count) values; \(source) has \(features) features")
  }
  return rows
}

extension CSVHeader: ExpressibleByArgument {}
extension MissingValues: ExpressibleByArgument {}

/// `--image-size H,W`.
struct ImageSize: ExpressibleByArgument, Equatable {
  var height: Int
  var width: Int

  init?(argument: String) {
    let parts = argument.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard parts.count == 2, let h = parts[0], let w = parts[1], (1...4096).contains(h), (1...4096).contains(w) else { return nil }
    (height, width) = (h, w)
  }
}

/// `--target`: the kind of a CSV's last column.
enum CSVTargetKind: String, ExpressibleByArgument, CaseIterable {
  case `class`, value
}

/// The options' own `TableReader`, made afresh when ArgumentParser decodes them (there is nothing to parse).
struct Tables: Decodable {
  let reader = TableReader()
  init() {}
  init(from decoder: any Decoder) throws {}
}
