"""Classifier architectures used by the programs and benchmarks.

Every builder returns a functional `keras.Model` taking images in [0, 1]
with normalisation by the data set's per-channel mean and std as its first
layer, and producing logits (float32, also under mixed precision). The
residual networks normalize with `FusedBatchNormalization` (Keras' batch
normalization on TensorFlow's fused kernel).

Public: the builders `small_cnn`, `conv3`, `preact_resnet18`, `wide_resnet`
and `build_classifier` (by name).
"""

import keras

from zerograd_tf import _names
from zerograd_tf.layers import FusedBatchNormalization

__all__ = ["small_cnn", "conv3", "preact_resnet18", "wide_resnet", "build_classifier"]

ARCHITECTURES = _names.ARCHITECTURES


def _normalized_input(input_shape, mean, std):
    inputs = keras.Input(input_shape, name="images")
    channels = input_shape[-1]
    mean = [0.5] * channels if mean is None else list(mean)
    std = [0.5] * channels if std is None else list(std)
    x = keras.layers.Normalization(mean=mean, variance=[s * s for s in std],
                                   name="normalize")(inputs)
    return inputs, x


def _logits(x, num_classes):
    return keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)


def small_cnn(input_shape, num_classes, mean=None, std=None, width=1):
    """The MNIST network of Wong et al. (2020).

    conv 16 (4x4, stride 2) -> conv 32 (4x4, stride 2) -> dense 100 -> logits,
    ReLU activations.

    Args:
        input_shape: `(H, W, C)` of the images.
        num_classes: number of classes (logits).
        mean: per-channel mean of the images in [0, 1], for the
            normalisation layer. Defaults to `None` (0.5 per channel).
        std: per-channel standard deviation. Defaults to `None` (0.5).
        width: multiplies the channel and unit counts. Defaults to 1.

    Returns:
        A functional `keras.Model` from images in [0, 1] to logits.

    Examples:
        >>> from zerograd_tf import architectures
        >>> model = architectures.small_cnn((28, 28, 1), 10)
        >>> model.output_shape, model.count_params()
        ((None, 10), 166406)
    """
    inputs, x = _normalized_input(input_shape, mean, std)
    x = keras.layers.Conv2D(16 * width, 4, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(32 * width, 4, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(100 * width, activation="relu")(x)
    return keras.Model(inputs, _logits(x, num_classes), name="small_cnn")


def conv3(input_shape, num_classes, mean=None, std=None, width=1):
    """A CPU-sized CIFAR network: conv 64-128-256 (3x3, same, ReLU, 2x2 max
    pooling after each) -> dense 256 -> logits.

    Args:
        input_shape: `(H, W, C)` of the images.
        num_classes: number of classes (logits).
        mean: per-channel mean of the images in [0, 1], for the
            normalisation layer. Defaults to `None` (0.5 per channel).
        std: per-channel standard deviation. Defaults to `None` (0.5).
        width: multiplies the channel and unit counts. Defaults to 1.

    Returns:
        A functional `keras.Model` from images in [0, 1] to logits.

    Examples:
        >>> from zerograd_tf import architectures
        >>> architectures.conv3((32, 32, 3), 10).output_shape
        (None, 10)
    """
    inputs, x = _normalized_input(input_shape, mean, std)
    for filters in (64, 128, 256):
        x = keras.layers.Conv2D(filters * width, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(256 * width, activation="relu")(x)
    return keras.Model(inputs, _logits(x, num_classes), name="conv3")


def _preact_block(x, filters, stride):
    out = FusedBatchNormalization()(x)
    out = keras.layers.ReLU()(out)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(out)
    else:
        shortcut = x
    out = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(out)
    out = FusedBatchNormalization()(out)
    out = keras.layers.ReLU()(out)
    out = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(out)
    return keras.layers.Add()([out, shortcut])


def preact_resnet18(input_shape, num_classes, mean=None, std=None, width=1):
    """PreAct ResNet-18 (He et al., 2016), the network of the ZeroGrad paper.

    Args:
        input_shape: `(H, W, C)` of the images.
        num_classes: number of classes (logits).
        mean: per-channel mean of the images in [0, 1], for the
            normalisation layer. Defaults to `None` (0.5 per channel).
        std: per-channel standard deviation. Defaults to `None` (0.5).
        width: multiplies the channel counts. Defaults to 1.

    Returns:
        A functional `keras.Model` from images in [0, 1] to logits.

    Examples:
        >>> from zerograd_tf import architectures
        >>> model = architectures.preact_resnet18((32, 32, 3), 10)
        >>> model.output_shape, round(model.count_params() / 1e6, 1)
        ((None, 10), 11.2)
    """
    inputs, x = _normalized_input(input_shape, mean, std)
    x = keras.layers.Conv2D(64 * width, 3, padding="same", use_bias=False)(x)
    for filters, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        x = _preact_block(x, filters * width, stride)
        x = _preact_block(x, filters * width, 1)
    x = FusedBatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _logits(x, num_classes), name="preact_resnet18")


def wide_resnet(input_shape, num_classes, mean=None, std=None, depth=28, width=10):
    """Wide ResNet-depth-width (Zagoruyko and Komodakis, 2016), pre-activation.

    Args:
        input_shape: `(H, W, C)` of the images.
        num_classes: number of classes (logits).
        mean: per-channel mean of the images in [0, 1], for the
            normalisation layer. Defaults to `None` (0.5 per channel).
        std: per-channel standard deviation. Defaults to `None` (0.5).
        depth: 6n + 4 (e.g. 16, 28, 34). Defaults to 28.
        width: widening factor k. Defaults to 10.

    Returns:
        A functional `keras.Model` from images in [0, 1] to logits.

    Raises:
        ValueError: if `depth` is not of the form 6n + 4.

    Examples:
        >>> from zerograd_tf import architectures
        >>> architectures.wide_resnet((32, 32, 3), 10, depth=10, width=1).name
        'wide_resnet10_1'
    """
    if (depth - 4) % 6 or depth < 10:
        raise ValueError(f"`depth` of a wide_resnet must be 6n + 4 >= 10, got {depth}.")
    blocks = (depth - 4) // 6
    inputs, x = _normalized_input(input_shape, mean, std)
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(x)
    for filters, stride in ((16 * width, 1), (32 * width, 2), (64 * width, 2)):
        for i in range(blocks):
            x = _preact_block(x, filters, stride if i == 0 else 1)
    x = FusedBatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _logits(x, num_classes), name=f"wide_resnet{depth}_{width}")


def build_classifier(name, input_shape, num_classes, mean=None, std=None, **options):
    """Builds an architecture by name.

    Args:
        name: one of `ARCHITECTURES` (`"small_cnn"`, `"conv3"`,
            `"preact_resnet18"`, `"wide_resnet"`).
        input_shape: `(H, W, C)`.
        num_classes: number of classes.
        mean: per-channel mean of the images in [0, 1]. Defaults to `None`
            (0.5 per channel).
        std: per-channel standard deviation. Defaults to `None` (0.5).
        **options: architecture options (`width`, and `depth` for
            `wide_resnet`; a `depth` given for another architecture is
            ignored). Defaults to each builder's defaults.

    Returns:
        A functional `keras.Model` from images in [0, 1] to logits.

    Raises:
        ValueError: for an unknown name (listing the valid ones).

    Examples:
        >>> from zerograd_tf import architectures
        >>> architectures.build_classifier("small_cnn", (28, 28, 1), 10, width=2).name
        'small_cnn'
    """
    builders = {"small_cnn": small_cnn, "conv3": conv3,
                "preact_resnet18": preact_resnet18, "wide_resnet": wide_resnet}
    if name not in builders:
        raise ValueError(f"unknown model {name!r}: use one of {', '.join(ARCHITECTURES)}.")
    if name != "wide_resnet":
        options.pop("depth", None)
    return builders[name](tuple(input_shape), num_classes, mean=mean, std=std, **options)
