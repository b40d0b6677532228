"""L-infinity PGD (Madry et al., 2018) with random restarts.

`steps` sign steps of size `alpha` from a uniform random start in the
epsilon-ball, projected onto the ball and the [0, 1] box after each step;
over `restarts` restarts each example keeps its highest-loss perturbation
(with `early_stop`, the reference evaluation's rule: the first restart that
misclassifies it).
"""

import tensorflow as tf

from zerograd_tf import objectives as objectives_lib
from zerograd_tf import validation
from zerograd_tf.attacks import ops


def pgd(objective, x, y, epsilon, alpha=None, *, steps=10, restarts=1,
        random_start=True, early_stop=False, compact=False, seed=None):
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

    Returns:
        `(delta, info)`: `delta` with `x`'s shape and `{"loss": (batch,)}`,
        the loss at the returned perturbation.

    Raises:
        ValueError: for arguments outside their valid ranges.

    Examples:
        >>> import keras, numpy as np
        >>> from zerograd_tf import attacks
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.full((2, 4), 0.5, np.float32)
        >>> delta, _ = attacks.pgd(model, x, np.array([0, 1]), 0.1, steps=5, restarts=2,
        ...                        seed=0)
        >>> bool(np.all(np.abs(delta) <= 0.1 + 1e-6))
        True
    """
    x = ops.check_common(x, epsilon, alpha)
    steps = validation.check_int(steps, "steps", 1)
    restarts = validation.check_int(restarts, "restarts", 1)
    objective = objectives_lib.as_objective(objective)
    if alpha is None:
        alpha = epsilon / 4
    alpha = tf.cast(alpha, x.dtype)
    seed = ops.as_seed(seed) if random_start else tf.zeros([2], tf.int64)
    labels = objectives_lib.class_labels(y) if early_stop else None
    y = None if y is None else tf.convert_to_tensor(y)
    compact = bool(compact) and early_stop

    def one_restart(x, y, labels, delta):
        """`steps` steps from `delta`: `(delta, loss, misclassified or None)`."""
        def step(i, delta, any_active):
            _, gradient, y_pred = ops.loss_and_gradient(objective, x + delta, y)
            moved = ops.project(x, delta + alpha * tf.sign(gradient), epsilon)
            if early_stop:
                active = objectives_lib.predicted_labels(y_pred) == labels
                moved = tf.where(ops.per_example(active, x), moved, delta)
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
        return ops.project(x, ops.uniform_noise(tf.shape(x), epsilon, restart_seed, x.dtype))

    def choose(delta, losses, wrong, best_delta, best_loss, fooled):
        """The per-example update of the best perturbation after a restart."""
        better = losses >= best_loss
        if early_stop:
            better = ~fooled & (better | wrong)
            fooled = fooled | wrong
        best_delta = tf.where(ops.per_example(better, delta), delta, best_delta)
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
    return ops.finish(delta, {"loss": best_loss})
