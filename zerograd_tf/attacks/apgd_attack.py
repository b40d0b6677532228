"""Auto-PGD (APGD) in the L-infinity ball, as in Croce and Hein (2020).

"Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020, Algorithm 1, with the details of the
authors' reference implementation:

- start: `x + epsilon * t / max|t|`, `t ~ U(-1, 1)`, clipped into [0, 1];
- step size `eta = 2 epsilon` per example; momentum 0.75 (none on the first
  step): `z = P(x_k + eta sign(g))`, `x_{k+1} = P(x_k + 0.75 (z - x_k) +
  0.25 (x_k - x_{k-1}))`, `P` the projection onto the ball and the box;
- checkpoints after `p_1 = 0.22` of the iterations, then at intervals
  shrinking by 0.03 of the iterations down to 0.06 (the reference's integer
  form of `p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`);
- at a checkpoint an example halves its step size and restarts from its
  best point when (1) the loss increased in at most `rho = 0.75` of the
  steps since the last checkpoint, or (2) the step size was not reduced at
  the last checkpoint and the best loss has not improved since;
- an example counts as broken once any iterate is misclassified.

The whole attack is one `tf.while_loop`: it traces inside
`tf.function(jit_compile=True)`, and all randomness comes from the
stateless `seed`.
"""

import tensorflow as tf

from zerograd_tf import objectives as objectives_lib
from zerograd_tf import validation
from zerograd_tf.attacks import ops

MOMENTUM = 0.75


def checkpoint_schedule(steps):
    """The reference's checkpoint parameters for `steps` iterations.

    Returns:
        `(first, minimum, decrement)`: the first interval
        `max(int(0.22 steps), 1)`, the smallest interval
        `max(int(0.06 steps), 1)` and the shrinkage per checkpoint
        `max(int(0.03 steps), 1)`.

    Examples:
        >>> checkpoint_schedule(100)
        (22, 6, 3)
    """
    return (max(int(0.22 * steps), 1), max(int(0.06 * steps), 1),
            max(int(0.03 * steps), 1))


def apgd(objective, x, y, epsilon, *, steps=100, rho=0.75, seed=None):
    """APGD: a step-size-free PGD that maximises `objective`'s loss.

    Args:
        objective: a callable `(x, y) -> (per_example_loss, y_pred)` (see
            `zerograd_tf.objectives`); APGD-CE uses the cross-entropy,
            APGD-DLR the DLR loss (`zerograd_tf.attacks.losses`). `y_pred`
            decides misclassification (argmax against `y`).
        x: float inputs in [0, 1], shape `(batch, ...)` with a static rank.
        y: integer labels `(batch,)` or one-hot targets.
        epsilon: L-infinity radius in (0, 1].
        steps: iterations, >= 1. Defaults to 100 (the reference).
        rho: the fraction of increasing steps below which the step size is
            halved, in (0, 1). Defaults to 0.75.
        seed: stateless seed (int or shape-(2,) tensor) of the random start.
            Defaults to `None`, i.e. 0.

    Returns:
        `(delta, info)`: `delta` with `x`'s shape, for a fooled example the
        last misclassified iterate, otherwise the highest-loss iterate,
        minus `x`; `info` holds `fooled` (bool, `(batch,)`: some iterate was
        misclassified) and `loss` (the best loss).

    Raises:
        ValueError: for arguments outside their valid ranges.

    Examples:
        >>> import keras, numpy as np
        >>> from zerograd_tf import objectives
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.full((2, 4), 0.5, np.float32)
        >>> delta, info = apgd(objectives.model_objective(model), x, np.array([0, 1]),
        ...                    0.1, steps=10)
        >>> bool(np.all(np.abs(delta) <= 0.1 + 1e-6))
        True
    """
    validation.check_image_batch(x)
    epsilon = validation.check_epsilon(epsilon)
    steps = validation.check_int(steps, "steps", 1)
    if not 0 < rho < 1:
        raise ValueError(f"`rho` must be in (0, 1), got {rho!r}.")
    objective = objectives_lib.as_objective(objective)
    x = tf.convert_to_tensor(x)
    if x.shape.rank is None:
        raise ValueError("`x` needs a static rank.")
    seed = ops.as_seed(0 if seed is None else seed)
    labels = objectives_lib.class_labels(y)
    eps = tf.cast(epsilon, x.dtype)
    first, minimum, decrement = checkpoint_schedule(steps)
    batch = tf.shape(x)[0]

    with tf.name_scope("apgd_start"):
        t = ops.replica_uniform(tf.shape(x), seed, -1.0, 1.0, dtype=x.dtype)
        t_max = tf.reduce_max(tf.abs(tf.reshape(t, [batch, -1])), axis=1)
        x_adv = tf.clip_by_value(x + eps * t / ops.per_example(t_max + 1e-12, x), 0.0, 1.0)
    loss, gradient, y_pred = ops.loss_and_gradient(objective, x_adv, y)
    robust = objectives_lib.predicted_labels(y_pred) == labels

    state = dict(
        i=tf.constant(0),
        x_adv=x_adv,
        x_old=x_adv,
        gradient=gradient,
        robust=robust,
        x_fooled=x_adv,
        x_best=x_adv,
        gradient_best=gradient,
        loss_best=loss,
        step_size=tf.fill([batch], 2.0) * tf.cast(eps, tf.float32),
        since_check=tf.constant(0),
        interval=tf.constant(first),
        loss_at_check=loss,
        reduced_at_check=tf.ones([batch], tf.bool),
        loss_steps=tf.zeros([steps, batch], tf.float32),
    )

    def body(s):
        i = s["i"]
        x_adv = s["x_adv"]
        momentum = tf.where(i > 0, MOMENTUM, 1.0)
        step = ops.per_example(tf.cast(s["step_size"], x.dtype), x)
        z = ops.project_point(x, x_adv + step * tf.sign(s["gradient"]), eps)
        moved = ops.project_point(
            x, x_adv + (z - x_adv) * momentum + (x_adv - s["x_old"]) * (1 - momentum), eps)
        loss, gradient, y_pred = ops.loss_and_gradient(objective, moved, y)
        correct = objectives_lib.predicted_labels(y_pred) == labels
        robust = s["robust"] & correct
        x_fooled = tf.where(ops.per_example(~correct, x), moved, s["x_fooled"])
        loss_steps = tf.tensor_scatter_nd_update(s["loss_steps"], [[i]], loss[None])
        improved = loss > s["loss_best"]
        x_best = tf.where(ops.per_example(improved, x), moved, s["x_best"])
        gradient_best = tf.where(ops.per_example(improved, x), gradient, s["gradient_best"])
        loss_best = tf.where(improved, loss, s["loss_best"])
        since_check = s["since_check"] + 1
        interval = s["interval"]

        def checkpoint():
            # Condition 1: the loss rose in at most rho * interval of the
            # steps since the last checkpoint (step t compared with t - 1;
            # the reference compares the first step with the zeroed last
            # row of its buffer, and so do we).
            rose = tf.cast(loss_steps > tf.roll(loss_steps, shift=1, axis=0), tf.float32)
            rows = tf.range(steps)
            window = tf.cast((rows > i - interval) & (rows <= i), tf.float32)
            increases = tf.reduce_sum(rose * window[:, None], axis=0)
            oscillating = increases <= tf.cast(interval, tf.float32) * rho
            # Condition 2: not reduced last time and no improvement since.
            stalled = ~s["reduced_at_check"] & (s["loss_at_check"] >= loss_best)
            reduce = oscillating | stalled
            return (
                tf.where(reduce, s["step_size"] / 2, s["step_size"]),
                tf.where(ops.per_example(reduce, x), x_best, moved),
                tf.where(ops.per_example(reduce, x), gradient_best, gradient),
                reduce,
                loss_best,
                tf.constant(0),
                tf.maximum(interval - decrement, minimum),
            )

        def no_checkpoint():
            return (s["step_size"], moved, gradient, s["reduced_at_check"],
                    s["loss_at_check"], since_check, interval)

        (step_size, x_next, gradient, reduced_at_check, loss_at_check, since_check,
         interval) = tf.cond(since_check == interval, checkpoint, no_checkpoint)
        return [dict(
            i=i + 1, x_adv=x_next, x_old=x_adv, gradient=gradient, robust=robust,
            x_fooled=x_fooled, x_best=x_best, gradient_best=gradient_best,
            loss_best=loss_best, step_size=step_size, since_check=since_check,
            interval=interval, loss_at_check=loss_at_check,
            reduced_at_check=reduced_at_check, loss_steps=loss_steps,
        )]

    # Once every example is misclassified nothing can change the outcome.
    (state,) = tf.while_loop(
        lambda s: (s["i"] < steps) & tf.reduce_any(s["robust"]), body, [state],
        maximum_iterations=steps)
    fooled = ~state["robust"]
    adversarial = tf.where(ops.per_example(fooled, x), state["x_fooled"], state["x_best"])
    return ops.finish(adversarial - x, {"fooled": fooled, "loss": state["loss_best"]})
