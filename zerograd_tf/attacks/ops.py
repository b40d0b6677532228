"""Operations every attack shares: seeds, noise, projection, input gradients.

The attacks of `zerograd_tf.attacks` are pure TensorFlow functions built
from these pieces, so that each piece exists once: a stateless seed
(`as_seed`), uniform noise that is the same on one device and under
`tf.distribute` (`uniform_noise`, `replica_uniform`), the projection onto the epsilon-ball and
the [0, 1] box (`project`, `project_point`), the input gradient of the
summed per-example loss (`loss_and_gradient`) and per-example reductions
(`per_example_mean`, `per_example`).

Hyperparameters (`epsilon`, `alpha`, ...) may be Python numbers or tensors
(a model's variables, read when the traced step runs), never frozen into a
trace.
"""

import tensorflow as tf

from zerograd_tf import validation


def as_seed(seed):
    """Normalises a seed for the stateless random ops.

    Args:
        seed: an int, or an integer tensor of shape `(2,)`.

    Returns:
        An int64 tensor of shape `(2,)`.

    Raises:
        ValueError: if `seed` is None (attacks with random starts need one).

    Examples:
        >>> as_seed(3).numpy()
        array([3, 0])
    """
    if seed is None:
        raise ValueError(
            "This attack draws random numbers and needs a `seed`: an int "
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
        radius: half-width of the uniform distribution (a number or a
            scalar tensor).
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
    return replica_uniform(shape, seed, -radius, radius, dtype, batch_axis, alg="philox")


def replica_uniform(shape, seed, minval=0.0, maxval=1.0, dtype=tf.float32, batch_axis=0,
                    alg="auto_select"):
    """`tf.random.stateless_uniform` that a distributed run draws as one device does.

    On one device this is `tf.random.stateless_uniform(shape, seed, minval,
    maxval, dtype, alg)`. Inside a `tf.distribute` replica context with
    several replicas, each replica draws the values of the global batch
    (its local batch times the number of replicas along `batch_axis`, same
    seed everywhere) and keeps its own contiguous slice, as `tf.distribute`
    splits a batch evenly: every example gets the values it would get on
    one device. Where a batch is split unevenly (the last batch of a data
    set) or replicas do not hold contiguous slices in replica order
    (a multi-worker input pipeline), the values are still valid draws but
    depend on the split. Each replica draws the whole batch's values, so
    this costs replicas times the memory of the local draw.

    Args:
        shape: shape of the local tensor: a list of ints and integer
            scalar tensors, or an integer tensor.
        seed: stateless seed, shape (2,).
        minval: lower bound. Defaults to `0.0`.
        maxval: upper bound (excluded). Defaults to `1.0`.
        dtype: float dtype. Defaults to `tf.float32`.
        batch_axis: the axis of `shape` that indexes examples (negative
            counts from the end). Defaults to `0`.
        alg: the stateless algorithm. Defaults to `"auto_select"` (Philox
            on CPUs and GPUs), as `tf.random.stateless_uniform`.

    Returns:
        A `dtype` tensor of `shape`, uniform in `[minval, maxval)`.

    Examples:
        >>> import tensorflow as tf
        >>> seed = tf.constant([4, 2], tf.int64)
        >>> a = replica_uniform([3, 2], seed)
        >>> b = tf.random.stateless_uniform([3, 2], seed)
        >>> bool(tf.reduce_all(a == b))
        True
    """
    replica = _replica_slice()
    if replica is None:
        return tf.random.stateless_uniform(
            shape, seed=seed, minval=minval, maxval=maxval, dtype=dtype, alg=alg)
    replica_id, replicas = replica
    if isinstance(shape, (list, tuple)):
        shape = tf.stack([tf.cast(size, tf.int32) for size in shape])
    shape = tf.cast(shape, tf.int32)
    rank = shape.shape[0]
    if rank is None:
        raise ValueError("`shape` needs a static length under `tf.distribute`.")
    axis = batch_axis + rank if batch_axis < 0 else batch_axis
    if not 0 <= axis < rank:
        raise ValueError(f"`batch_axis` must be in [-{rank}, {rank}), got {batch_axis}.")
    local = shape[axis]
    global_shape = tf.tensor_scatter_nd_update(shape, [[axis]], [local * replicas])
    values = tf.random.stateless_uniform(
        global_shape, seed=seed, minval=minval, maxval=maxval, dtype=dtype, alg=alg)
    begin = tf.tensor_scatter_nd_update(tf.zeros_like(shape), [[axis]],
                                        [local * tf.cast(replica_id, tf.int32)])
    return tf.slice(values, begin, shape)


def project(x, delta, epsilon=None):
    """Clips a perturbation `delta` into the epsilon-ball (if given), then
    into the box.

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


def project_point(x, point, epsilon):
    """Clips a point into `[x - epsilon, x + epsilon]`, then into [0, 1].

    The point-space form of `project` that APGD and Square use (as their
    reference code does; it rounds differently from `x + project(...)`).

    Args:
        x: the clean inputs in [0, 1].
        point: the candidate adversarial inputs.
        epsilon: the radius (a number or a scalar tensor of `x`'s dtype).

    Examples:
        >>> import numpy as np
        >>> project_point(np.array([0.95], "float32"), np.array([1.2], "float32"),
        ...               0.1).numpy()
        array([1.], dtype=float32)
    """
    return tf.clip_by_value(tf.clip_by_value(point, x - epsilon, x + epsilon), 0.0, 1.0)


def input_gradient(objective, x, y):
    """Per-example losses, the input gradient and predictions, the gradient
    itself differentiable (for a loss built on it, e.g. GradAlign's).

    The gradient is that of the *sum* of per-example losses, so each
    example's gradient is its own loss gradient, independent of the batch
    size. An objective with a `gradient_scale` attribute
    (`objectives.model_objective` of a float16 model) has its loss
    multiplied by it for the backward pass and the gradient divided by it
    after (exact for a power of two), so that small gradients do not
    underflow in float16; a float16 activation gradient above 65504 /
    `gradient_scale` (16 for 2**12) overflows to infinity.

    Args:
        objective: a callable `(x, y) -> (per_example_loss, y_pred)`.
        x: the inputs.
        y: the targets.

    Returns:
        `(losses, gradient, y_pred)`.

    Raises:
        ValueError: if the loss does not depend on `x`.
    """
    scale = getattr(objective, "gradient_scale", 1.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        losses, y_pred = objective(x, y)
        total = tf.reduce_sum(losses)
        if scale != 1.0:
            total = total * scale
    gradient = tape.gradient(total, x)
    if gradient is None:
        raise ValueError(
            "The objective's loss does not depend on its input `x`, so there is "
            "no input gradient to attack with."
        )
    if scale != 1.0:
        gradient = gradient / scale
    return losses, gradient, y_pred


def loss_and_gradient(objective, x, y):
    """Per-example losses, input gradient and predictions at `x`.

    `input_gradient(objective, x, y)` (same arguments, same errors), the
    gradient held constant (`tf.stop_gradient`): what single-step and
    iterative attacks step along.

    Examples:
        >>> import tensorflow as tf
        >>> objective = lambda x, y: (tf.reduce_sum(x * x, axis=1), x)
        >>> loss_and_gradient(objective, tf.constant([[1.0, 2.0]]), None)[1].numpy()
        array([[2., 4.]], dtype=float32)
    """
    with tf.name_scope("input_gradient"):
        losses, gradient, y_pred = input_gradient(objective, x, y)
    return losses, tf.stop_gradient(gradient), y_pred


def random_start(x, epsilon, init, seed):
    """The start `delta0` of a single-step attack: zero, or uniform in the
    ball and clipped into the box (`init="random"`)."""
    if init == "zero":
        return tf.zeros_like(x)
    with tf.name_scope("random_start"):
        return project(x, uniform_noise(tf.shape(x), epsilon, seed, x.dtype))


def per_example_mean(t):
    """The mean of each example's elements: shape `(batch,)`.

    Examples:
        >>> per_example_mean(tf.ones((2, 3, 3))).numpy()
        array([1., 1.], dtype=float32)
    """
    return tf.reduce_mean(tf.reshape(t, (tf.shape(t)[0], -1)), axis=1)


def per_example(values, like):
    """Reshapes per-example values `(batch,)` to broadcast against `like`.

    Examples:
        >>> tuple(per_example(tf.ones(2), tf.ones((2, 4, 4, 1))).shape)
        (2, 1, 1, 1)
    """
    rank = like.shape.rank
    if rank is not None:  # one reshape with a constant shape
        return tf.reshape(values, [-1] + [1] * (rank - 1))
    shape = tf.concat([tf.shape(values), tf.ones([tf.rank(like) - 1], tf.int32)], 0)
    return tf.reshape(values, shape)


def check_common(x, epsilon, alpha, init=None):
    """Validates the arguments every attack shares; returns `x` as a tensor.

    Numbers are checked against their ranges; tensors pass unchecked (their
    values are known only when the step runs).
    """
    validation.check_image_batch(x)
    validation.check_epsilon(epsilon)
    if alpha is not None:
        validation.check_positive(alpha, "alpha")
    if init is not None:
        validation.check_choice(init, "init", validation.PERTURBATION_INITS)
    return tf.convert_to_tensor(x)


def finish(delta, info):
    """`(delta, info)` with `delta` held constant (no gradient through it)."""
    return tf.stop_gradient(delta), info
