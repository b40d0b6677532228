"""A classifier under another dtype policy, and the float32 copy evaluations attack."""

import keras

from zerograd_tf import _keras_compat
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
