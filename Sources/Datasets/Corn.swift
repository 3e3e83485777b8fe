import Foundation
import TensorCore

/// The corn table of the course (Salvatore & Reagle, Schaum's Outline of Statistics and Econometrics, p. 157), the
/// same rows as `data/corn.csv`.
public enum Corn {
  public static let csv = """
    fertilizer,insecticide,corn
    6,4,40
    10,4,44
    12,5,46
    14,7,48
    16,9,52
    18,12,58
    22,14,60
    24,20,68
    26,21,74
    32,24,80

    """
  /// The course's prediction rows (fertilizer, insecticide).
  public static let predictionRows: [[Double]] = [[6, 4], [10, 5], [14, 8]]
}
