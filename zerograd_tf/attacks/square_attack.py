"""The Square attack in the L-infinity ball (Andriushchenko et al., 2020).

"Square Attack: a query-efficient black-box adversarial attack via random
search", ECCV 2020. It never uses a gradient, only the model's outputs, so
gradient masking (a rounding layer, a stop-gradient, a saturated softmax)
does not hide adversarial examples from it: it is AutoAttack's check
against masking.

As in the reference: the margin loss `z_y - max_{i != y} z_i`, a start of
vertical stripes (`x + epsilon * s`, one random sign per column and
channel), then at iteration `i` one square window of side
`s = max(round(sqrt(p * h * w)), 1)` whose pixels are set to `+-epsilon`
(one random sign per channel) around the best point so far; the candidate is
kept when it lowers the margin loss or misclassifies. `p` follows the
reference's schedule, rescaled to the query budget: `p_init` halved at
10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of 10,000.

Two differences from AutoAttack's PyTorch code. It draws one window and one
set of signs for the whole batch; here every example draws its own, as in
the paper's Algorithm 1 and its original code, so an example's result does
not depend on which other examples share its batch. And its window corner
is drawn from `[0, h - s)`, so a window never touches the last row or
column once squares are small; here it is drawn from `[0, h - s]`, so every
pixel can move (on a 28x28 image the reference leaves 55 of 784 pixels at
their starting stripe for the last part of the search).
"""

import tensorflow as tf

from zerograd_tf import objectives as objectives_lib
from zerograd_tf import validation
from zerograd_tf.attacks import ops

# The reference's schedule: above each bound (of 10,000 rescaled
# iterations) p is p_init divided by the factor.
_SCHEDULE = ((10, 2), (50, 4), (200, 8), (500, 16), (1000, 32), (2000, 64),
             (4000, 128), (6000, 256), (8000, 512))


def square_fraction(iteration, queries, p_init=0.8):
    """The fraction `p` of the image a square covers at `iteration`.

    The function the attack runs (on a tensor iteration counter).

    Args:
        iteration: the iteration, an int or an integer tensor.
        queries: the query budget.
        p_init: the fraction at the start. Defaults to 0.8.

    Returns:
        A float64 scalar tensor.

    Examples:
        >>> [float(square_fraction(i, 5000)) for i in (0, 5, 6, 100, 4999)]
        [0.8, 0.8, 0.4, 0.2, 0.0015625]
    """
    it = tf.cast(tf.cast(iteration, tf.float64) / queries * 10000, tf.int32)
    factor = tf.constant(1.0, tf.float64)
    for bound, value in _SCHEDULE:
        factor = tf.where(it > bound, tf.constant(float(value), tf.float64), factor)
    return p_init / factor


def square(objective, x, y, epsilon, *, queries=5000, p_init=0.8, seed=None):
    """Square attack: random search for a point that lowers the margin.

    Args:
        objective: a callable `(x, y) -> (margin, y_pred)` whose loss is the
            margin `z_y - max_{i != y} z_i` (see
            `zerograd_tf.attacks.losses.margin_loss`); the attack lowers it.
        x: float images in [0, 1], shape `(batch, height, width, channels)`.
        y: integer labels `(batch,)` or one-hot targets.
        epsilon: L-infinity radius in (0, 1].
        queries: iterations of the random search, >= 1 (the reference's
            `n_queries`; the starting point costs one model call more).
            Defaults to 5000 (the reference).
        p_init: the initial fraction of the image a square covers, in
            (0, 1]. Defaults to 0.8 (the reference).
        seed: stateless seed (int or shape-(2,) tensor). Defaults to `None`,
            i.e. 0.

    Returns:
        `(delta, info)`: `delta` with `x`'s shape; `info` holds `fooled`
        (bool `(batch,)`) and `queries` (int `(batch,)`, the model calls
        spent on each example).

    Raises:
        ValueError: for arguments outside their valid ranges or inputs that
            are not image batches.

    Examples:
        >>> import keras, numpy as np
        >>> from zerograd_tf import objectives
        >>> from zerograd_tf.attacks import losses
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(3)])
        >>> objective = objectives.model_objective(model, loss=losses.margin_loss)
        >>> x = np.full((2, 4, 4, 1), 0.5, np.float32)
        >>> delta, info = square(objective, x, np.array([0, 1]), 0.1, queries=20)
        >>> bool(np.all(np.abs(delta) <= 0.1 + 1e-6))
        True
    """
    validation.check_image_batch(x)
    epsilon = validation.check_epsilon(epsilon)
    queries = validation.check_int(queries, "queries", 1)
    if not 0 < p_init <= 1:
        raise ValueError(f"`p_init` must be in (0, 1], got {p_init!r}.")
    x = tf.convert_to_tensor(x)
    if x.shape.rank != 4:
        raise ValueError(
            "The Square attack needs image batches (batch, height, width, channels); "
            f"got inputs of shape {x.shape}.")
    objective = objectives_lib.as_objective(objective)
    seed = ops.as_seed(0 if seed is None else seed)
    labels = objectives_lib.class_labels(y)
    eps = tf.cast(epsilon, x.dtype)
    shape = tf.shape(x)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    area = tf.cast(height * width, tf.float64)

    def margin_at(points):
        margin, y_pred = objective(points, y)
        wrong = objectives_lib.predicted_labels(y_pred) != labels
        # A misclassified point has a non-positive margin by definition;
        # argmax ties aside, both tests agree.
        return tf.where(wrong, tf.minimum(margin, 0.0), margin)

    def signs(shape_, draw_seed):
        u = ops.replica_uniform(shape_, draw_seed, dtype=x.dtype)
        return tf.where(u < 0.5, -tf.ones_like(u), tf.ones_like(u))

    start_seed = tf.random.experimental.stateless_fold_in(seed, -1)
    stripes = signs(tf.stack([batch, 1, width, channels]), start_seed)
    x_best = tf.clip_by_value(x + eps * stripes, 0.0, 1.0)
    x_best.set_shape(x.shape)
    margin_best = margin_at(x_best)
    spent = tf.ones([batch], tf.int32)

    def body(i, x_best, margin_best, spent):
        active = margin_best > 0
        p = square_fraction(i, queries, p_init)
        side = tf.cast(tf.maximum(tf.round(tf.sqrt(p * area)), 1.0), tf.int32)
        side = tf.minimum(side, tf.minimum(height, width))
        step_seed = tf.random.experimental.stateless_fold_in(seed, i)
        seeds = tf.random.experimental.stateless_split(step_seed, 3)
        uh = ops.replica_uniform([batch], seeds[0], dtype=tf.float32)
        uw = ops.replica_uniform([batch], seeds[1], dtype=tf.float32)
        top = tf.minimum(tf.cast(uh * tf.cast(height - side + 1, tf.float32), tf.int32),
                         height - side)
        left = tf.minimum(tf.cast(uw * tf.cast(width - side + 1, tf.float32), tf.int32),
                          width - side)
        rows = tf.range(height)[None, :]
        cols = tf.range(width)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)
        window = in_rows[:, :, None, None] & in_cols[:, None, :, None]
        colour = signs(tf.stack([batch, 1, 1, channels]), seeds[2])
        candidate = tf.where(window, x_best + 2.0 * eps * colour, x_best)
        candidate = ops.project_point(x, candidate, eps)
        candidate.set_shape(x.shape)
        margin = margin_at(candidate)
        accept = active & ((margin < margin_best) | (margin <= 0))
        x_best = tf.where(accept[:, None, None, None], candidate, x_best)
        margin_best = tf.where(accept, margin, margin_best)
        spent = spent + tf.cast(active, tf.int32)
        return i + 1, x_best, margin_best, spent

    _, x_best, margin_best, spent = tf.while_loop(
        lambda i, _, margin_best, __: (i < queries) & tf.reduce_any(margin_best > 0),
        body, (tf.constant(0), x_best, margin_best, spent),
        maximum_iterations=queries)
    return ops.finish(x_best - x, {"fooled": margin_best <= 0, "queries": spent})
