"""The one evaluation engine: attack specs composed on the examples still robust.

`run` evaluates the clean examples, then runs the stages of each attack spec
(`zerograd_tf.evaluation.specs`) in order, each on the examples that are
classified correctly and that no earlier stage has broken, gathered into
batches of at most `batch_size` (compaction). Every call gets a stateless
seed derived from the evaluation's seed, the attack's position, the stage and
the batch, so the result is reproducible.

Under a `tf.distribute` strategy with several replicas, a batch whose size is
a multiple of the number of replicas is spread over them (contiguous slices,
as `tf.distribute` splits a dataset's batches) and the results gathered; a
smaller remainder batch runs whole on one device. Every attack draws its
random numbers for the whole batch on every replica and keeps its slice
(`attacks.ops.replica_uniform`), so the same examples are broken as in a
one-device evaluation. The worst loss can differ slightly: APGD stops a
batch once all its examples are misclassified (and keeps moving the
misclassified point until then), and one replica's share can get there
first.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from zerograd_tf import objectives as objectives_lib
from zerograd_tf import validation
from zerograd_tf.evaluation import masking


def as_dataset(data, batch_size):
    """`data` (a dataset or an `(x, y)` tuple of arrays) as a dataset,
    checked for image inputs in [0, 1]."""
    if isinstance(data, tf.data.Dataset):
        validation.warn_if_first_batch_outside_unit_range(data, "data")
        return data
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        x, y = np.asarray(data[0]), np.asarray(data[1])
        if len(x) != len(y):
            raise ValueError(
                f"`data` inputs and labels differ in length: {len(x)} vs {len(y)}."
            )
        validation.check_image_batch(x, "data[0]")
        validation.warn_if_outside_unit_range(x, "data[0]")
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    raise TypeError(
        "`data` must be a tf.data.Dataset of (x, y) batches or a tuple "
        f"(x, y) of arrays; got {type(data).__name__}."
    )


def collect(dataset):
    """The examples of a dataset as arrays `(x, y)`; `x` as float32."""
    xs, ys = [], []
    for batch in dataset:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        validation.check_image_batch(x, "x")
        xs.append(np.asarray(x, np.float32))
        ys.append(np.asarray(y))
    if not xs:
        raise ValueError("`data` holds no examples.")
    return np.concatenate(xs), np.concatenate(ys)


class _Compiled:
    """The compiled per-batch functions: `clean` and one per attack spec.

    Each takes a batch `(x, y, ...)` and returns a float32 `(batch, 2)`
    tensor: the report's loss and a flag, at the clean input (flag: classified
    correctly) or at the attack's point `clip(x + delta, 0, 1)` (flag: the
    model misclassifies it, checked with a fresh forward pass).
    """

    def __init__(self, context, strategy):
        self.context = context
        self.strategy = strategy
        self.replicas = strategy.num_replicas_in_sync if strategy is not None else 1
        self._compile = tf.function(jit_compile=context.jit_compile, reduce_retracing=True)
        self.clean = self._spread(self._compile(self._clean))
        self._attacks = {}

    def attack(self, spec):
        if spec.name not in self._attacks:
            self._attacks[spec.name] = self._spread(self._compile(self._verdict(spec.attack)))
        return self._attacks[spec.name]

    def _scored(self, x, y):
        loss, y_pred = self.context.objective(x, y)
        correct = objectives_lib.predicted_labels(y_pred) == objectives_lib.class_labels(y)
        return tf.stack([tf.cast(loss, tf.float32), tf.cast(correct, tf.float32)], axis=1)

    def _clean(self, x, y):
        return self._scored(x, y)

    def _verdict(self, attack):
        def run(x, y, seed, *extra):
            delta = attack(self.context, x, y, seed, *extra)
            scored = self._scored(tf.clip_by_value(x + delta, 0.0, 1.0), y)
            return tf.stack([scored[:, 0], 1.0 - scored[:, 1]], axis=1)

        return run

    def _spread(self, function):
        """`function` over the strategy's replicas, for batches they split evenly."""
        if self.replicas == 1:
            return lambda x, y, *args: function(x, y, *args).numpy()
        strategy, replicas = self.strategy, self.replicas

        @tf.function
        def distributed(x, y, *args):
            return strategy.gather(strategy.run(function, args=(x, y, *args)), axis=0)

        def call(x, y, *args):
            if len(x) % replicas:
                return function(x, y, *args).numpy()
            size = len(x) // replicas

            def split(array):
                return strategy.experimental_distribute_values_from_function(
                    lambda context: tf.constant(array[
                        context.replica_id_in_sync_group * size:
                        (context.replica_id_in_sync_group + 1) * size]))

            return distributed(split(x), split(y), *args).numpy()

        return call


def _chunks(indices, batch_size):
    for start in range(0, len(indices), batch_size):
        yield indices[start:start + batch_size]


def _progress_bar(label, target, verbose, stateful_metrics):
    """A Keras progress bar under a line that names the attack (as `fit`
    prints "Epoch 1/10" above each epoch's bar), on standard output."""
    if verbose and keras.config.is_interactive_logging_enabled():
        print(label, flush=True)
    return keras.utils.Progbar(target, verbose=verbose, stateful_metrics=stateful_metrics)


def _run_attack(compiled, spec, x, y, robust, worst_loss, stages, member_seed, batch_size,
                progress, attacked, first_stage=0, on_stage=None):
    """The stages of one attack from `first_stage` on, on the robust
    examples (`attacked` of them when the attack began); updates `robust`
    and `worst_loss` in place and calls `on_stage(next_stage)` after each."""
    done = attacked * first_stage
    function = compiled.attack(spec)
    for stage_index in range(first_stage, len(stages)):
        extra = stages[stage_index]
        stage_seed = tf.random.experimental.stateless_fold_in(member_seed, stage_index)
        for chunk_index, chunk in enumerate(_chunks(np.flatnonzero(robust), batch_size)):
            chunk_seed = tf.random.experimental.stateless_fold_in(stage_seed, chunk_index)
            scored = function(x[chunk], y[chunk], chunk_seed, *extra)
            worst_loss[chunk] = np.maximum(worst_loss[chunk], scored[:, 0])
            robust[chunk[scored[:, 1] > 0.5]] = False
            done += len(chunk)
            # Finalized once, by `run`, after the last stage.
            progress.update(done, [("robust_acc", robust.mean())], finalize=False)
        if on_stage is not None:
            on_stage(stage_index + 1)


def run(context, x, y, attack_specs, *, batch_size, seed, strategy, verbose, backup=None):
    """Runs `attack_specs` in order, each on the examples still robust.

    Args:
        context: a `specs.Context` (model, radius, budgets, objective).
        x: float32 inputs, `(n, ...)`.
        y: labels, `(n,)` or one-hot.
        attack_specs: the `specs.AttackSpec`s to run, in order.
        batch_size: the most examples per call.
        seed: the integer seed.
        strategy: a `tf.distribute.Strategy`, or `None` for one device.
        verbose: 1 shows a progress bar per attack.
        backup: an `EvaluationBackup` (`zerograd_tf.evaluation.backup`) in
            which the progress is saved after every stage and from which a
            killed evaluation continues. Defaults to `None`: nothing saved.

    Returns:
        The report's counts and losses (see `evaluate_robustness`).
    """
    count = len(x)
    compiled = _Compiled(context, strategy)
    clean_loss = np.zeros(count, np.float64)
    robust = np.zeros(count, bool)
    for chunk in _chunks(np.arange(count), batch_size):
        scored = compiled.clean(x[chunk], y[chunk])
        clean_loss[chunk], robust[chunk] = scored[:, 0], scored[:, 1] > 0.5
    clean_correct = robust.copy()
    worst_loss = clean_loss.copy()
    num_classes = int(np.asarray(context.model(x[:1], training=False)).shape[-1])
    entries = []
    saved = backup.load(count, len(attack_specs)) if backup is not None else None
    if saved is not None:
        robust[:] = False
        robust[np.asarray(saved["robust"], np.int64)] = True
        worst_loss = np.asarray(saved["worst_loss"], np.float64)
        entries = list(saved["entries"])
    base_seed = tf.constant([seed, 0], tf.int64)
    for member_index, spec in enumerate(attack_specs):
        if member_index < len(entries):
            continue  # finished before the evaluation was interrupted
        resumed = saved is not None and saved["member"] == member_index
        first_stage = saved["stage"] if resumed else 0
        earlier_seconds = saved["seconds"] if resumed else 0.0
        started = time.perf_counter()
        attacked = saved["attacked"] if resumed else int(robust.sum())
        stages = spec.stages(context.settings, num_classes)
        label = spec.label(context.settings, num_classes)
        target = max(attacked * len(stages), 1)
        progress = _progress_bar(label, target, verbose, ["robust_acc"])

        def save(next_stage, member_index=member_index, attacked=attacked,
                 started=started, earlier_seconds=earlier_seconds):
            backup.save(member=member_index, stage=next_stage, robust=robust,
                        worst_loss=worst_loss, entries=entries, attacked=attacked,
                        seconds=earlier_seconds + time.perf_counter() - started)

        _run_attack(compiled, spec, x, y, robust, worst_loss, stages,
                    tf.random.experimental.stateless_fold_in(base_seed, member_index),
                    batch_size, progress, attacked, first_stage,
                    save if backup is not None else None)
        progress.update(target, [("robust_acc", robust.mean())], finalize=True)
        entries.append({"name": spec.name, "label": label,
                        "robust_accuracy": float(robust.sum() / count),
                        "num_attacked": attacked, "num_broken": attacked - int(robust.sum()),
                        "seconds": earlier_seconds + time.perf_counter() - started})
        if backup is not None:
            backup.save(member=member_index + 1, stage=0, robust=robust,
                        worst_loss=worst_loss, entries=entries,
                        attacked=int(robust.sum()), seconds=0.0)
    report = {
        "clean_accuracy": float(clean_correct.sum() / count),
        "robust_accuracy": float(robust.sum() / count),
        "clean_loss": float(clean_loss.mean()),
        "robust_loss": float(worst_loss.mean()),
        "num_examples": count,
        "num_clean_correct": int(clean_correct.sum()),
        "num_robust_correct": int(robust.sum()),
        "attacks": entries,
    }
    report.update(_masking_check(attack_specs, entries))
    if backup is not None:
        backup.remove()
    return report


def _masking_check(attack_specs, entries):
    """`square_only_broken` and `gradient_masking` when a gradient-free attack
    ran after a gradient attack; otherwise nothing."""
    first_gradient = next((i for i, s in enumerate(attack_specs) if not s.gradient_free), None)
    later = [entry for index, (spec, entry) in enumerate(zip(attack_specs, entries))
             if spec.gradient_free and first_gradient is not None and index > first_gradient]
    if not later:
        return {}
    broken = sum(entry["num_broken"] for entry in later)
    return {"square_only_broken": broken,
            "gradient_masking": masking.gradient_masking(broken, later[0]["num_attacked"])}
