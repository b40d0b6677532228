"""Keras' batch normalization on TensorFlow's fused kernel.

See `FusedBatchNormalization`.
"""

import keras
import tensorflow as tf

PACKAGE = "zerograd_tf"


@keras.saving.register_keras_serializable(package=PACKAGE)
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, computed by one fused kernel.

    Keras 3 normalizes with separate ops on the TensorFlow backend
    (`tf.nn.moments`, then subtract, scale and shift, and as many ops again
    in the backward pass). On a CPU those element-wise passes cost about a
    fifth of a PreAct ResNet-18 step (the README's profile). This layer
    computes the same thing with TensorFlow's `FusedBatchNormV3` kernel and
    its gradient: the same statistics, the same moving-average updates (the
    kernel's Bessel-corrected batch variance is converted back to the biased
    one Keras averages) and the same variables, so weights move freely
    between the two layers. It falls back to Keras' own computation where
    the kernel does not apply: masks, `renorm`, `synchronized`, inputs that
    are not 4-D, an axis other than the last, or a layer without both
    `center` and `scale`.

    Its arguments are those of `keras.layers.BatchNormalization`. Defaults
    to Keras' own (`momentum=0.99`, `epsilon=1e-3`, `center` and `scale`
    on).

    Examples:
        >>> import numpy as np, keras
        >>> from zerograd_tf.layers import FusedBatchNormalization
        >>> x = np.random.default_rng(0).random((8, 4, 4, 3), dtype="float32")
        >>> fused, plain = FusedBatchNormalization(), keras.layers.BatchNormalization()
        >>> fused.build(x.shape); plain.build(x.shape)
        >>> bool(np.allclose(fused(x, training=True), plain(x, training=True), atol=1e-5))
        True
    """

    def _fused(self, inputs, mask):
        # `renorm` arrived in Keras 3.11 and `synchronized` may not be there
        # either: absent means off.
        return (mask is None and not getattr(self, "renorm", False)
                and not getattr(self, "synchronized", False)
                and self.scale and self.center and len(inputs.shape) == 4
                and self.axis in (-1, 3))

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)
        gamma = tf.cast(self.gamma, tf.float32)
        beta = tf.cast(self.beta, tf.float32)
        if training and self.trainable:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
            # The kernel returns the unbiased batch variance; Keras averages
            # the biased one (what the normalization itself used).
            count = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
            variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
            momentum = self.momentum
            self.moving_mean.assign(
                tf.cast(self.moving_mean, tf.float32) * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(
                tf.cast(self.moving_variance, tf.float32) * momentum
                + variance * (1.0 - momentum))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon,
                data_format="NHWC", is_training=False)
        return tf.cast(y, self.compute_dtype)
