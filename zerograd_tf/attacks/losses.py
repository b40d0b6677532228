"""The losses of the AutoAttack family, on logits.

All three work on logits `z` of shape `(batch, classes)`. For a model that
ends in a softmax, `as_logits` recovers the logits underneath (or, when they
are not known, takes log-probabilities, which differ from the logits by a
per-example constant that every loss here cancels).
"""

import tensorflow as tf

from zerograd_tf import _keras_compat
from zerograd_tf import objectives as objectives_lib

_TINY = 1e-12


def as_logits(y_pred):
    """Logits (or log-probabilities) of a classifier's output.

    Args:
        y_pred: the model's output, `(batch, classes)`: logits, or the output
            of a Keras softmax.

    Returns:
        A float32 tensor of the same shape.

    Examples:
        >>> import numpy as np
        >>> import keras
        >>> z = tf.constant([[1.0, 2.0, 4.0]])
        >>> recovered = as_logits(keras.activations.softmax(z))
        >>> bool(np.allclose(recovered - recovered[:, :1], z - z[:, :1], atol=1e-5))
        True
    """
    y_pred = tf.convert_to_tensor(y_pred)
    if _keras_compat.is_probability_output(y_pred):
        logits = _keras_compat.softmax_logits(y_pred)
        if logits is None:
            logits = tf.math.log(tf.maximum(tf.cast(y_pred, tf.float32), 1e-30))
        y_pred = logits
    return tf.cast(y_pred, tf.float32)


def _sorted(z):
    return tf.sort(z, axis=-1, direction="ASCENDING")


def _pick(z, labels):
    return tf.gather(z, labels, axis=1, batch_dims=1)


def dlr_loss(y_true, z):
    """The difference-of-logits-ratio loss of Croce and Hein (2020).

    `-(z_y - max_{i != y} z_i) / (z_(1) - z_(3))`, with `z_(k)` the k-th
    largest logit. It is invariant to shifting and scaling the logits, so a
    model cannot hide from it by scaling its outputs. Needs at least three
    classes.

    Args:
        y_true: integer labels `(batch,)` (or one-hot).
        z: logits `(batch, classes)`.

    Returns:
        A float32 tensor `(batch,)`; positive once the example is
        misclassified.

    Examples:
        >>> z = tf.constant([[3.0, 1.0, 0.0, -1.0]])
        >>> round(float(dlr_loss(tf.constant([0]), z)[0]), 4)   # -(3 - 1) / (3 - 0)
        -0.6667
    """
    z = tf.cast(z, tf.float32)
    labels = objectives_lib.class_labels(y_true)
    ordered = _sorted(z)
    z_y = _pick(z, labels)
    top_is_y = tf.argmax(z, axis=-1, output_type=tf.int32) == labels
    best_other = tf.where(top_is_y, ordered[:, -2], ordered[:, -1])
    return -(z_y - best_other) / (ordered[:, -1] - ordered[:, -3] + _TINY)


def targeted_dlr_loss(y_true, z, targets):
    """The targeted DLR loss of APGD-T (Croce and Hein, 2020).

    `-(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2)` for target class `t`.
    Needs at least four classes.

    Args:
        y_true: integer labels `(batch,)` (or one-hot).
        z: logits `(batch, classes)`.
        targets: integer target classes `(batch,)`.

    Returns:
        A float32 tensor `(batch,)`.

    Examples:
        >>> z = tf.constant([[3.0, 1.0, 0.0, -1.0]])
        >>> round(float(targeted_dlr_loss(tf.constant([0]), z, tf.constant([1]))[0]), 4)
        -0.5714
    """
    z = tf.cast(z, tf.float32)
    labels = objectives_lib.class_labels(y_true)
    ordered = _sorted(z)
    gap = _pick(z, labels) - _pick(z, tf.cast(targets, tf.int32))
    return -gap / (ordered[:, -1] - 0.5 * (ordered[:, -3] + ordered[:, -4]) + _TINY)


def margin_loss(y_true, z):
    """The margin `z_y - max_{i != y} z_i` the Square attack minimises.

    Args:
        y_true: integer labels `(batch,)` (or one-hot).
        z: logits `(batch, classes)`.

    Returns:
        A float32 tensor `(batch,)`; `<= 0` once the example is misclassified.

    Examples:
        >>> z = tf.constant([[3.0, 1.0, 0.0]])
        >>> float(margin_loss(tf.constant([0]), z)[0])
        2.0
    """
    z = tf.cast(z, tf.float32)
    labels = objectives_lib.class_labels(y_true)
    z_y = _pick(z, labels)
    others = tf.where(tf.one_hot(labels, tf.shape(z)[-1]) > 0, -float("inf"), z)
    return z_y - tf.reduce_max(others, axis=-1)


def cross_entropy_loss(y_true, z):
    """Per-example softmax cross-entropy on logits (APGD-CE's loss).

    Examples:
        >>> z = tf.constant([[0.0, 0.0]])
        >>> round(float(cross_entropy_loss(tf.constant([1]), z)[0]), 4)
        0.6931
    """
    labels = objectives_lib.class_labels(y_true)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.cast(z, tf.float32))
