"""Attack objectives: per-example losses of a model, as the attacks need them.

An *objective* is a callable `(x, y) -> (per_example_loss, y_pred)`. Every
attack in `zerograd_tf.attacks` maximises the objective's loss
within the epsilon-ball; `y_pred` serves PGD's early stop and restarts.
"""

import keras
import tensorflow as tf

from zerograd_tf import _keras_compat
from zerograd_tf import precision as precision_lib


def crossentropy(y_true, y_pred):
    """Per-example cross-entropy that adapts to the labels and the outputs.

    Integer labels of shape `(batch,)` or `(batch, 1)` use the sparse form,
    one-hot (or soft) labels of the output's shape the categorical form.
    Outputs produced by a Keras softmax activation are treated as
    probabilities (Keras then uses the logits underneath, which is stable);
    any other output is treated as logits.

    Args:
        y_true: integer class labels or one-hot targets.
        y_pred: the model's outputs, shape `(batch, classes)`.

    Returns:
        A float32 tensor of shape `(batch,)`.

    Examples:
        >>> import numpy as np, tensorflow as tf
        >>> logits = tf.constant([[2.0, 0.0], [0.0, 2.0]])
        >>> sparse = crossentropy(np.array([0, 1]), logits).numpy().round(4)
        >>> one_hot = crossentropy(np.eye(2, dtype="float32"), logits).numpy().round(4)
        >>> sparse, bool((sparse == one_hot).all())
        (array([0.1269, 0.1269], dtype=float32), True)
    """
    from_logits = not _keras_compat.is_probability_output(y_pred)
    y_true = tf.convert_to_tensor(y_true)
    if y_true.shape.rank == y_pred.shape.rank and y_true.shape[-1] not in (None, 1):
        loss = keras.losses.categorical_crossentropy(
            y_true, y_pred, from_logits=from_logits
        )
    else:
        loss = keras.losses.sparse_categorical_crossentropy(
            y_true, y_pred, from_logits=from_logits
        )
    return tf.cast(loss, tf.float32)


def per_example_loss(loss=None):
    """Turns a Keras loss specification into a per-example loss function.

    Args:
        loss: `None` (then `crossentropy` above), a loss name such as
            `"sparse_categorical_crossentropy"`, a `keras.losses.Loss`
            instance, or a callable `(y_true, y_pred) -> losses`. Losses with
            more than one value per example are averaged over the extra axes.

    Returns:
        A callable `(y_true, y_pred) -> float32 tensor of shape (batch,)`.

    Raises:
        ValueError: for a list or dict of losses (multi-output models): pass
            a single `attack_loss` instead.
    """
    if loss is None:
        return crossentropy
    if isinstance(loss, (list, tuple, dict)):
        raise ValueError(
            "The attack needs one loss, but got several (a multi-output model?): "
            "pass `attack_loss=` a single loss for the output to attack."
        )
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if isinstance(loss, keras.losses.Loss):
        function = loss.call
    elif callable(loss):
        function = loss
    else:
        raise ValueError(f"`loss` must be a loss name, Loss or callable, got {loss!r}.")

    def losses(y_true, y_pred):
        values = tf.cast(function(y_true, y_pred), tf.float32)
        if values.shape.rank is not None and values.shape.rank > 1:
            values = tf.reduce_mean(values, axis=list(range(1, values.shape.rank)))
        return values

    return losses


def model_objective(model, loss=None, training=False, stateless=None):
    """The attack objective of a Keras model.

    Args:
        model: a built `keras.Model` (or layer) mapping inputs to predictions.
        loss: the loss to maximise, as accepted by `per_example_loss`.
            Defaults to `None`: `crossentropy`.
        training: whether the model runs in training mode during the attack
            (the reference code attacks in training mode: BatchNorm then uses
            batch statistics). Defaults to False.
        stateless: whether to run the model through `stateless_call` and
            discard the new values of its non-trainable variables, so that the
            attack leaves no trace (no BatchNorm moving-statistics update, no
            dropout-seed advance). Defaults to `None`: when `training` is
            true and the model has non-trainable variables.

    Returns:
        A callable `(x, y) -> (per_example_loss, y_pred)`.

    Examples:
        >>> import numpy as np, keras
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(),
        ...                           keras.layers.Dense(2)])
        >>> objective = model_objective(model, training=True)  # stateless: BN untouched
        >>> losses, y_pred = objective(np.ones((4, 3), "float32"), np.zeros(4))
        >>> tuple(losses.shape), float(model.layers[0].moving_mean.numpy().sum())
        ((4,), 0.0)
    """
    losses = per_example_loss(loss)
    if stateless is None:
        stateless = bool(training) and bool(model.non_trainable_variables)
    # `stateless_call` passes keyword arguments straight to `call`.
    call_kwargs = (
        {"training": training} if _keras_compat.call_has_training_argument(model) else {}
    )

    def objective(x, y):
        if stateless:
            y_pred, _ = model.stateless_call(
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
                x,
                **call_kwargs,
            )
        else:
            y_pred = model(x, training=training)
        return losses(y, y_pred), y_pred

    # Input gradients through float16 layers underflow (to zero, so their
    # sign is 0) without scaling; `attacks.ops.input_gradient` scales the
    # loss by this power of two before the backward pass and divides after:
    # exact, and 2**12 leaves room below float16's largest value (65504) for
    # activation gradients up to 16.
    objective.gradient_scale = 2.0 ** 12 if precision_lib.computes_in_float16(model) else 1.0
    return objective


def inference_objective(model, loss=None):
    """The objective that evaluations and monitors attack: inference mode.

    An adversarial model's own `attack_objective(training=False)` (its
    attack loss, or the compiled one) unless `loss` is given; any other
    Keras model through `model_objective`.

    Args:
        model: a Keras classifier, or a `zerograd_tf.AdversarialModel`.
        loss: the loss to maximise. Defaults to `None`: the model's attack
            loss, or cross-entropy on logits for a plain model.

    Returns:
        A callable `(x, y) -> (per_example_loss, y_pred)`.

    Examples:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> losses, y_pred = inference_objective(model)(np.ones((4, 3), "float32"), np.zeros(4))
        >>> tuple(losses.shape), tuple(y_pred.shape)
        ((4,), (4, 2))
    """
    if loss is None and hasattr(model, "attack_objective"):
        return model.attack_objective(training=False)
    return model_objective(model, loss=loss, training=False)


def as_objective(objective):
    """Accepts a model or an objective callable; returns an objective.

    A `keras.layers.Layer` (a model) becomes `model_objective(model)`; a
    callable returning only the per-example loss gets `y_pred=None`.
    """
    if isinstance(objective, keras.layers.Layer):
        return model_objective(objective)
    if not callable(objective):
        raise TypeError(
            "`objective` must be a Keras model or a callable (x, y) -> "
            f"(per_example_loss, y_pred); got {type(objective).__name__}."
        )

    def wrapped(x, y):
        result = objective(x, y)
        if isinstance(result, (tuple, list)):
            loss, y_pred = result
        else:
            loss, y_pred = result, None
        return tf.cast(loss, tf.float32), y_pred

    return wrapped


def class_labels(y, num_classes=None):
    """Integer labels of shape `(batch,)` from sparse or one-hot targets."""
    y = tf.convert_to_tensor(y)
    if y.shape.rank is not None and y.shape.rank >= 2 and y.shape[-1] not in (None, 1):
        return tf.argmax(y, axis=-1, output_type=tf.int32)
    return tf.cast(tf.reshape(y, (-1,)), tf.int32)


def predicted_labels(y_pred):
    """The predicted class of each example (argmax over the last axis)."""
    return tf.argmax(y_pred, axis=-1, output_type=tf.int32)
