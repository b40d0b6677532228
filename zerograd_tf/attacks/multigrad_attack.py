"""MultiGrad (Golgooni et al., 2021): keep the gradient signs that agree
across random starts.

`n` random starts, `s = sum_i sign(g_i)`, keep elements with
`|s| >= 2 th - n`, `delta = clip(alpha * sign(s), -epsilon, epsilon)` from
zero.
"""

import tensorflow as tf

from zerograd_tf import objectives as objectives_lib
from zerograd_tf import validation
from zerograd_tf.attacks import ops


def multigrad(objective, x, y, epsilon, alpha=None, *, samples=3, threshold=None,
              seed=None):
    """MultiGrad: a sign step on the elements whose signs agree.

    The input gradient is taken at `samples` independent uniform starts in
    the epsilon-ball, all in one batched forward/backward pass (the batch is
    tiled `samples` times). With `s = sum_i sign(g_i)`, elements with
    `|s| >= 2 * threshold - samples` are kept and the rest zeroed;
    `delta = clip(alpha * sign(s), -epsilon, epsilon)`, starting from zero.

    Args:
        objective: a Keras model, or a callable
            `(x, y) -> (per_example_loss, y_pred)`.
        x: float inputs in [0, 1], shape `(batch, ...)`.
        y: targets.
        epsilon: L-infinity radius in (0, 1] (a number or a scalar tensor).
        alpha: step size > 0. Defaults to `2 * epsilon` (any alpha >=
            epsilon gives a full step, since delta is clipped to the ball).
        samples: number of random starts n >= 1. Defaults to 3.
        threshold: th in [1, n], how many signs must agree. Defaults to n
            (unanimous).
        seed: stateless seed (required). Defaults to `None`, refused.

    Returns:
        `(delta, info)`: `delta` with `x`'s shape and
        `{"zeroed_fraction": (batch,)}`, the fraction of elements zeroed.

    Raises:
        ValueError: for arguments outside their valid ranges.

    Examples:
        >>> import numpy as np, keras
        >>> from zerograd_tf import attacks
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(3)])
        >>> x = np.random.default_rng(0).random((2, 4, 4, 1), dtype="float32")
        >>> delta, info = attacks.multigrad(model, x, np.array([0, 2]), 0.1, seed=0)
        >>> float(np.abs(delta).max()) <= 0.1 + 1e-7, tuple(info["zeroed_fraction"].shape)
        (True, (2,))
    """
    x = ops.check_common(x, epsilon, alpha)
    samples = validation.check_int(samples, "samples", 1)
    threshold = samples if threshold is None else threshold
    threshold = validation.check_int(threshold, "threshold", 1, samples)
    objective = objectives_lib.as_objective(objective)
    if alpha is None:
        alpha = 2 * epsilon
    seed = ops.as_seed(seed)
    shape = tf.shape(x)
    tiled_x = tf.concat([x] * samples, axis=0)
    tiled_y = None if y is None else tf.concat([tf.convert_to_tensor(y)] * samples, 0)
    noise = ops.uniform_noise(tf.concat([[samples], shape], 0), epsilon, seed, x.dtype,
                              batch_axis=1)
    starts = ops.project(tiled_x, tf.reshape(noise, tf.shape(tiled_x)))
    _, gradients, _ = ops.loss_and_gradient(objective, tiled_x + starts, tiled_y)
    signs = tf.reshape(tf.sign(gradients), tf.concat([[samples], shape], 0))
    total = tf.reduce_sum(signs, axis=0)
    keep = tf.abs(total) >= float(2 * threshold - samples)
    step = tf.where(keep, tf.cast(alpha, x.dtype) * tf.sign(total), tf.zeros_like(x))
    delta = ops.project(x, step, epsilon)
    info = {"zeroed_fraction": ops.per_example_mean(tf.cast(~keep, tf.float32))}
    return ops.finish(delta, info)
