"""FGSM and FGSM-RS (Goodfellow et al., 2015; Wong et al., 2020).

`delta = clip(delta0 + alpha * sign(g), -epsilon, epsilon)`, clipped so that
`x + delta` is in [0, 1]; `delta0 = 0` ("zero") or `U(-epsilon, epsilon)`
("random", FGSM-RS), itself clipped into [0, 1] before the gradient `g` is
taken at `x + delta0`.
"""

import tensorflow as tf

from zerograd_tf import objectives as objectives_lib
from zerograd_tf.attacks import ops


def fgsm(objective, x, y, epsilon, alpha=None, *, init="zero", seed=None):
    """FGSM, or FGSM-RS with `init="random"`.

    Args:
        objective: a Keras model, or a callable
            `(x, y) -> (per_example_loss, y_pred)`.
        x: float inputs in [0, 1], shape `(batch, ...)`.
        y: targets, as the objective expects them.
        epsilon: L-infinity radius in (0, 1] (pixel units), a number or a
            scalar tensor.
        alpha: step size > 0. Defaults to `epsilon` for `init="zero"` and to
            `1.25 * epsilon` for `init="random"` (Wong et al., 2020).
        init: `"zero"` (FGSM) or `"random"` (uniform start, FGSM-RS).
            Defaults to `"zero"`.
        seed: stateless seed (int or shape-(2,) tensor); needed for
            `init="random"`. Defaults to `None`.

    Returns:
        `(delta, info)`: `delta` with `x`'s shape, and an empty dict.

    Raises:
        ValueError: for arguments outside their valid ranges.

    Examples:
        >>> import numpy as np, keras
        >>> from zerograd_tf import attacks
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(3)])
        >>> x = np.random.default_rng(0).random((2, 4, 4, 1), dtype="float32")
        >>> delta, _ = attacks.fgsm(model, x, np.array([0, 2]), epsilon=0.1,
        ...                         init="random", seed=0)
        >>> float(np.abs(delta).max()) <= 0.1 + 1e-7
        True
    """
    x = ops.check_common(x, epsilon, alpha, init)
    objective = objectives_lib.as_objective(objective)
    if alpha is None:
        alpha = epsilon if init == "zero" else 1.25 * epsilon
    seed = ops.as_seed(seed) if init == "random" else None
    delta = ops.random_start(x, epsilon, init, seed)
    _, gradient, _ = ops.loss_and_gradient(objective, x + delta, y)
    delta = ops.project(x, delta + tf.cast(alpha, x.dtype) * tf.sign(gradient), epsilon)
    return ops.finish(delta, {})
