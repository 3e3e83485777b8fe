import TensorCore

/// What a data set asks a model to predict.
public enum LearningTask: String, Sendable, Codable {
  /// One class index per sample.
  case classification
  /// One or more real values per sample.
  case regression
}
