"""Keras layers of the package's architectures, one per module.

- `fused_batch_normalization.FusedBatchNormalization`: Keras' batch
  normalization on TensorFlow's fused kernel.
"""

from zerograd_tf.layers.fused_batch_normalization import FusedBatchNormalization

__all__ = ["FusedBatchNormalization"]
