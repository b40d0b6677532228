"""N-FGSM (de Jorge et al., 2022): one sign step from strong noise.

`eta ~ U(-k epsilon, k epsilon)`, `delta = eta + alpha * sign(g(x + eta))`,
clipped into the box but not back to the epsilon-ball unless `clip` is
given. With `quantile` q > 0 (ZeroGrad on N-FGSM's noise), the elements of
`g` below the per-example q-quantile of `|g|` are zeroed first, as ZeroGrad
does: they keep their noise.
"""

import tensorflow as tf

from zerograd_tf import objectives as objectives_lib
from zerograd_tf import quantile as quantile_lib
from zerograd_tf import validation
from zerograd_tf.attacks import ops
from zerograd_tf.attacks.zerograd_attack import zerograd_mask


def n_fgsm(objective, x, y, epsilon, alpha=None, *, noise_magnitude=2.0, clip=None,
           seed=None, quantile=0.0, quantile_method="bisect"):
    """Noise-FGSM: a sign step from noise of radius `k * epsilon`.

    `eta ~ U(-k epsilon, k epsilon)` with `k = noise_magnitude`,
    `delta = eta + alpha * sign(g(x + eta))`, clipped into the box but not
    back to the epsilon-ball (so `|delta|` can reach `k epsilon + alpha`),
    unless `clip` is given. With `quantile` q > 0, per example the elements
    of `g` whose magnitude is below the q-quantile of `|g|` are zeroed
    before the sign step (`zerograd_mask`), so they keep their noise: the
    small, sign-unstable elements ZeroGrad removes, on top of N-FGSM.

    Args:
        objective: a Keras model, or a callable
            `(x, y) -> (per_example_loss, y_pred)`.
        x: float inputs in [0, 1].
        y: targets.
        epsilon: the nominal radius in (0, 1] (a number or a scalar tensor).
        alpha: step size > 0. Defaults to `epsilon`.
        noise_magnitude: k > 0, the noise radius in units of epsilon.
            Defaults to 2.
        clip: radius > 0 to project delta onto, or `None` not to project.
            Defaults to `None`.
        seed: stateless seed (required). Defaults to `None`, refused.
        quantile: q in [0, 1), a number or a scalar tensor; 0 (a Python
            number) is N-FGSM itself, without the mask. Defaults to 0.
        quantile_method: formulation of `per_example_quantile` for the
            mask. Defaults to `"bisect"`.

    Returns:
        `(delta, info)`: `delta` with `x`'s shape, and an empty dict, or
        with a mask `{"zeroed_fraction": (batch,)}`.

    Raises:
        ValueError: for arguments outside their valid ranges.

    Examples:
        >>> import numpy as np, keras
        >>> from zerograd_tf import attacks
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(3)])
        >>> x = np.random.default_rng(0).random((2, 4, 4, 1), dtype="float32")
        >>> delta, _ = attacks.n_fgsm(model, x, np.array([0, 2]), 0.1, seed=0)
        >>> float(np.abs(delta).max()) <= 0.3 + 1e-7  # noise 2 eps, step eps
        True
    """
    x = ops.check_common(x, epsilon, alpha)
    validation.check_positive(noise_magnitude, "noise_magnitude")
    validation.check_quantile(quantile)
    validation.check_choice(quantile_method, "quantile_method",
                            quantile_lib.QUANTILE_METHODS)
    masked = not (isinstance(quantile, (int, float)) and quantile == 0)
    if clip is not None:
        validation.check_positive(clip, "clip")
    objective = objectives_lib.as_objective(objective)
    if alpha is None:
        alpha = epsilon
    seed = ops.as_seed(seed)
    radius = tf.cast(noise_magnitude, x.dtype) * tf.cast(epsilon, x.dtype)
    eta = ops.project(x, ops.uniform_noise(tf.shape(x), radius, seed, x.dtype))
    _, gradient, _ = ops.loss_and_gradient(objective, x + eta, y)
    info = {}
    if masked:
        with tf.name_scope("zerograd_mask"):
            gradient, zeroed = zerograd_mask(gradient, quantile, quantile_method)
        size = tf.cast(tf.reduce_prod(tf.shape(gradient)[1:]), tf.float32)
        info["zeroed_fraction"] = tf.cast(zeroed, tf.float32) / size
    delta = ops.project(x, eta + tf.cast(alpha, x.dtype) * tf.sign(gradient), clip)
    return ops.finish(delta, info)
