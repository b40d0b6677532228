"""Robust evaluation of any Keras classifier: PGD, APGD, Square, AutoAttack.

`evaluate_robustness` runs one or more attacks through one engine
(`engine`): each attack is a small spec (`specs`: how to run it on a batch,
its stages and its budget label) in a registry, and the engine runs the specs
in order, each on the examples still robust, on one device or spread over a
`tf.distribute` strategy's replicas. `masking` holds the rule that decides
when a gradient-free attack's successes indicate gradient masking.
"""

import logging
import time

import numpy as np
import tensorflow as tf

from zerograd_tf import _names, dtype_policies
from zerograd_tf import objectives as objectives_lib
from zerograd_tf import precision as precision_lib
from zerograd_tf import validation
from zerograd_tf.evaluation import backup as backup_lib
from zerograd_tf.evaluation import engine, specs

_LOG = logging.getLogger("zerograd_tf")

#: The attacks `evaluate_robustness` runs, by name.
ATTACKS = _names.ATTACKS
#: The members of `"autoattack"`, in order: AutoAttack's standard version
#: without FAB-T (see the README).
AUTOATTACK = ("apgd-ce", "apgd-t", "square")
# The precisions an evaluation attacks in (see `evaluate_robustness`).
PRECISIONS = _names.EVAL_PRECISIONS


def default_jit_compile():
    """XLA where it pays off: True when a GPU or TPU is visible.

    Examples:
        >>> isinstance(default_jit_compile(), bool)
        True
    """
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
                        square_queries=5000, precision="float32", backup_path=None):
    """Clean and robust accuracy of a classifier under one or more attacks.

    The attacks (a name or a list of names from `ATTACKS`) run in order, each
    only on the examples that are classified correctly and that no earlier
    attack has broken (gathered into batches of at most `batch_size` between
    attacks, restarts and APGD-T's target classes), so the robust accuracy
    is the per-example worst case over all of them. An example counts as
    robust when the model still classifies `clip(x + delta, 0, 1)` correctly
    for every perturbation `delta` an attack returned for it. The model runs
    in inference mode.

    - `"pgd"` (the default): PGD-`steps`-`restarts`: `steps` sign steps of
      size `alpha` from a uniform random start, `restarts` restarts keeping
      each example's highest-loss perturbation; as in the reference
      evaluation, examples stop moving once misclassified, and an example
      one restart misclassifies is not attacked by the later ones;
    - `"apgd-ce"`, `"apgd-dlr"`: APGD (Croce and Hein, 2020) on the
      cross-entropy or the DLR loss, `apgd_steps` iterations,
      `apgd_restarts` restarts;
    - `"apgd-t"`: APGD on the targeted DLR loss against each of the
      `apgd_targets` highest-scoring other classes in turn;
    - `"square"`: the black-box Square attack, `square_queries` queries;
    - `"autoattack"`: APGD-CE, APGD-T and Square (`AUTOATTACK`), the
      standard AutoAttack without FAB-T.

    When Square runs after a gradient attack, the report counts the
    examples it broke that every gradient attack left robust
    (`square_only_broken`) and says whether that many is more than chance
    (`gradient_masking`, the rule of
    `zerograd_tf.evaluation.masking.gradient_masking`: at least 3 such
    examples and a 95 % lower confidence bound of their fraction of the
    examples Square attacked above 1 %); if so a warning is logged: the
    model's gradients mislead gradient attacks (gradient masking), and its
    gradient-based robust accuracy overstates its robustness.

    A model trained in lower precision (`mixed_bfloat16`, `mixed_float16`)
    is evaluated through a float32 copy with the same weights
    (`zerograd_tf.dtype_policies.float32_copy`) unless `precision` is
    `"as_trained"`: rounding the forward pass and the input gradient to 8
    (bfloat16) or 11 (float16) mantissa bits can weaken gradient attacks,
    so the float32 number is the honest one (docs/precision.md).

    Args:
        model: a Keras classifier taking inputs in [0, 1] (any model, not
            only the package's). DLR and Square need logits; for a model
            ending in a softmax the logits underneath are used.
        data: a `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)`
            batches (weights are ignored), or a tuple `(x, y)` of arrays.
        epsilon: L-infinity radius in (0, 1].
        steps: PGD steps k >= 1. Defaults to 50.
        restarts: PGD restarts r >= 1. Defaults to 10.
        alpha: PGD step size. Defaults to `None`, i.e. `epsilon / 4`
            (2/255 at 8/255).
        attack: the attack name or a list of names (see above). Defaults
            to `"pgd"`.
        batch_size: the most examples of one attack call (and the batch
            size of array `data`); a dataset's own batches are regrouped.
            Defaults to 256.
        loss: the loss PGD attacks and the report's losses use; `None`
            uses the attack loss of a package model (its compiled loss) and
            otherwise a cross-entropy that detects logits or softmax outputs.
            Defaults to `None`.
        seed: integer seed of the random starts (the result is
            reproducible). Defaults to 0.
        early_stop: freeze examples PGD has misclassified (reference
            behaviour). Defaults to True.
        jit_compile: compile the attacks with XLA. Defaults to `None`:
            only when a GPU or TPU is present.
        strategy: a `tf.distribute.Strategy` whose replicas share each batch
            (a batch of a multiple of the number of replicas is split over
            them, a smaller remainder runs on one device). Every attack
            draws its random numbers for the whole batch and keeps its
            replica's slice, so the same examples are broken as on one
            device (`robust_loss` can differ slightly: APGD stops a batch
            once all its examples are misclassified, and one replica's
            share can get there first). Defaults to `None`: the strategy
            whose scope is active, if any.
        verbose: 1 shows a Keras progress bar per attack. Defaults to 0.
        apgd_steps: APGD iterations. Defaults to 100 (the reference).
        apgd_restarts: APGD restarts (APGD-T: per target class). Defaults
            to 1 (AutoAttack's standard version).
        apgd_targets: target classes of APGD-T. Defaults to 9 (at most the
            number of classes minus one).
        square_queries: Square iterations. Defaults to 5000 (the reference).
        precision: `"float32"` attacks a float32 copy of a lower-precision
            model (the model itself when it is float32); `"as_trained"`
            attacks the model as it computes. Defaults to `"float32"`.
        backup_path: a JSON file in which the evaluation saves its progress
            after every stage of every attack (each APGD restart and APGD-T
            target class; each whole attack otherwise, PGD and Square
            included). A call with the same evaluation (attacks and budgets,
            `epsilon`, `seed`, `batch_size`, XLA, replicas, precision,
            `loss`, examples, the model's layers and weights) after a
            killed one continues after the last saved stage and returns
            what an uninterrupted call returns, `seconds` aside; a file of
            another evaluation, or a damaged one, raises a `ValueError`
            (`zerograd_tf.evaluation.backup.BackupError`) and is kept. The
            file is removed when the evaluation finishes. Defaults to
            `None`: nothing is saved.

    Returns:
        A dict with

            - `clean_accuracy`, `robust_accuracy` (the worst case over the
              attacks run), `num_examples`, `num_clean_correct`,
              `num_robust_correct`, `epsilon`, `attack`, `seconds`;
            - `clean_loss`: the mean over examples of `loss` at the clean input;
            - `robust_loss`: the mean over examples of the highest `loss` found
              for each: at its clean input and at every point
              `clip(x + delta, 0, 1)` an attack returned for it (an example is
              attacked only while it is classified correctly and unbroken, so a
              misclassified example contributes its clean loss). It is never
              below `clean_loss` and never falls when attacks are added;
            - `attacks`: one entry per attack run with its `name`, `label` (e.g.
              `"APGD-CE-100"`), `robust_accuracy` (after it), `num_attacked`,
              `num_broken` and `seconds`;
            - `precision`: the dtype policy of the model attacked;
            - with PGD, `alpha`, `steps`, `restarts`; with Square after a
              gradient attack, `square_only_broken` and `gradient_masking`.

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
    settings = specs.Settings(
        steps=validation.check_int(steps, "steps", 1),
        restarts=validation.check_int(restarts, "restarts", 1),
        alpha=epsilon / 4 if alpha is None else validation.check_positive(alpha, "alpha"),
        early_stop=bool(early_stop),
        apgd_steps=validation.check_int(apgd_steps, "apgd_steps", 1),
        apgd_restarts=validation.check_int(apgd_restarts, "apgd_restarts", 1),
        apgd_targets=validation.check_int(apgd_targets, "apgd_targets", 1),
        square_queries=validation.check_int(square_queries, "square_queries", 1))
    seed = validation.check_int(seed, "seed", 0)
    model, loss = dtype_policies.attacked_model(model, loss, precision)
    members = attack_members(attack)
    batch_size = validation.check_int(batch_size, "batch_size", 1)
    dataset = engine.as_dataset(data, batch_size)
    if jit_compile is None:
        jit_compile = default_jit_compile()
    if strategy is None and tf.distribute.has_strategy():
        strategy = tf.distribute.get_strategy()
    started = time.perf_counter()
    x, y = engine.collect(dataset)
    num_classes = int(np.asarray(model(x[:1], training=False)).shape[-1])
    explicit = {attack} if isinstance(attack, str) else set(attack)
    attack_specs = _usable_specs(members, explicit, num_classes)
    context = specs.Context(model, epsilon, settings,
                            objectives_lib.inference_objective(model, loss), bool(jit_compile))
    backup = None
    if backup_path is not None:
        replicas = strategy.num_replicas_in_sync if strategy is not None else 1
        backup = backup_lib.EvaluationBackup(backup_path, backup_lib.evaluation_key(
            context, x, y, attack_specs, batch_size=batch_size, seed=seed, replicas=replicas,
            loss=loss))
    counts = engine.run(context, x, y, attack_specs, batch_size=batch_size, seed=seed,
                        strategy=strategy, verbose=verbose, backup=backup)
    report = {key: counts.pop(key) for key in _REPORT_KEYS}
    report["epsilon"] = epsilon
    report["precision"] = precision_lib.policy_of(getattr(model, "classifier", model))
    if any(spec.name == "pgd" for spec in attack_specs):
        report.update(alpha=float(settings.alpha), steps=settings.steps,
                      restarts=settings.restarts)
    report["attack"] = attack if isinstance(attack, str) else "+".join(attack)
    report.update(counts)
    report["seconds"] = time.perf_counter() - started
    _log_masking(report)
    return report


_REPORT_KEYS = ("clean_accuracy", "robust_accuracy", "clean_loss", "robust_loss",
                "num_examples", "num_clean_correct", "num_robust_correct")


def _usable_specs(members, explicit, num_classes):
    """The specs of `members` the model has enough classes for.

    A member that needs more classes is an error when named in `explicit`,
    and skipped (with a logged note) when it came from `"autoattack"`:
    AutoAttack on a 3-class problem runs without APGD-T.
    """
    usable = []
    for member in members:
        spec = specs.REGISTRY[member]
        if num_classes >= spec.min_classes:
            usable.append(spec)
        elif member in explicit:
            raise ValueError(
                f"`attack` {member!r} needs a classifier with at least {spec.min_classes} "
                f"classes (its DLR loss compares the top logits); this one has {num_classes}.")
        else:
            _LOG.warning("autoattack: skipping %s, which needs more classes than the "
                         "model's %d.", member, num_classes)
    return usable


def _log_masking(report):
    broken = report.get("square_only_broken")
    if not broken:
        return
    attacked = next(entry["num_attacked"] for entry in report["attacks"]
                    if specs.REGISTRY[entry["name"]].gradient_free)
    if report["gradient_masking"]:
        _LOG.warning(
            "Square, a gradient-free attack, broke %d of the %d examples that every gradient "
            "attack left robust, more than chance explains: a sign of gradient masking (the "
            "model's gradients mislead gradient attacks), so gradient-based robust accuracy "
            "overstates its robustness.", broken, attacked)
    else:
        _LOG.info("Square broke %d of the %d examples the gradient attacks left robust: "
                  "within chance, no sign of gradient masking.", broken, attacked)


def rising_pairs(radii, accuracies):
    """The consecutive radii `(a, b)` whose robust accuracy rises from a to b.

    Args:
        radii: the radii, in increasing order.
        accuracies: the robust accuracy at each radius.

    Returns:
        A list of pairs `(a, b)` of consecutive radii.

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
        relative_alpha: PGD's step size as a multiple of each radius, not
            with `alpha`. Defaults to `None`: `alpha` if given, else
            `evaluate_robustness`'s default (1/4 of each radius).
        **kwargs: passed to `evaluate_robustness` (e.g. `attack`, or
            `alpha`, one step size for every radius).

    Returns:
        A dict with `epsilons` (sorted), `robust_accuracy` (one per radius),
        `monotone` (bool), `violations` (pairs of radii whose accuracy rose)
        and `reports` (the full reports).

    Raises:
        ValueError: for an empty `epsilons`, a radius outside (0, 1], or both
            `relative_alpha` and `alpha`.

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
    if relative_alpha is not None and kwargs.get("alpha") is not None:
        raise ValueError(
            "Pass either `relative_alpha` (PGD's step as a multiple of each radius) or "
            "`alpha` (one step size for every radius), not both.")
    if relative_alpha is not None:
        relative_alpha = validation.check_positive(relative_alpha, "relative_alpha")
        kwargs.pop("alpha", None)  # None: the default, replaced by each radius' own
    # One model attacked at every radius: a lower-precision model's float32
    # copy is made once here, then attacked as it is.
    model, kwargs["loss"] = dtype_policies.attacked_model(
        model, kwargs.pop("loss", None), kwargs.pop("precision", "float32"))
    kwargs["precision"] = "as_trained"
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
