"""Robust evaluation of any Keras classifier: PGD, APGD, Square, AutoAttack."""

import logging
import time

import keras
import numpy as np
import tensorflow as tf

from zerograd_tf import _names
from zerograd_tf import objectives as objectives_lib
from zerograd_tf import attacks
from zerograd_tf import validation
from zerograd_tf.attacks import losses as attack_losses
from zerograd_tf.attacks.apgd_attack import apgd
from zerograd_tf.attacks.square_attack import square

_LOG = logging.getLogger("zerograd_tf")

#: The attacks `evaluate_robustness` runs, by name.
ATTACKS = _names.ATTACKS
#: The members of `"autoattack"`, in order: AutoAttack's standard version
#: without FAB-T (see the README).
AUTOATTACK = ("apgd-ce", "apgd-t", "square")


def _as_dataset(data, batch_size):
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


def default_jit_compile():
    """XLA where it pays off: True when a GPU or TPU is visible."""
    return bool(tf.config.list_logical_devices("GPU") or
                tf.config.list_logical_devices("TPU"))


def attack_members(attack):
    """The attacks an `attack` specification runs, in order.

    Args:
        attack: a name from `ATTACKS`, or a list of them; `"autoattack"`
            stands for `AUTOATTACK`. Repeated names run once.

    Returns:
        A tuple of member names.

    Raises:
        ValueError: for an unknown name or an empty list.

    Examples:
        >>> attack_members(["pgd", "autoattack"])
        ('pgd', 'apgd-ce', 'apgd-t', 'square')
    """
    names = [attack] if isinstance(attack, str) else list(attack)
    if not names:
        raise ValueError(f"`attack` names no attack; use one or more of {', '.join(ATTACKS)}.")
    members = []
    for name in names:
        validation.check_choice(name, "attack", ATTACKS)
        for member in (AUTOATTACK if name == "autoattack" else (name,)):
            if member not in members:
                members.append(member)
    return tuple(members)


def evaluate_robustness(model, data, epsilon, steps=50, restarts=10,
                        alpha=None, *, attack="pgd", batch_size=256, loss=None, seed=0,
                        early_stop=True, jit_compile=None, strategy=None, verbose=0,
                        apgd_steps=100, apgd_restarts=1, apgd_targets=9,
                        square_queries=5000):
    """Clean and robust accuracy of a classifier under one or more attacks.

    `attack="pgd"` (the default) is PGD-k-r with the model in inference
    mode: `steps` sign steps of size `alpha` from a uniform random start,
    `restarts` restarts keeping each example's highest-loss perturbation,
    and (as in the reference evaluation) examples stop moving once
    misclassified; an example misclassified by one restart is not attacked
    by the later ones (outside XLA they run on a compacted batch). An
    example counts as robust when the model still classifies
    `clip(x + delta, 0, 1)` correctly.

    Any other `attack` (a name or a list of names from `ATTACKS`) runs the
    attacks in order, each only on the examples that are classified
    correctly and that no earlier attack has broken (the batch is compacted
    between attacks, restarts and APGD-T's target classes), so the robust
    accuracy is the per-example worst case over all of them:

    - `"pgd"`: PGD-`steps`-`restarts` as above;
    - `"apgd-ce"`, `"apgd-dlr"`: APGD (Croce and Hein, 2020) on the
      cross-entropy or the DLR loss, `apgd_steps` iterations,
      `apgd_restarts` restarts;
    - `"apgd-t"`: APGD on the targeted DLR loss against each of the
      `apgd_targets` highest-scoring other classes in turn;
    - `"square"`: the black-box Square attack, `square_queries` queries;
    - `"autoattack"`: APGD-CE, APGD-T and Square (`AUTOATTACK`), the
      standard AutoAttack without FAB-T.

    When Square breaks examples that every gradient attack before it left
    robust, the report says so (`square_only_broken`) and a warning is
    logged: the gradients of that model mislead gradient attacks (gradient
    masking), and its gradient-based robust accuracy overstates it.

    Args:
        model: a Keras classifier taking inputs in [0, 1] (any model, not
            only the package's). DLR and Square need logits; for a model
            ending in a softmax the logits underneath are used.
        data: a `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)`
            batches (weights are ignored), or a tuple `(x, y)` of arrays.
        epsilon: L-infinity radius in (0, 1].
        steps: PGD steps k >= 1. Defaults to 50.
        restarts: PGD restarts r >= 1. Defaults to 10.
        alpha: PGD step size; defaults to `epsilon / 4` (2/255 at 8/255).
        attack: the attack name or a list of names (see above). Defaults
            to `"pgd"`.
        batch_size: batch size for array `data`, and of the compacted
            batches of the composed attacks. Defaults to 256.
        loss: the loss PGD attacks and the report's losses use; `None`
            uses the attack loss of a package model (its compiled loss) and
            otherwise a cross-entropy that detects logits or softmax outputs.
            Defaults to `None`.
        seed: integer seed of the random starts (the result is
            reproducible). Defaults to 0.
        early_stop: freeze examples PGD has misclassified (reference
            behaviour). Defaults to True.
        jit_compile: compile the attacks with XLA; `None` (default) means
            only when a GPU or TPU is present.
        strategy: a `tf.distribute.Strategy` to spread each PGD batch over
            its replicas (sums are reduced across them); default: the
            strategy whose scope is active, if any. The random starts do not
            depend on the split, so the result equals a single-device
            evaluation of the same batches. The other attacks run on the
            default device. Defaults to `None`.
        verbose: 1 shows a Keras progress bar (one per attack). Defaults
            to 0.
        apgd_steps: APGD iterations. Defaults to 100 (the reference).
        apgd_restarts: APGD restarts (APGD-T: per target class). Defaults
            to 1 (AutoAttack's standard version).
        apgd_targets: target classes of APGD-T. Defaults to 9 (at most the
            number of classes minus one).
        square_queries: Square iterations. Defaults to 5000 (the reference).

    Returns:
        A dict with `clean_accuracy`, `robust_accuracy` (the worst case over
        the attacks run), `clean_loss`, `robust_loss` (means over
        examples), `num_examples`, `num_clean_correct`,
        `num_robust_correct`, `epsilon`, `attack`, `seconds`, and
        `attacks`: one entry per attack run with its `name`, `label` (e.g.
        `"APGD-CE-100"`), `robust_accuracy` (after it), `num_attacked`,
        `num_broken` and `seconds`. PGD adds `alpha`, `steps`, `restarts`; composed attacks
        add `square_only_broken` when Square ran after a gradient attack.

    Raises:
        ValueError: for invalid attack settings or empty data.
        TypeError: for unsupported `data` or integer-valued images.

    Examples:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(4)])
        >>> x = np.random.default_rng(0).uniform(size=(8, 4, 4, 1)).astype("float32")
        >>> y = np.arange(8) % 4
        >>> report = evaluate_robustness(model, (x, y), 0.1, attack="autoattack",
        ...                              apgd_steps=5, square_queries=10)
        >>> print(", ".join(entry["name"] for entry in report["attacks"]))
        apgd-ce, apgd-t, square
        >>> bool(report["robust_accuracy"] <= report["clean_accuracy"])
        True
    """
    epsilon = validation.check_epsilon(epsilon)
    steps = validation.check_int(steps, "steps", 1)
    restarts = validation.check_int(restarts, "restarts", 1)
    alpha = epsilon / 4 if alpha is None else validation.check_positive(alpha, "alpha")
    seed = validation.check_int(seed, "seed", 0)
    members = attack_members(attack)
    apgd_steps = validation.check_int(apgd_steps, "apgd_steps", 1)
    apgd_restarts = validation.check_int(apgd_restarts, "apgd_restarts", 1)
    apgd_targets = validation.check_int(apgd_targets, "apgd_targets", 1)
    square_queries = validation.check_int(square_queries, "square_queries", 1)
    batch_size = validation.check_int(batch_size, "batch_size", 1)
    dataset = _as_dataset(data, batch_size)
    if jit_compile is None:
        jit_compile = default_jit_compile()
    started = time.perf_counter()
    if members == ("pgd",):
        report = _evaluate_pgd(model, dataset, epsilon, steps, restarts, alpha, loss=loss,
                               seed=seed, early_stop=early_stop, jit_compile=jit_compile,
                               strategy=strategy, verbose=verbose)
        seconds = time.perf_counter() - started
        report["attack"] = "pgd"
        report["attacks"] = [{"name": "pgd", "label": f"PGD-{steps}-{restarts}",
                              "robust_accuracy": report["robust_accuracy"],
                              "num_attacked": report["num_clean_correct"],
                              "num_broken": max(0, report["num_clean_correct"]
                                                - report["num_robust_correct"]),
                              "seconds": seconds}]
        report["seconds"] = seconds
        return report
    settings = dict(steps=steps, restarts=restarts, alpha=alpha, early_stop=early_stop,
                    apgd_steps=apgd_steps, apgd_restarts=apgd_restarts,
                    apgd_targets=apgd_targets, square_queries=square_queries)
    explicit = {attack} if isinstance(attack, str) else set(attack)
    report = _evaluate_composed(model, dataset, epsilon, members, explicit, settings, loss=loss,
                                batch_size=batch_size, seed=seed, jit_compile=jit_compile,
                                verbose=verbose)
    report["attack"] = attack if isinstance(attack, str) else "+".join(attack)
    report["seconds"] = time.perf_counter() - started
    return report


def rising_pairs(radii, accuracies):
    """The consecutive radii `(a, b)` whose robust accuracy rises from a to b.

    Examples:
        >>> rising_pairs([0.05, 0.1, 0.2], [0.5, 0.3, 0.4])
        [(0.1, 0.2)]
    """
    return [(radii[i], radii[i + 1]) for i in range(len(radii) - 1)
            if accuracies[i + 1] > accuracies[i]]


def epsilon_sweep(model, data, epsilons, *, relative_alpha=None, **kwargs):
    """Robust accuracy at several radii, and whether it falls as epsilon grows.

    A correct evaluation can only find more adversarial examples in a larger
    ball, so robust accuracy must not rise with epsilon; when it does, the
    attack failed somewhere (often a sign of gradient masking), and the
    result says so.

    Args:
        model: a Keras classifier on inputs in [0, 1].
        data: as for `evaluate_robustness`.
        epsilons: the radii, each in (0, 1]; evaluated in increasing order.
        relative_alpha: PGD's step size as a multiple of each radius;
            defaults to `None`, i.e. `evaluate_robustness`'s default (1/4).
        **kwargs: passed to `evaluate_robustness` (e.g. `attack`).

    Returns:
        A dict with `epsilons` (sorted), `robust_accuracy` (one per radius),
        `monotone` (bool), `violations` (pairs of radii whose accuracy rose)
        and `reports` (the full reports).

    Examples:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.random.default_rng(0).uniform(size=(16, 4)).astype("float32")
        >>> sweep = epsilon_sweep(model, (x, np.arange(16) % 3), [0.2, 0.05, 0.1], steps=5,
        ...                       restarts=1)
        >>> sweep["epsilons"], sweep["monotone"]
        ([0.05, 0.1, 0.2], True)
    """
    radii = sorted(validation.check_epsilon(e) for e in epsilons)
    if not radii:
        raise ValueError("`epsilons` is empty.")
    if relative_alpha is not None:
        relative_alpha = validation.check_positive(relative_alpha, "relative_alpha")
    reports = [evaluate_robustness(
        model, data, e, **kwargs,
        **({} if relative_alpha is None else {"alpha": relative_alpha * e})) for e in radii]
    accuracies = [float(r["robust_accuracy"]) for r in reports]
    violations = rising_pairs(radii, accuracies)
    if violations:
        _LOG.warning(
            "Robust accuracy rises with epsilon (%s): the attack misses adversarial "
            "examples at the larger radius, a sign of gradient masking.",
            ", ".join(f"{a:.4g} -> {b:.4g}" for a, b in violations))
    return {"epsilons": radii, "robust_accuracy": accuracies, "monotone": not violations,
            "violations": violations, "reports": reports}


def _evaluate_pgd(model, dataset, epsilon, steps, restarts, alpha, *, loss, seed,
                  early_stop, jit_compile, strategy, verbose):
    """PGD-k-r streamed over the batches of `dataset` (and a strategy's replicas)."""
    objective = objectives_lib.inference_objective(model, loss)

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def batch_sums(x, y, batch_seed):
        x = tf.cast(x, tf.float32)
        clean_loss, clean_pred = objective(x, y)
        delta, _ = attacks.pgd(
            objective, x, y, epsilon, alpha, steps=steps, restarts=restarts,
            early_stop=early_stop, compact=not jit_compile, seed=batch_seed,
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
    progress = _progress_bar(f"PGD-{steps}-{restarts}", cardinality if cardinality > 0 else None,
                             verbose, ["clean_acc", "robust_acc"])
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
        "clean_accuracy": float(totals[1] / count),
        "robust_accuracy": float(totals[2] / count),
        "clean_loss": float(totals[3] / count),
        "robust_loss": float(totals[4] / count),
        "num_examples": count,
        "num_clean_correct": int(totals[1]),
        "num_robust_correct": int(totals[2]),
        "epsilon": epsilon,
        "alpha": float(alpha),
        "steps": steps,
        "restarts": restarts,
    }


def _collect(dataset):
    """The examples of a dataset as arrays `(x, y)`."""
    xs, ys = [], []
    for batch in dataset:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        validation.check_image_batch(x, "x")
        xs.append(np.asarray(x, np.float32))
        ys.append(np.asarray(y))
    if not xs:
        raise ValueError("`data` holds no examples.")
    return np.concatenate(xs), np.concatenate(ys)


class _StageFunctions:
    """The compiled per-batch functions of the composed attacks.

    Each takes a compacted batch `(x, y, seed, ...)` and returns
    `(x_adv, fooled)`: the adversarial batch and whether the model
    misclassifies it, checked with a fresh forward pass.
    """

    def __init__(self, model, epsilon, settings, report_objective, jit_compile):
        self.model = model
        self.epsilon = epsilon
        self.settings = settings
        self.report_objective = report_objective
        self.jit_compile = jit_compile
        compile_ = tf.function(jit_compile=jit_compile, reduce_retracing=True)
        self.clean = compile_(self._clean)
        self.pgd = compile_(self._pgd)
        self.apgd_ce = compile_(self._apgd_untargeted("ce"))
        self.apgd_dlr = compile_(self._apgd_untargeted("dlr"))
        self.apgd_t = compile_(self._apgd_targeted)
        self.square = compile_(self._square)

    def _objective(self, loss_fn):
        return objectives_lib.model_objective(
            self.model, loss=lambda y, y_pred: loss_fn(y, attack_losses.as_logits(y_pred)),
            training=False)

    def _verdict(self, x, delta, y):
        x_adv = tf.clip_by_value(x + delta, 0.0, 1.0)
        _, y_pred = self.report_objective(x_adv, y)
        fooled = objectives_lib.predicted_labels(y_pred) != objectives_lib.class_labels(y)
        return x_adv, fooled

    def _clean(self, x, y):
        loss, y_pred = self.report_objective(x, y)
        correct = objectives_lib.predicted_labels(y_pred) == objectives_lib.class_labels(y)
        return tf.cast(loss, tf.float32), correct

    def _pgd(self, x, y, seed):
        s = self.settings
        delta, _ = attacks.pgd(
            self.report_objective, x, y, self.epsilon, s["alpha"], steps=s["steps"],
            restarts=s["restarts"], early_stop=s["early_stop"], compact=not self.jit_compile,
            seed=seed)
        return self._verdict(x, delta, y)

    def _apgd_untargeted(self, loss_name):
        loss_fn = (attack_losses.cross_entropy_loss if loss_name == "ce"
                   else attack_losses.dlr_loss)

        def run(x, y, seed):
            delta, _ = apgd(self._objective(loss_fn), x, y, self.epsilon,
                         steps=self.settings["apgd_steps"], seed=seed)
            return self._verdict(x, delta, y)

        return run

    def _apgd_targeted(self, x, y, seed, rank):
        # The target: the class of the given rank in the clean prediction
        # (2 = the highest-scoring other class), as in the reference.
        logits = attack_losses.as_logits(self.model(x, training=False))
        order = tf.argsort(logits, axis=-1, direction="DESCENDING")
        targets = tf.gather(order, rank - 1, axis=1)
        objective = self._objective(
            lambda y_true, z: attack_losses.targeted_dlr_loss(y_true, z, targets))
        delta, _ = apgd(objective, x, y, self.epsilon, steps=self.settings["apgd_steps"],
                     seed=seed)
        return self._verdict(x, delta, y)

    def _square(self, x, y, seed):
        delta, _ = square(self._objective(attack_losses.margin_loss), x, y, self.epsilon,
                       queries=self.settings["square_queries"], seed=seed)
        return self._verdict(x, delta, y)

    def stages(self, member, num_classes):
        """`[(function, extra_arguments), ...]` of one attack, in order."""
        s = self.settings
        if member == "pgd":
            return [(self.pgd, ())]
        if member == "apgd-ce":
            return [(self.apgd_ce, ())] * s["apgd_restarts"]
        if member == "apgd-dlr":
            return [(self.apgd_dlr, ())] * s["apgd_restarts"]
        if member == "apgd-t":
            targets = min(s["apgd_targets"], num_classes - 1)
            return [(self.apgd_t, (tf.constant(rank),))
                    for rank in range(2, targets + 2) for _ in range(s["apgd_restarts"])]
        return [(self.square, ())]


def _progress_bar(label, target, verbose, stateful_metrics):
    """A Keras progress bar under a line that names the attack (as `fit`
    prints "Epoch 1/10" above each epoch's bar), on standard output."""
    if verbose and keras.config.is_interactive_logging_enabled():
        print(label, flush=True)
    return keras.utils.Progbar(target, verbose=verbose, stateful_metrics=stateful_metrics)


def _label(member, settings, num_classes):
    """A short description of one attack and its budget, e.g. `APGD-CE-100`."""
    restarts = settings["apgd_restarts"]
    suffix = f"x{restarts}" if restarts > 1 else ""
    if member == "pgd":
        return f"PGD-{settings['steps']}-{settings['restarts']}"
    if member == "apgd-t":
        targets = min(settings["apgd_targets"], num_classes - 1)
        return f"APGD-T-{settings['apgd_steps']}{suffix} ({targets} targets)"
    if member == "square":
        return f"Square-{settings['square_queries']}"
    return f"{member.upper()}-{settings['apgd_steps']}{suffix}"


def _check_classes(member, num_classes):
    needed = {"apgd-dlr": 3, "apgd-t": 4}.get(member)
    if needed and num_classes < needed:
        raise ValueError(
            f"`attack` {member!r} needs a classifier with at least {needed} classes "
            f"(its DLR loss compares the top logits); this one has {num_classes}.")


def _evaluate_composed(model, dataset, epsilon, members, explicit, settings, *, loss,
                       batch_size, seed, jit_compile, verbose):
    """Runs `members` in order, each on the examples still robust.

    A member that needs more classes than the model has is an error when
    named in `explicit`, and skipped (with a logged note) when it came from
    `"autoattack"`: AutoAttack on a 3-class problem runs without APGD-T.
    """
    x, y = _collect(dataset)
    count = len(x)
    objective = objectives_lib.inference_objective(model, loss)
    functions = _StageFunctions(model, epsilon, settings, objective, jit_compile)

    def chunks(indices):
        for start in range(0, len(indices), batch_size):
            yield indices[start:start + batch_size]

    clean_loss = np.zeros(count, np.float64)
    robust = np.zeros(count, bool)
    for chunk in chunks(np.arange(count)):
        chunk_loss, correct = functions.clean(x[chunk], y[chunk])
        clean_loss[chunk], robust[chunk] = chunk_loss.numpy(), correct.numpy()
    clean_correct = robust.copy()
    num_classes = int(np.asarray(model(x[:1], training=False)).shape[-1])
    usable = []
    for member in members:
        try:
            _check_classes(member, num_classes)
        except ValueError:
            if member in explicit:
                raise
            _LOG.warning("autoattack: skipping %s, which needs more classes than the "
                         "model's %d.", member, num_classes)
            continue
        usable.append(member)
    members = usable

    x_adv = x.copy()
    entries = []
    base_seed = tf.constant([seed, 0], tf.int64)
    gradient_members_ran = False
    square_only_broken = None
    for member_index, member in enumerate(members):
        started = time.perf_counter()
        attacked = int(robust.sum())
        stages = functions.stages(member, num_classes)
        progress = _progress_bar(_label(member, settings, num_classes),
                                 max(attacked * len(stages), 1), verbose, ["robust_acc"])
        done = 0
        member_seed = tf.random.experimental.stateless_fold_in(base_seed, member_index)
        for stage_index, (function, extra) in enumerate(stages):
            stage_seed = tf.random.experimental.stateless_fold_in(member_seed, stage_index)
            for chunk_index, chunk in enumerate(chunks(np.flatnonzero(robust))):
                chunk_seed = tf.random.experimental.stateless_fold_in(stage_seed, chunk_index)
                adversarial, fooled = function(x[chunk], y[chunk], chunk_seed, *extra)
                x_adv[chunk] = adversarial.numpy()
                robust[chunk[fooled.numpy()]] = False
                done += len(chunk)
                progress.update(done, [("robust_acc", robust.sum() / count)])
        progress.update(max(attacked * len(stages), 1), [("robust_acc", robust.sum() / count)],
                        finalize=True)
        broken = attacked - int(robust.sum())
        entries.append({"name": member, "label": _label(member, settings, num_classes),
                        "robust_accuracy": float(robust.sum() / count),
                        "num_attacked": attacked, "num_broken": broken,
                        "seconds": time.perf_counter() - started})
        if member == "square" and gradient_members_ran:
            square_only_broken = broken
        gradient_members_ran = gradient_members_ran or member != "square"

    robust_loss = np.zeros(count, np.float64)
    for chunk in chunks(np.arange(count)):
        chunk_loss, _ = functions.clean(x_adv[chunk], y[chunk])
        robust_loss[chunk] = chunk_loss.numpy()
    report = {
        "clean_accuracy": float(clean_correct.sum() / count),
        "robust_accuracy": float(robust.sum() / count),
        "clean_loss": float(clean_loss.mean()),
        "robust_loss": float(robust_loss.mean()),
        "num_examples": count,
        "num_clean_correct": int(clean_correct.sum()),
        "num_robust_correct": int(robust.sum()),
        "epsilon": epsilon,
        "attacks": entries,
    }
    if "pgd" in members:
        report.update(alpha=float(settings["alpha"]), steps=settings["steps"],
                      restarts=settings["restarts"])
    if square_only_broken is not None:
        report["square_only_broken"] = square_only_broken
        if square_only_broken:
            _LOG.warning(
                "Square, a gradient-free attack, broke %d example%s that every gradient "
                "attack left robust: a sign of gradient masking (the model's gradients "
                "mislead gradient attacks), so gradient-based robust accuracy overstates "
                "its robustness.", square_only_broken, "" if square_only_broken == 1 else "s")
    return report
