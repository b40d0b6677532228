"""Adversarial perturbations: FGSM(-RS), ZeroGrad, MultiGrad, N-FGSM and PGD.

Each function is pure TensorFlow: given an attack objective (a Keras model, or
a callable `(x, y) -> (per_example_loss, y_pred)`, see
`zerograd_tf.objectives`), a batch `x` in [0, 1] and its targets `y`, it
returns the perturbation `delta` (same shape as `x`). All randomness comes
from stateless Philox ops driven by the `seed` argument (a shape-(2,) integer
tensor, or an int), so the functions trace inside
`tf.function(jit_compile=True)` and a seeded call is reproducible.

Invariants: `|delta| <= epsilon` element-wise (except `n_fgsm`, which by
design does not project back to the ball) and `0 <= x + delta <= 1` (up to
one float32 rounding of the addition; models train on `clip(x + delta, 0, 1)`).
The perturbation carries no gradient: callers train on it as a constant.

Semantics follow the ZeroGrad reference code (Golgooni et al., 2021) and the
FGSM-RS code it builds on (Wong et al., 2020):

- FGSM: `delta = clip(delta0 + alpha * sign(g), -eps, eps)`, clipped so that
  `x + delta` is in [0, 1]; `delta0 = 0` ("zero") or `U(-eps, eps)`
  ("random", FGSM-RS), itself clipped into [0, 1] before the gradient `g` is
  taken at `x + delta0`.
- ZeroGrad: as FGSM, but elements with `|g|` below the per-example
  q-quantile of `|g|` are set to zero first (they keep `delta0`).
- MultiGrad: `n` random starts, `s = sum_i sign(g_i)`, keep elements with
  `|s| >= 2 th - n`, `delta = clip(alpha * sign(s), -eps, eps)` from zero.
- PGD: `steps` sign steps of size `alpha` from a random start, `restarts`
  times, keeping each example's highest-loss perturbation.
- N-FGSM (de Jorge et al., 2022): noise `U(-k eps, k eps)`, one sign step of
  `alpha` (default eps), no projection unless `clip` is given.
"""

import tensorflow as tf

from zerograd_tf import objectives as objectives_lib
from zerograd_tf import quantile as quantile_lib
from zerograd_tf import validation


# --------------------------------------------------------------------------
# Helpers shared by the attacks.
# --------------------------------------------------------------------------
def as_seed(seed):
    """Normalises a seed for the stateless random ops.

    Args:
        seed: an int, or an integer tensor of shape `(2,)`.

    Returns:
        An int64 tensor of shape `(2,)`.

    Raises:
        ValueError: if `seed` is None (attacks with random starts need one).
    """
    if seed is None:
        raise ValueError(
            "This perturbation draws random numbers and needs a `seed`: an int "
            "or a shape-(2,) integer tensor (e.g. derived from a step counter)."
        )
    if isinstance(seed, int):
        return tf.constant([seed, 0], tf.int64)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank == 0:
        return tf.stack([seed, tf.zeros_like(seed)])
    return tf.reshape(seed, (2,))


def _replica_slice():
    """`(replica_id, num_replicas)` inside a `tf.distribute` replica context."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def uniform_noise(shape, radius, seed, dtype=tf.float32, batch_axis=0):
    """`U(-radius, radius)` noise from the stateless Philox generator.

    Under a `tf.distribute` strategy with several replicas, each replica
    holds a contiguous slice of the global batch; it draws the noise of the
    whole global batch (same seed everywhere) and keeps its own slice, so
    every example gets the noise it would get on a single device, and a
    distributed run reproduces a single-device run. (An uneven last batch,
    split unequally, still gets valid but split-dependent noise.)

    Args:
        shape: shape of the local noise tensor.
        radius: half-width of the uniform distribution.
        seed: stateless seed, shape (2,).
        dtype: float dtype. Defaults to `tf.float32`.
        batch_axis: the axis of `shape` that indexes examples. Defaults
            to 0.

    Examples:
        >>> import tensorflow as tf
        >>> noise = uniform_noise((2, 3), 0.1, tf.constant([0, 1], tf.int64))
        >>> tuple(noise.shape), bool(tf.reduce_all(tf.abs(noise) <= 0.1))
        ((2, 3), True)
    """
    radius = tf.cast(radius, dtype)
    replica = _replica_slice()
    if replica is None:
        return tf.random.stateless_uniform(
            shape, seed=seed, minval=-radius, maxval=radius, dtype=dtype, alg="philox")
    replica_id, replicas = replica
    shape = tf.convert_to_tensor(shape, tf.int32)
    local = shape[batch_axis]
    global_shape = tf.tensor_scatter_nd_update(shape, [[batch_axis]], [local * replicas])
    noise = tf.random.stateless_uniform(
        global_shape, seed=seed, minval=-radius, maxval=radius, dtype=dtype, alg="philox")
    begin = tf.tensor_scatter_nd_update(tf.zeros_like(shape), [[batch_axis]],
                                        [local * tf.cast(replica_id, tf.int32)])
    return tf.slice(noise, begin, shape)


def project(x, delta, epsilon=None):
    """Clips `delta` into the epsilon-ball (if given), then into the box.

    The box step clips `delta` into `[-x, 1 - x]`, which only moves it towards
    zero, so `|delta| <= epsilon` holds exactly after both steps.

    Args:
        x: the inputs in [0, 1].
        delta: the perturbation.
        epsilon: the radius, or `None` for the box alone. Defaults to
            `None`.

    Examples:
        >>> import numpy as np
        >>> project(np.array([0.95, 0.5], "float32"), np.array([0.2, -0.2], "float32"),
        ...         0.1).numpy().round(2)
        array([ 0.05, -0.1 ], dtype=float32)
    """
    if epsilon is not None:
        epsilon = tf.cast(epsilon, delta.dtype)
        delta = tf.clip_by_value(delta, -epsilon, epsilon)
    return tf.clip_by_value(delta, -x, 1.0 - x)


def loss_and_gradient(objective, x, y):
    """Per-example losses, input gradient and predictions at `x`.

    The gradient is that of the *sum* of per-example losses, so each example's
    gradient is its own loss gradient, independent of the batch size.
    """
    with tf.name_scope("input_gradient"):
        with tf.GradientTape() as tape:
            tape.watch(x)
            losses, y_pred = objective(x, y)
            total = tf.reduce_sum(losses)
        gradient = tape.gradient(total, x)
    if gradient is None:
        raise ValueError(
            "The objective's loss does not depend on its input `x`, so there is "
            "no input gradient to attack with."
        )
    return losses, tf.stop_gradient(gradient), y_pred


def _start(x, epsilon, init, seed):
    if init == "zero":
        return tf.zeros_like(x)
    with tf.name_scope("random_start"):
        return project(x, uniform_noise(tf.shape(x), epsilon, seed, x.dtype))


def _per_example_mean(t):
    return tf.reduce_mean(tf.reshape(t, (tf.shape(t)[0], -1)), axis=1)


def _broadcast_per_example(values, like):
    """Reshapes per-example values `(batch,)` to broadcast against `like`."""
    rank = like.shape.rank
    if rank is not None:  # one reshape with a constant shape
        return tf.reshape(values, [-1] + [1] * (rank - 1))
    shape = tf.concat([tf.shape(values), tf.ones([tf.rank(like) - 1], tf.int32)], 0)
    return tf.reshape(values, shape)


def _finish(delta, info, return_info):
    delta = tf.stop_gradient(delta)
    return (delta, info) if return_info else delta


def _check_common(x, epsilon, alpha, init=None):
    """Validates the shared arguments; returns `x` as a tensor."""
    validation.check_image_batch(x)
    validation.check_epsilon(epsilon)
    if alpha is not None:
        validation.check_positive(alpha, "alpha")
    if init is not None:
        validation.check_choice(init, "init", validation.PERTURBATION_INITS)
    return tf.convert_to_tensor(x)


# --------------------------------------------------------------------------
# Single-step attacks.
# --------------------------------------------------------------------------
def fgsm(objective, x, y, epsilon, alpha=None, *, init="zero", seed=None,
         return_info=False):
    """FGSM, or FGSM-RS with `init="random"`.

    Args:
        objective: a Keras model, or a callable
            `(x, y) -> (per_example_loss, y_pred)`.
        x: float inputs in [0, 1], shape `(batch, ...)`.
        y: targets, as the objective expects them.
        epsilon: L-infinity radius in (0, 1] (pixel units).
        alpha: step size > 0. Defaults to `epsilon` for `init="zero"` and to
            `1.25 * epsilon` for `init="random"` (Wong et al., 2020).
        init: `"zero"` (FGSM) or `"random"` (uniform start, FGSM-RS).
            Defaults to `"zero"`.
        seed: stateless seed (int or shape-(2,) tensor); needed for
            `init="random"`. Defaults to `None`.
        return_info: also return a dict of per-example statistics.
            Defaults to False.

    Returns:
        `delta` with `x`'s shape (and the info dict if `return_info`).

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(3)])
        >>> x = np.random.default_rng(0).random((2, 4, 4, 1), dtype="float32")
        >>> y = np.array([0, 2])
        >>> delta = zg.fgsm(model, x, y, epsilon=0.1, init="random", seed=0)
        >>> float(np.abs(delta).max()) <= 0.1 + 1e-7
        True

    Raises:
        ValueError: for arguments outside their valid ranges.
    """
    x = _check_common(x, epsilon, alpha, init)
    objective = objectives_lib.as_objective(objective)
    if alpha is None:
        alpha = epsilon if init == "zero" else 1.25 * epsilon
    seed = as_seed(seed) if init == "random" else None
    delta = _start(x, epsilon, init, seed)
    _, gradient, _ = loss_and_gradient(objective, x + delta, y)
    delta = project(x, delta + tf.cast(alpha, x.dtype) * tf.sign(gradient), epsilon)
    return _finish(delta, {}, return_info)


def _zerograd_mask(gradient, quantile, quantile_method):
    """The gradient with its elements below the per-example q-quantile of
    `|g|` zeroed, and the number of zeroed elements of each example."""
    magnitude = tf.abs(gradient)  # never -0.0: the quantile may skip the sign bit
    threshold = quantile_lib.per_example_quantile(
        magnitude, quantile, method=quantile_method, non_negative=True)
    keep = magnitude >= _broadcast_per_example(threshold, magnitude)
    # A count, exact in any summation order: XLA and graph mode agree bitwise.
    flat = tf.reshape(keep, (tf.shape(keep)[0], -1))
    zeroed = tf.reduce_sum(tf.cast(~flat, tf.int32), axis=1)
    return tf.where(keep, gradient, tf.zeros_like(gradient)), zeroed


def _zeroed_fraction(zeroed, like):
    size = tf.reduce_prod(tf.shape(like)[1:])
    return tf.cast(zeroed, tf.float32) / tf.cast(size, tf.float32)


# The mask as one XLA cluster inside a graph-mode step: its 31 bisection
# passes fuse into a few loops instead of ~200 separately dispatched ops.
# Inside an XLA-compiled step it is simply inlined.
_zerograd_mask_xla = tf.function(
    lambda gradient, quantile: _zerograd_mask(gradient, quantile, "bisect"),
    jit_compile=True, reduce_retracing=True)


def zerograd(objective, x, y, epsilon, alpha=None, *, quantile=0.35,
             iterations=1, init="random", seed=None, quantile_method="bisect",
             mask_jit=True, return_info=False):
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
        epsilon: L-infinity radius in (0, 1].
        alpha: step size > 0; defaults to `2 * epsilon` (reference default).
        quantile: q in [0, 1) (q = 0 is FGSM-RS). Defaults to 0.35 (the
            reference's).
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
        return_info: also return `{"zeroed_fraction": (batch,)}`, the
            fraction of gradient elements zeroed (averaged over iterations).

    Returns:
        `delta` (and the info dict if `return_info`).

    Raises:
        ValueError: for arguments outside their valid ranges.

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(3)])
        >>> x = np.random.default_rng(0).random((2, 4, 4, 1), dtype="float32")
        >>> delta, info = zg.zerograd(model, x, np.array([0, 2]), 0.1, quantile=0.5, seed=0,
        ...                           return_info=True)
        >>> info["zeroed_fraction"].numpy()  # half of the 16 gradient elements
        array([0.5, 0.5], dtype=float32)
    """
    x = _check_common(x, epsilon, alpha, init)
    validation.check_quantile(quantile)
    iterations = validation.check_int(iterations, "iterations", 1)
    validation.check_choice(quantile_method, "quantile_method",
                            quantile_lib.QUANTILE_METHODS)
    objective = objectives_lib.as_objective(objective)
    if alpha is None:
        alpha = 2 * epsilon
    seed = as_seed(seed) if init == "random" else None
    delta = _start(x, epsilon, init, seed)
    zeroed = tf.zeros(tf.shape(x)[:1], tf.float32)
    if mask_jit and quantile_method == "bisect":
        mask = _zerograd_mask_xla
        # A Python number exactly (float64), as `per_example_quantile` uses
        # it; a variable read here (a function argument must be a tensor).
        quantile = (tf.constant(float(quantile), tf.float64)
                    if isinstance(quantile, (int, float)) else tf.convert_to_tensor(quantile))
    else:
        def mask(gradient, quantile):
            return _zerograd_mask(gradient, quantile, quantile_method)
    for _ in range(iterations):
        _, gradient, _ = loss_and_gradient(objective, x + delta, y)
        with tf.name_scope("zerograd_mask"):
            gradient, count = mask(gradient, quantile)
            zeroed += _zeroed_fraction(count, gradient)
        delta = project(x, delta + tf.cast(alpha, x.dtype) * tf.sign(gradient), epsilon)
    info = {"zeroed_fraction": zeroed / iterations}
    return _finish(delta, info, return_info)


def multigrad(objective, x, y, epsilon, alpha=None, *, samples=3,
              threshold=None, seed=None, return_info=False):
    """MultiGrad: keep the gradient signs that agree across random starts.

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
        epsilon: L-infinity radius in (0, 1].
        alpha: step size > 0. Defaults to `2 * epsilon` (any alpha >=
            epsilon gives a full step, since delta is clipped to the ball).
        samples: number of random starts n >= 1. Defaults to 3.
        threshold: th in [1, n], how many signs must agree. Defaults to n
            (unanimous).
        seed: stateless seed (required). Defaults to `None`, refused.
        return_info: also return `{"zeroed_fraction": (batch,)}`. Defaults
            to False.

    Returns:
        `delta` (and the info dict if `return_info`).

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(3)])
        >>> x = np.random.default_rng(0).random((2, 4, 4, 1), dtype="float32")
        >>> y = np.array([0, 2])
        >>> delta, info = zg.multigrad(model, x, y, 0.1, seed=0, return_info=True)
        >>> float(np.abs(delta).max()) <= 0.1 + 1e-7, tuple(info["zeroed_fraction"].shape)
        (True, (2,))

    Raises:
        ValueError: for arguments outside their valid ranges.
    """
    x = _check_common(x, epsilon, alpha)
    samples = validation.check_int(samples, "samples", 1)
    threshold = samples if threshold is None else threshold
    threshold = validation.check_int(threshold, "threshold", 1, samples)
    objective = objectives_lib.as_objective(objective)
    if alpha is None:
        alpha = 2 * epsilon
    seed = as_seed(seed)
    shape = tf.shape(x)
    tiled_x = tf.concat([x] * samples, axis=0)
    tiled_y = None if y is None else tf.concat([tf.convert_to_tensor(y)] * samples, 0)
    noise = uniform_noise(tf.concat([[samples], shape], 0), epsilon, seed, x.dtype,
                          batch_axis=1)
    starts = project(tiled_x, tf.reshape(noise, tf.shape(tiled_x)))
    _, gradients, _ = loss_and_gradient(objective, tiled_x + starts, tiled_y)
    signs = tf.reshape(tf.sign(gradients), tf.concat([[samples], shape], 0))
    total = tf.reduce_sum(signs, axis=0)
    keep = tf.abs(total) >= float(2 * threshold - samples)
    step = tf.where(keep, tf.cast(alpha, x.dtype) * tf.sign(total), tf.zeros_like(x))
    delta = project(x, step, epsilon)
    info = {"zeroed_fraction": _per_example_mean(tf.cast(~keep, tf.float32))}
    return _finish(delta, info, return_info)


def n_fgsm(objective, x, y, epsilon, alpha=None, *, noise_magnitude=2.0,
           clip=None, seed=None, return_info=False):
    """Noise-FGSM (de Jorge et al., 2022): a sign step from strong noise.

    `eta ~ U(-k epsilon, k epsilon)` with `k = noise_magnitude`,
    `delta = eta + alpha * sign(g(x + eta))`, clipped into the box but not
    back to the epsilon-ball (so `|delta|` can reach `k epsilon + alpha`),
    unless `clip` is given.

    Args:
        objective: a Keras model, or a callable
            `(x, y) -> (per_example_loss, y_pred)`.
        x: float inputs in [0, 1].
        y: targets.
        epsilon: the nominal radius in (0, 1].
        alpha: step size > 0. Defaults to `epsilon`.
        noise_magnitude: k > 0, the noise radius in units of epsilon.
            Defaults to 2.
        clip: radius > 0 to project delta onto, or `None` not to project.
            Defaults to `None`.
        seed: stateless seed (required). Defaults to `None`, refused.
        return_info: also return an (empty) info dict. Defaults to False.

    Returns:
        `delta` (and the info dict if `return_info`).

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(3)])
        >>> x = np.random.default_rng(0).random((2, 4, 4, 1), dtype="float32")
        >>> y = np.array([0, 2])
        >>> delta = zg.n_fgsm(model, x, y, 0.1, seed=0)
        >>> float(np.abs(delta).max()) <= 0.3 + 1e-7  # noise 2 eps, step eps
        True

    Raises:
        ValueError: for arguments outside their valid ranges.
    """
    x = _check_common(x, epsilon, alpha)
    validation.check_positive(noise_magnitude, "noise_magnitude")
    if clip is not None:
        validation.check_positive(clip, "clip")
    objective = objectives_lib.as_objective(objective)
    if alpha is None:
        alpha = epsilon
    seed = as_seed(seed)
    radius = tf.cast(noise_magnitude, x.dtype) * tf.cast(epsilon, x.dtype)
    eta = project(x, uniform_noise(tf.shape(x), radius, seed, x.dtype))
    _, gradient, _ = loss_and_gradient(objective, x + eta, y)
    delta = project(x, eta + tf.cast(alpha, x.dtype) * tf.sign(gradient), clip)
    return _finish(delta, {}, return_info)


# --------------------------------------------------------------------------
# Multi-step attack.
# --------------------------------------------------------------------------
def pgd(objective, x, y, epsilon, alpha=None, *, steps=10, restarts=1,
        random_start=True, early_stop=False, compact=False, seed=None, return_info=False):
    """L-infinity PGD with random restarts, keeping each example's worst case.

    Each restart starts from `U(-epsilon, epsilon)` (or zero) and takes
    `steps` sign steps of size `alpha`, projecting onto the epsilon-ball and
    the box after each. Over restarts, each example keeps the perturbation
    with the highest loss (ties go to the later restart, as in the reference
    `attack_pgd`). With `early_stop`, as in the reference evaluation, an
    example stops moving once it is misclassified, and an example that a
    restart misclassifies keeps that restart's perturbation and is not
    attacked again (a later, higher-loss perturbation could be classified
    correctly).

    Args:
        objective: a Keras model, or a callable
            `(x, y) -> (per_example_loss, y_pred)` (`y_pred` is needed for
            `early_stop`).
        x: float inputs in [0, 1].
        y: targets (integer labels or one-hot).
        epsilon: L-infinity radius in (0, 1].
        alpha: step size > 0; defaults to `epsilon / 4` (2/255 at 8/255).
        steps: number of steps k >= 1. Defaults to 10.
        restarts: number of restarts r >= 1. Defaults to 1.
        random_start: start each restart from uniform noise (else zero).
            Defaults to True.
        early_stop: freeze examples that are already misclassified.
            Defaults to False.
        compact: with `early_stop`, run each restart only on the examples no
            earlier restart has misclassified (gathered into a smaller
            batch). The result is the same; it is faster when many examples
            break early. Needs dynamic shapes, so not under XLA. Defaults to
            False.
        seed: stateless seed; needed with `random_start`. Defaults to
            `None`.
        return_info: also return `{"loss": (batch,)}`, the loss at the
            returned perturbation. Defaults to False.

    Returns:
        `delta` (and the info dict if `return_info`).

    Raises:
        ValueError: for arguments outside their valid ranges.

    Examples:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.full((2, 4), 0.5, np.float32)
        >>> delta = pgd(model, x, np.array([0, 1]), 0.1, steps=5, restarts=2, seed=0)
        >>> bool(np.all(np.abs(delta) <= 0.1 + 1e-6))
        True
    """
    x = _check_common(x, epsilon, alpha)
    steps = validation.check_int(steps, "steps", 1)
    restarts = validation.check_int(restarts, "restarts", 1)
    objective = objectives_lib.as_objective(objective)
    if alpha is None:
        alpha = epsilon / 4
    alpha = tf.cast(alpha, x.dtype)
    seed = as_seed(seed) if random_start else tf.zeros([2], tf.int64)
    labels = objectives_lib.class_labels(y) if early_stop else None
    y = None if y is None else tf.convert_to_tensor(y)
    compact = bool(compact) and early_stop

    def one_restart(x, y, labels, delta):
        """`steps` steps from `delta`: `(delta, loss, misclassified or None)`."""
        def step(i, delta, any_active):
            _, gradient, y_pred = loss_and_gradient(objective, x + delta, y)
            moved = project(x, delta + alpha * tf.sign(gradient), epsilon)
            if early_stop:
                active = objectives_lib.predicted_labels(y_pred) == labels
                moved = tf.where(_broadcast_per_example(active, x), moved, delta)
                any_active = tf.reduce_any(active)
            return i + 1, moved, any_active

        # With early stop, a restart ends once every example is misclassified
        # (the reference's `break`); the result is the same, only faster.
        _, delta, _ = tf.while_loop(
            lambda i, _, any_active: (i < steps) & any_active, step,
            (tf.constant(0), delta, tf.constant(True)),
            maximum_iterations=steps,
        )
        losses, y_pred = objective(x + delta, y)
        wrong = None
        if early_stop:
            wrong = objectives_lib.predicted_labels(y_pred) != labels
        return (tf.stop_gradient(delta), tf.stop_gradient(tf.cast(losses, tf.float32)),
                wrong)

    def start(restart):
        if not random_start:
            return tf.zeros_like(x)
        restart_seed = tf.random.experimental.stateless_fold_in(seed, restart)
        return project(x, uniform_noise(tf.shape(x), epsilon, restart_seed, x.dtype))

    def choose(delta, losses, wrong, best_delta, best_loss, fooled):
        """The per-example update of the best perturbation after a restart."""
        better = losses >= best_loss
        if early_stop:
            better = ~fooled & (better | wrong)
            fooled = fooled | wrong
        best_delta = tf.where(_broadcast_per_example(better, delta), delta, best_delta)
        return best_delta, tf.where(better, losses, best_loss), fooled

    def restart_body(r, best_delta, best_loss, fooled):
        delta0 = start(r)
        if not compact:
            delta, losses, wrong = one_restart(x, y, labels, delta0)
            best_delta, best_loss, fooled = choose(delta, losses, wrong, best_delta,
                                                   best_loss, fooled)
            return r + 1, best_delta, best_loss, fooled
        index = tf.where(~fooled)
        take = lambda t: tf.gather_nd(t, index)  # noqa: E731

        def attack_the_rest():
            delta, losses, wrong = one_restart(take(x), take(y), take(labels), take(delta0))
            sub_delta, sub_loss, sub_fooled = choose(
                delta, losses, wrong, take(best_delta), take(best_loss), take(fooled))
            return (tf.tensor_scatter_nd_update(best_delta, index, sub_delta),
                    tf.tensor_scatter_nd_update(best_loss, index, sub_loss),
                    tf.tensor_scatter_nd_update(fooled, index, sub_fooled))

        # Nothing left to attack: skip (a model on an empty batch is not
        # safe with every kernel).
        best_delta, best_loss, fooled = tf.cond(
            tf.shape(index)[0] > 0, attack_the_rest,
            lambda: (best_delta, best_loss, fooled))
        return r + 1, best_delta, best_loss, fooled

    best_loss = tf.fill(tf.shape(x)[:1], float("-inf"))
    fooled = tf.zeros(tf.shape(x)[:1], tf.bool)
    _, delta, best_loss, _ = tf.while_loop(
        lambda r, *_: r < restarts,
        restart_body,
        (tf.constant(0), tf.zeros_like(x), best_loss, fooled),
        maximum_iterations=restarts,
    )
    return _finish(delta, {"loss": best_loss}, return_info)
