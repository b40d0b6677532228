"""Robust evaluation: clean and PGD-k-r accuracy of any Keras classifier."""

import keras
import numpy as np
import tensorflow as tf

from zerograd_tf import objectives as objectives_lib
from zerograd_tf import perturbations
from zerograd_tf import validation


def _as_dataset(data, batch_size):
    if isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        x, y = np.asarray(data[0]), np.asarray(data[1])
        if len(x) != len(y):
            raise ValueError(
                f"`data` inputs and labels differ in length: {len(x)} vs {len(y)}."
            )
        validation.check_image_batch(x, "data[0]")
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    raise TypeError(
        "`data` must be a tf.data.Dataset of (x, y) batches or a tuple "
        f"(x, y) of arrays; got {type(data).__name__}."
    )


def default_jit_compile():
    """XLA where it pays off: True when a GPU or TPU is visible."""
    return bool(tf.config.list_logical_devices("GPU") or
                tf.config.list_logical_devices("TPU"))


def evaluate_robustness(model, data, epsilon, steps=50, restarts=10,
                        alpha=None, *, batch_size=256, loss=None, seed=0,
                        early_stop=True, jit_compile=None, strategy=None, verbose=0):
    """Clean and PGD-k-r accuracy and loss of a classifier.

    The attack is `zerograd_tf.perturbations.pgd` with the model in
    inference mode: `steps` sign steps of size `alpha` from a uniform random
    start, `restarts` restarts keeping each example's highest-loss
    perturbation, and (as in the reference evaluation) examples stop moving
    once misclassified. An example counts as robust when the model still
    classifies `clip(x + delta, 0, 1)` correctly.

    Args:
        model: a Keras classifier taking inputs in [0, 1] (any model, not
            only the package's).
        data: a `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)`
            batches (weights are ignored), or a tuple `(x, y)` of arrays.
        epsilon: L-infinity radius in (0, 1].
        steps: PGD steps k >= 1 (default 50).
        restarts: restarts r >= 1 (default 10).
        alpha: step size; defaults to `epsilon / 4` (2/255 at 8/255).
        batch_size: batch size for array `data`.
        loss: the loss to attack and report; `None` uses the attack loss of a
            package model (its compiled loss) and otherwise a cross-entropy
            that detects logits or softmax outputs.
        seed: integer seed of the random starts (the result is reproducible).
        early_stop: freeze misclassified examples (reference behaviour).
        jit_compile: compile the attack with XLA; `None` means only when a
            GPU or TPU is present.
        strategy: a `tf.distribute.Strategy` to spread each batch over its
            replicas (sums are reduced across them); default: the strategy
            whose scope is active, if any. The random starts do not depend
            on the split, so the result equals a single-device evaluation
            of the same batches.
        verbose: 1 shows a Keras progress bar.

    Returns:
        A dict with `clean_accuracy`, `robust_accuracy`, `clean_loss`,
        `robust_loss` (means over examples), `num_examples`,
        `num_clean_correct`, `num_robust_correct`, and the attack settings
        `epsilon`, `alpha`, `steps`, `restarts`.

    Raises:
        ValueError: for invalid attack settings or empty data.
        TypeError: for unsupported `data` or integer-valued images.
    """
    epsilon = validation.check_epsilon(epsilon)
    steps = validation.check_int(steps, "steps", 1)
    restarts = validation.check_int(restarts, "restarts", 1)
    alpha = epsilon / 4 if alpha is None else validation.check_positive(alpha, "alpha")
    seed = validation.check_int(seed, "seed", 0)
    dataset = _as_dataset(data, batch_size)
    if jit_compile is None:
        jit_compile = default_jit_compile()

    if loss is None and hasattr(model, "attack_objective"):
        objective = model.attack_objective(training=False)
    else:
        objective = objectives_lib.model_objective(model, loss=loss, training=False)

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def batch_sums(x, y, batch_seed):
        x = tf.cast(x, tf.float32)
        clean_loss, clean_pred = objective(x, y)
        delta = perturbations.pgd(
            objective, x, y, epsilon, alpha, steps=steps, restarts=restarts,
            early_stop=early_stop, seed=batch_seed,
        )
        robust_loss, robust_pred = objective(tf.clip_by_value(x + delta, 0.0, 1.0), y)
        labels = objectives_lib.class_labels(y)
        clean_ok = objectives_lib.predicted_labels(clean_pred) == labels
        robust_ok = objectives_lib.predicted_labels(robust_pred) == labels
        return tf.stack([
            tf.cast(tf.shape(x)[0], tf.float64),
            tf.reduce_sum(tf.cast(clean_ok, tf.float64)),
            tf.reduce_sum(tf.cast(robust_ok, tf.float64)),
            tf.reduce_sum(tf.cast(clean_loss, tf.float64)),
            tf.reduce_sum(tf.cast(robust_loss, tf.float64)),
        ])

    if strategy is None and tf.distribute.has_strategy():
        strategy = tf.distribute.get_strategy()
    distributed = strategy is not None and strategy.num_replicas_in_sync > 1
    if distributed:
        local_sums = batch_sums

        @tf.function
        def batch_sums(x, y, batch_seed):  # noqa: F811  (the distributed version)
            per_replica = strategy.run(local_sums, args=(x, y, batch_seed))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        validation.check_image_batch(tf.nest.flatten(dataset.element_spec)[0], "x")
    cardinality = int(dataset.cardinality())
    progress = keras.utils.Progbar(
        cardinality if cardinality > 0 else None, verbose=verbose,
        stateful_metrics=["clean_acc", "robust_acc"],
    )
    totals = np.zeros(5)
    base_seed = tf.constant([seed, 0], tf.int64)
    batches = strategy.experimental_distribute_dataset(dataset) if distributed else dataset
    for index, batch in enumerate(batches):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        if not distributed:
            validation.check_image_batch(x, "x")
        batch_seed = tf.random.experimental.stateless_fold_in(base_seed, index)
        totals += batch_sums(x, y, batch_seed).numpy()
        progress.update(index + 1, [("clean_acc", totals[1] / totals[0]),
                                    ("robust_acc", totals[2] / totals[0])])
    count = int(totals[0])
    if count == 0:
        raise ValueError("`data` holds no examples.")
    return {
        "clean_accuracy": totals[1] / count,
        "robust_accuracy": totals[2] / count,
        "clean_loss": totals[3] / count,
        "robust_loss": totals[4] / count,
        "num_examples": count,
        "num_clean_correct": int(totals[1]),
        "num_robust_correct": int(totals[2]),
        "epsilon": epsilon,
        "alpha": float(alpha),
        "steps": steps,
        "restarts": restarts,
    }
