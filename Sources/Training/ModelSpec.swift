import Datasets
import Layers
import Optimizers
import TensorCore

/// The kinds of model `dpt train --model` builds.
public enum ModelKind: String, CaseIterable, Sendable {
  /// x W + b: regression with MSE, or a linear classifier with any loss.
  case linear
  /// x W + b followed by softmax cross-entropy (multinomial logistic regression).
  case softmax
  /// Dense layers with an activation between them: --hidden 256 or --hidden 256,128.
  case mlp
  /// Convolution blocks then dense layers: `cnn:C1,C2` (see `ModelSpec`).
  case cnn
}

/// The non-linearity between hidden layers: element-wise, or PReLU with learnable slopes.
public enum HiddenActivation: Equatable, Sendable, CustomStringConvertible {
  case elementwise(Activation)
  case prelu

  public var description: String {
    switch self {
    case .elementwise(let a): a.description
    case .prelu: "prelu"
    }
  }

  func layer<T: LayerKernels>(shape: [Int]) -> any Layer<T> {
    switch self {
    case .elementwise(let a): ActivationLayer<T>(a, shape: shape)
    case .prelu: PReLU<T>(shape: shape)
    }
  }
}

/// A model to build.
///
/// - linear / softmax: one dense layer (softmax: trained with cross-entropy on the logits).
/// - mlp: dense layers of the `hidden` widths with the activation after each, then the output layer.
/// - cnn: per entry C of `channels` a block conv kxk (C channels, stride 1, padding k/2 so the size is kept),
///   activation, 2x2 max pooling; then the `hidden` dense layers and the output layer. `cnn:6,16` with hidden
///   120,84 is LeNet-5's shape on 28x28 digits.
/// - outputSoftmax: a softmax layer after the output (probabilities; train with nll or hinge).
public struct ModelSpec: Equatable, Sendable, CustomStringConvertible {
  public var kind: ModelKind
  public var hidden: [Int]
  public var activation: HiddenActivation
  public var channels: [Int]
  public var kernel: Int
  public var outputSoftmax: Bool

  public init(kind: ModelKind, hidden: [Int] = [], activation: HiddenActivation = .elementwise(.relu),
              channels: [Int] = [], kernel: Int = 5, outputSoftmax: Bool = false) {
    self.kind = kind
    self.hidden = hidden
    self.activation = activation
    self.channels = channels
    self.kernel = kernel
    self.outputSoftmax = outputSoftmax
  }

  public init(kind: ModelKind, hidden: [Int] = [], activation: Activation) {
    self.init(kind: kind, hidden: hidden, activation: .elementwise(activation))
  }

  /// The network for samples of `inputShape` and `outputs` output values.
  public func build<T: LayerKernels>(inputShape: [Int], outputs: Int, as: T.Type = T.self) throws -> Network<T> {
    var layers: [any Layer<T>] = []
    var shape = inputShape
    if kind == .cnn {
      guard shape.count == 3 else {
        throw ConfigurationProblem.cnnNeedsImages(features: shape.reduce(1, *))
      }
      for c in channels {
        guard shape[1] >= 2 && shape[2] >= 2 else {
          throw ConfigurationProblem.imagesTooSmall(channels: channels, height: inputShape[1], width: inputShape[2])
        }
        layers.append(Conv2D<T>(inChannels: shape[0], outChannels: c, kernel: kernel, padding: kernel / 2,
                                height: shape[1], width: shape[2]))
        shape = layers.last!.outputShape
        layers.append(activation.layer(shape: shape))
        layers.append(MaxPool2D<T>(shape: shape, size: 2))
        shape = layers.last!.outputShape
      }
    }
    if shape.count != 1 {
      layers.append(Flatten<T>(shape: shape))
      shape = layers.last!.outputShape
    }
    if kind == .mlp || kind == .cnn {
      for h in hidden {
        layers.append(Dense<T>(inputs: shape[0], outputs: h))
        layers.append(activation.layer(shape: [h]))
        shape = [h]
      }
    }
    layers.append(Dense<T>(inputs: shape[0], outputs: outputs))
    if outputSoftmax { layers.append(Softmax<T>(size: outputs)) }
    return Network(layers)
  }

  public var description: String {
    var s: String
    switch kind {
    case .linear, .softmax: s = kind.rawValue
    case .mlp: s = "mlp \(hidden.map(String.init).joined(separator: ",")) \(activation)"
    case .cnn:
      s = "cnn \(channels.map(String.init).joined(separator: ",")) (\(kernel)x\(kernel))"
      if !hidden.isEmpty { s += " + \(hidden.map(String.init).joined(separator: ","))" }
      s += " \(activation)"
    }
    return outputSoftmax ? s + " + softmax" : s
  }
}
