import TensorCore

/// Every layer's loops, as one constraint: each layer declares the kernels it needs as a protocol of its own, next to
/// it (requirements with default implementations, so that `Float` and `Double`, conforming here, get code
/// specialised for them: see `Scalar`). A new layer adds its protocol here.
public typealias LayerKernels = ActivationKernels & PReLUKernels & SoftmaxKernels & LossKernels & ConvolutionKernels
  & PoolingKernels & AveragePoolingKernels & BatchNormKernels & DropoutKernels

extension Float: ActivationKernels, PReLUKernels, SoftmaxKernels, LossKernels, ConvolutionKernels, PoolingKernels,
  AveragePoolingKernels, BatchNormKernels, DropoutKernels {}
extension Double: ActivationKernels, PReLUKernels, SoftmaxKernels, LossKernels, ConvolutionKernels, PoolingKernels,
  AveragePoolingKernels, BatchNormKernels, DropoutKernels {}
