"""ZeroGrad (Golgooni et al., 2021): FGSM-RS with the small input-gradient
elements zeroed.

Per example, the elements with `|g|` below the q-quantile of that example's
`|g|` (numpy's "linear" definition, see `per_example_quantile`) are set to
zero, so they keep their start value; the others take a sign step of size
`alpha` from a uniform random start, and the result is projected onto the
epsilon-ball and the box.
"""

import tensorflow as tf

from zerograd_tf import _names
from zerograd_tf import objectives as objectives_lib
from zerograd_tf import quantile as quantile_lib
from zerograd_tf import validation
from zerograd_tf.attacks import ops


def zerograd_mask(gradient, quantile, quantile_method="bisect"):
    """The gradient with its elements below the per-example q-quantile of
    `|g|` zeroed, and the number of zeroed elements of each example.

    Args:
        gradient: the input gradient, shape `(batch, ...)`.
        quantile: q in [0, 1) (a number or a scalar tensor).
        quantile_method: formulation of `per_example_quantile`. Defaults to
            `"bisect"`.

    Returns:
        `(masked_gradient, zeroed)`, `zeroed` an int32 count per example.

    Examples:
        >>> import tensorflow as tf
        >>> masked, zeroed = zerograd_mask(tf.constant([[0.1, -0.4, 0.2, 0.3]]), 0.5)
        >>> masked.numpy(), zeroed.numpy()
        (array([[ 0. , -0.4,  0. ,  0.3]], dtype=float32), array([2], dtype=int32))
    """
    magnitude = tf.abs(gradient)  # never -0.0: the quantile may skip the sign bit
    threshold = quantile_lib.per_example_quantile(
        magnitude, quantile, method=quantile_method, non_negative=True)
    keep = magnitude >= ops.per_example(threshold, magnitude)
    # A count, exact in any summation order: XLA and graph mode agree bitwise.
    flat = tf.reshape(keep, (tf.shape(keep)[0], -1))
    zeroed = tf.reduce_sum(tf.cast(~flat, tf.int32), axis=1)
    return tf.where(keep, gradient, tf.zeros_like(gradient)), zeroed


# The mask as one XLA cluster inside a graph-mode step: its 31 bisection
# passes fuse into a few loops instead of ~200 separately dispatched ops.
# Inside an XLA-compiled step it is simply inlined.
_zerograd_mask_xla = tf.function(
    lambda gradient, quantile: zerograd_mask(gradient, quantile, "bisect"),
    jit_compile=True, reduce_retracing=True)


def _zeroed_fraction(zeroed, like):
    size = tf.reduce_prod(tf.shape(like)[1:])
    return tf.cast(zeroed, tf.float32) / tf.cast(size, tf.float32)


def zerograd(objective, x, y, epsilon, alpha=None, *, quantile=_names.DEFAULT_QUANTILE,
             iterations=1, init="random", seed=None, quantile_method="bisect", mask_jit=True):
    """ZeroGrad: FGSM with the small input-gradient elements zeroed.

    At each of `iterations` steps, for every example, the elements whose
    `|g|` is below the q-quantile of that example's `|g|` (see
    `per_example_quantile`) are set to zero, so they keep their current value
    of delta; the others take a sign step of size `alpha`.

    Args:
        objective: a Keras model, or a callable
            `(x, y) -> (per_example_loss, y_pred)`.
        x: float inputs in [0, 1], shape `(batch, ...)`.
        y: targets.
        epsilon: L-infinity radius in (0, 1] (a number or a scalar tensor).
        alpha: step size > 0; defaults to `2 * epsilon` (reference default).
        quantile: q in [0, 1) (q = 0 is FGSM-RS), a number or a scalar
            tensor. Defaults to 0.35 (the reference's).
        iterations: number of zeroed sign steps, >= 1 (the reference's
            `zero_iters`). Defaults to 1.
        init: `"random"` or `"zero"`. Defaults to `"random"` (the
            reference's).
        seed: stateless seed; needed for `init="random"`. Defaults to
            `None`.
        quantile_method: formulation of `per_example_quantile`. Defaults to
            `"bisect"`.
        mask_jit: compile the mask (quantile, compare, select) with XLA as
            one function, also when the step itself runs in graph mode
            (`"bisect"` only; the results are bit-identical). Defaults to
            True.

    Returns:
        `(delta, info)`: `delta` with `x`'s shape and
        `{"zeroed_fraction": (batch,)}`, the fraction of gradient elements
        zeroed (averaged over iterations).

    Raises:
        ValueError: for arguments outside their valid ranges.

    Examples:
        >>> import numpy as np, keras
        >>> from zerograd_tf import attacks
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(3)])
        >>> x = np.random.default_rng(0).random((2, 4, 4, 1), dtype="float32")
        >>> delta, info = attacks.zerograd(model, x, np.array([0, 2]), 0.1, quantile=0.5,
        ...                                seed=0)
        >>> info["zeroed_fraction"].numpy()  # half of the 16 gradient elements
        array([0.5, 0.5], dtype=float32)
    """
    x = ops.check_common(x, epsilon, alpha, init)
    validation.check_quantile(quantile)
    iterations = validation.check_int(iterations, "iterations", 1)
    validation.check_choice(quantile_method, "quantile_method",
                            quantile_lib.QUANTILE_METHODS)
    objective = objectives_lib.as_objective(objective)
    if alpha is None:
        alpha = 2 * epsilon
    seed = ops.as_seed(seed) if init == "random" else None
    delta = ops.random_start(x, epsilon, init, seed)
    zeroed = tf.zeros(tf.shape(x)[:1], tf.float32)
    if mask_jit and quantile_method == "bisect":
        mask = _zerograd_mask_xla
        # A Python number exactly (float64), as `per_example_quantile` uses
        # it; a tensor or variable is read here, when the step runs (a
        # function argument must be a tensor).
        quantile = (tf.constant(float(quantile), tf.float64)
                    if isinstance(quantile, (int, float)) else tf.convert_to_tensor(quantile))
    else:
        def mask(gradient, quantile):
            return zerograd_mask(gradient, quantile, quantile_method)
    for _ in range(iterations):
        _, gradient, _ = ops.loss_and_gradient(objective, x + delta, y)
        with tf.name_scope("zerograd_mask"):
            gradient, count = mask(gradient, quantile)
            zeroed += _zeroed_fraction(count, gradient)
        delta = ops.project(x, delta + tf.cast(alpha, x.dtype) * tf.sign(gradient), epsilon)
    return ops.finish(delta, {"zeroed_fraction": zeroed / iterations})
