"""A classifier under another dtype policy, and the float32 copy evaluations attack."""

import keras

from zerograd_tf import _keras_compat, _names, validation
from zerograd_tf.precision import is_lower_precision, leaf_layers


def with_dtype_policy(classifier, policy):
    """`classifier` with `policy` on every layer but its float32 logits,
    and the same weights.

    Args:
        classifier: a functional or `Sequential` `keras.Model` (nested
            functional or `Sequential` models are rebuilt too).
        policy: a dtype policy name, e.g. `"mixed_bfloat16"`.

    Returns:
        `classifier` itself when every layer that computes has `policy`
        already, else a copy whose layers have it, holding `classifier`'s
        weights (mixed policies keep float32 variables, so they are the
        same numbers); a layer named `logits` stays float32.

    Example:

    >>> import keras, numpy as np
    >>> from zerograd_tf.dtype_policies import with_dtype_policy
    >>> net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
    ...                         keras.layers.Dense(2, name="logits")])
    >>> copy = with_dtype_policy(net, "mixed_bfloat16")
    >>> [layer.dtype_policy.name for layer in copy.layers]
    ['mixed_bfloat16', 'float32']
    >>> all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), net.get_weights()))
    True
    """
    policy = keras.dtype_policies.get(policy)

    def wanted(layer):
        return "float32" if layer.name == "logits" else policy.name

    if all(layer.dtype_policy.name == wanted(layer) for layer in leaf_layers(classifier)):
        return classifier

    def clone(layer):
        layer_config = layer.get_config()
        layer_config["dtype"] = wanted(layer)
        return layer.__class__.from_config(layer_config)

    copy = keras.models.clone_model(classifier, clone_function=clone, recursive=True)
    copy.set_weights(classifier.get_weights())
    return copy


def float32_copy(model):
    """A float32 copy of a lower-precision classifier, with the same weights.

    Mixed-precision policies keep their variables in float32, so the copy
    computes with exactly the trained weights, only in float32. Evaluations
    attack it by default: a bfloat16 or float16 forward pass rounds the
    logits and the input gradient, which can weaken gradient attacks
    (gradient masking by rounding) and make robustness look higher than it
    is.

    Args:
        model: a built Keras classifier (functional or `Sequential`), or a
            `zerograd_tf.AdversarialModel`, whose classifier is copied.

    Returns:
        The copy (a functional `keras.Model`), or `model` itself (its
        classifier, for an adversarial model) when it computes in float32
        already.

    Raises:
        ValueError: for a subclassed classifier, which cannot be rebuilt
            under another policy (evaluate it as it runs instead).

    Example:

    >>> import keras, numpy as np
    >>> from zerograd_tf.dtype_policies import float32_copy, with_dtype_policy
    >>> net = with_dtype_policy(keras.Sequential(
    ...     [keras.Input((3,)), keras.layers.Dense(2, name="logits")]), "mixed_bfloat16")
    >>> copy = float32_copy(net)
    >>> copy.layers[-1].dtype_policy.name, all(
    ...     np.array_equal(a, b) for a, b in zip(copy.get_weights(), net.get_weights()))
    ('float32', True)
    """
    classifier = getattr(model, "classifier", model)
    if not is_lower_precision(classifier):
        return classifier
    if not _keras_compat.is_graph_model(classifier):
        raise ValueError(
            f"model: a float32 copy needs a functional or Sequential classifier, got "
            f"{type(classifier).__name__}; evaluate it as it runs (precision='as_trained')")
    copy = with_dtype_policy(classifier, "float32")
    if is_lower_precision(copy):
        raise ValueError(
            f"model: layers of {type(classifier).__name__} stayed below float32 in the copy "
            f"(a layer keras.models.clone_model cannot rebuild); evaluate it as it runs "
            f"(precision='as_trained')")
    return copy


def attacked_model(model, loss=None, precision="float32"):
    """The model an evaluation in `precision` attacks, and its loss.

    Args:
        model: a Keras classifier or a `zerograd_tf.AdversarialModel`.
        loss: the loss the attacks maximise, or `None` for the model's own.
            Defaults to `None`.
        precision: `"float32"` (a lower-precision model is replaced by its
            `float32_copy`) or `"as_trained"` (the model as it computes).
            Defaults to `"float32"`.

    Returns:
        `(model, loss)`: `model` and `loss` unchanged, or the float32 copy
        and the loss `model`'s attacks use (`loss`, else an adversarial
        model's `objective_loss()`), which the copy, a plain classifier,
        does not know.

    Raises:
        ValueError: for an unknown `precision`, or a model `float32_copy`
            cannot copy.

    Example:

    >>> import keras
    >>> from zerograd_tf.dtype_policies import attacked_model, with_dtype_policy
    >>> net = with_dtype_policy(keras.Sequential(
    ...     [keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2, name="logits")]),
    ...     "mixed_bfloat16")
    >>> copy, _ = attacked_model(net)
    >>> copy is net, attacked_model(net, precision="as_trained")[0] is net
    (False, True)
    """
    validation.check_choice(precision, "precision", _names.EVAL_PRECISIONS)
    if precision == "as_trained" or not is_lower_precision(getattr(model, "classifier", model)):
        return model, loss
    if loss is None and hasattr(model, "objective_loss"):
        loss = model.objective_loss()
    return float32_copy(model), loss
