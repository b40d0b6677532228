"""Measuring catastrophic overfitting: attack accuracies and the CO rule.

Catastrophic overfitting (CO) shows as PGD accuracy collapsing while FGSM
accuracy stays high: the model has learnt to defeat the single-step attack
it trains on, not to be robust. `AttackMeter` measures clean, FGSM and PGD
accuracy on a fixed batch; `catastrophic_overfitting` applies the package's
rule to a sequence of such measurements; `input_gradients` and
`inference_gradient_alignment` are the diagnostics' measurements.
"""

import numpy as np
import tensorflow as tf

from zerograd_tf import objectives as objectives_lib
from zerograd_tf import attacks
from zerograd_tf.attacks import ops
from zerograd_tf import validation

__all__ = ["catastrophic_overfitting", "slow_slide", "AttackMeter", "input_gradients",
           "inference_gradient_alignment"]

# The CO rule's defaults, documented in the README.
DEFAULT_DROP = 0.5
DEFAULT_MIN_BEST = 0.05
DEFAULT_SLIDE_DROP = 0.2


def catastrophic_overfitting(pgd_accuracies, fgsm_accuracies, drop=DEFAULT_DROP,
                             min_best=DEFAULT_MIN_BEST):
    """Whether the last measurement shows catastrophic overfitting.

    The rule: with `best` the highest PGD accuracy of the *earlier*
    measurements, the run has catastrophically overfitted when its last PGD
    accuracy is below `drop * best` (by default, less than half its best)
    while its last FGSM accuracy is above `best` (the single-step attack no
    longer finds what PGD finds), and `best` is at least `min_best` (5 % by
    default: a run that never became robust, such as clean training, has no
    robustness to lose). A decline of every accuracy (divergence) is not CO.

    Args:
        pgd_accuracies: PGD accuracies in order (at least two to decide).
        fgsm_accuracies: FGSM accuracies of the same measurements.
        drop: fraction of the best PGD accuracy below which it has collapsed,
            in (0, 1). Defaults to 0.5.
        min_best: the least best-earlier PGD accuracy that counts as robust.
            Defaults to 0.05.

    Returns:
        A bool.

    Raises:
        ValueError: for sequences of different lengths or `drop` outside (0, 1).

    Examples:
        >>> catastrophic_overfitting([0.20, 0.30, 0.04], [0.35, 0.45, 0.90])
        True
        >>> catastrophic_overfitting([0.20, 0.30, 0.04], [0.25, 0.20, 0.10])  # divergence
        False
    """
    if not _decidable(pgd_accuracies, fgsm_accuracies, drop):
        return False
    best = max(pgd_accuracies[:-1])
    return bool(best >= min_best and best > 0 and pgd_accuracies[-1] < drop * best
                and fgsm_accuracies[-1] > best)


def _decidable(pgd_accuracies, fgsm_accuracies, drop):
    """Whether a rule can decide on these measurements (at least two); raises
    `ValueError` for sequences of different lengths or `drop` outside (0, 1)."""
    if not 0 < drop < 1:
        raise ValueError(f"`drop` must be in (0, 1), got {drop!r}.")
    if len(pgd_accuracies) != len(fgsm_accuracies):
        raise ValueError("`pgd_accuracies` and `fgsm_accuracies` differ in length.")
    return len(pgd_accuracies) >= 2


def slow_slide(pgd_accuracies, fgsm_accuracies, drop=DEFAULT_SLIDE_DROP,
               min_best=DEFAULT_MIN_BEST):
    """Whether the last measurement shows robustness sliding away.

    Catastrophic overfitting collapses within an epoch; on harder data it
    can also arrive slowly, PGD accuracy eroding over epochs while FGSM
    accuracy holds (the CO study's CIFAR-10 runs). The rule: with `best` the
    highest PGD accuracy of the earlier measurements (at least `min_best`),
    the last measurement has slid when its PGD accuracy is below
    `(1 - drop) * best`, still falling (below the measurement before it),
    and its FGSM-PGD gap is wider than at the best measurement: the
    single-step attack misses more of what PGD finds, the signature of CO,
    not of a general decline, where both fall together.

    Args:
        pgd_accuracies: PGD accuracies in order (at least two to decide).
        fgsm_accuracies: FGSM accuracies of the same measurements.
        drop: the fraction of the best PGD accuracy lost, in (0, 1).
            Defaults to 0.2.
        min_best: the least best-earlier PGD accuracy that counts as robust.
            Defaults to 0.05.

    Returns:
        A bool.

    Raises:
        ValueError: for sequences of different lengths or `drop` outside (0, 1).

    Examples:
        >>> slow_slide([0.18, 0.17, 0.15, 0.13], [0.20, 0.20, 0.21, 0.22])
        True
        >>> slow_slide([0.18, 0.17, 0.15, 0.13], [0.21, 0.20, 0.17, 0.14])  # both fall
        False
    """
    if not _decidable(pgd_accuracies, fgsm_accuracies, drop):
        return False
    earlier = list(pgd_accuracies[:-1])
    best = max(earlier)
    at_best = earlier.index(best)
    pgd, fgsm = pgd_accuracies[-1], fgsm_accuracies[-1]
    return bool(best >= min_best and pgd < (1 - drop) * best and pgd < earlier[-1]
                and fgsm - pgd > fgsm_accuracies[at_best] - best)


class AttackMeter:
    """Clean, FGSM and PGD-k accuracy of a model, compiled once, reusable.

    FGSM starts from zero with step `fgsm_alpha` (default epsilon); PGD is
    `pgd_steps` steps of `pgd_alpha` (default epsilon / 4) from a seeded
    uniform start, one restart. The model runs in inference mode. Create one
    meter per model and call it as often as needed (e.g. every epoch): the
    attack is traced once, and a call may measure at another radius
    (`epsilon=`) without retracing; the step sizes then scale with it.

    Args:
        model: a Keras classifier on inputs in [0, 1].
        epsilon: radius in (0, 1].
        pgd_steps: PGD steps (>= 1). Defaults to 10.
        pgd_alpha: PGD's step size. Defaults to `epsilon / 4`.
        fgsm_alpha: FGSM's step size. Defaults to `epsilon`.
        batch_size: examples per compiled call. Defaults to 512.

    Examples:
        >>> import numpy as np, keras
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> x = np.random.default_rng(0).random((64, 4), dtype="float32")
        >>> meter = AttackMeter(model, 0.1, pgd_steps=3)
        >>> accuracies = meter(x, np.arange(64) % 2)
        >>> sorted(accuracies)
        ['clean_accuracy', 'fgsm_accuracy', 'pgd_accuracy']
        >>> bool(accuracies["pgd_accuracy"] <= accuracies["clean_accuracy"])
        True
    """

    def __init__(self, model, epsilon, *, pgd_steps=10, pgd_alpha=None,
                 fgsm_alpha=None, batch_size=512):
        self.epsilon = validation.check_epsilon(epsilon)
        self.pgd_steps = validation.check_int(pgd_steps, "pgd_steps", 1)
        # The steps as fractions of epsilon, so that a call at another
        # radius scales them.
        self.pgd_factor = 0.25 if pgd_alpha is None else pgd_alpha / self.epsilon
        self.fgsm_factor = 1.0 if fgsm_alpha is None else fgsm_alpha / self.epsilon
        self.batch_size = validation.check_int(batch_size, "batch_size", 1)
        self._counts = self._counting_function(objectives_lib.inference_objective(model))

    def _counting_function(self, objective):
        @tf.function(reduce_retracing=True)
        def counts(x, y, seed, epsilon):
            labels = objectives_lib.class_labels(y)

            def correct(inputs):
                _, y_pred = objective(inputs, y)
                return tf.reduce_sum(tf.cast(
                    objectives_lib.predicted_labels(y_pred) == labels, tf.float64))

            fgsm, _ = attacks.fgsm(objective, x, y, epsilon, self.fgsm_factor * epsilon)
            pgd, _ = attacks.pgd(objective, x, y, epsilon, self.pgd_factor * epsilon,
                                 steps=self.pgd_steps, seed=seed)
            return tf.stack([correct(x), correct(tf.clip_by_value(x + fgsm, 0.0, 1.0)),
                             correct(tf.clip_by_value(x + pgd, 0.0, 1.0))])

        return counts

    def __call__(self, x, y, seed=0, epsilon=None):
        """Accuracies on arrays `x` (float in [0, 1]) and `y` (labels).

        Args:
            x: the images, floats in [0, 1].
            y: their integer labels.
            seed: the PGD start's seed. Defaults to 0.
            epsilon: the radius of this measurement; defaults to the
                meter's `epsilon`.

        Returns:
            A dict `{"clean_accuracy", "fgsm_accuracy", "pgd_accuracy"}`.
        """
        epsilon = self.epsilon if epsilon is None else validation.check_epsilon(epsilon)
        epsilon = tf.constant(epsilon, tf.float32)
        totals = np.zeros(3)
        base = tf.constant([seed, 0], tf.int64)
        for i, start in enumerate(range(0, len(x), self.batch_size)):
            xb = tf.convert_to_tensor(x[start:start + self.batch_size], tf.float32)
            yb = tf.convert_to_tensor(y[start:start + self.batch_size])
            batch_seed = tf.random.experimental.stateless_fold_in(base, i)
            totals += self._counts(xb, yb, batch_seed, epsilon).numpy()
        n = max(len(x), 1)
        return {"clean_accuracy": float(totals[0] / n), "fgsm_accuracy": float(totals[1] / n),
                "pgd_accuracy": float(totals[2] / n)}


def input_gradients(model, x, y):
    """Per-example input gradients of the model's loss (inference mode).

    Args:
        model: a Keras classifier (or an `AdversarialModel`) producing
            logits or probabilities.
        x: a batch of inputs in [0, 1].
        y: their integer labels.

    Returns:
        A float32 tensor shaped like `x`: the gradient of each example's
        cross-entropy with respect to its input.

    Examples:
        >>> import numpy as np, keras
        >>> from zerograd_tf import monitoring
        >>> inputs = keras.Input((4,))
        >>> model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
        >>> x = np.random.default_rng(0).random((3, 4), dtype="float32")
        >>> tuple(monitoring.input_gradients(model, x, np.array([0, 1, 0])).shape)
        (3, 4)
    """
    x = tf.convert_to_tensor(x, tf.float32)
    objective = objectives_lib.inference_objective(model)
    _, gradient, _ = ops.loss_and_gradient(objective, x, tf.convert_to_tensor(y))
    return gradient


def inference_gradient_alignment(model, x, y, epsilon, seed=0):
    """Mean cosine between the input gradients at x and at x + eta, in inference mode.

    `eta` is uniform in the epsilon-ball, with x + eta clipped into [0, 1];
    this is the gradient alignment of Andriushchenko and Flammarion (2020)
    as a measurement of a trained model on a fixed batch (what
    `AdversarialDiagnostics` logs as `diagnostics/inference_gradient_alignment`).
    It is 1 for a linear model, whose gradient is the same everywhere, and
    falls as the loss surface becomes non-linear within the ball, which
    precedes catastrophic overfitting.

    It is not `GradAlignModel`'s training metric `gradient_alignment`: that
    one averages the cosine over the training batches of an epoch, as each
    train step computes it for the regulariser (in the attack's mode,
    training by default, with x + eta not clipped, and over the examples
    whose two gradients are non-zero only), while the weights change.

    Args:
        model: a Keras classifier (or an `AdversarialModel`).
        x: a batch of inputs in [0, 1].
        y: their integer labels.
        epsilon: the radius of the ball, in pixel units.
        seed: integer seed of `eta`. Defaults to 0.

    Returns:
        A Python float in [-1, 1] (examples with a zero gradient count as 0).

    Examples:
        >>> import numpy as np, keras
        >>> from zerograd_tf import monitoring
        >>> inputs = keras.Input((4,))
        >>> linear = keras.Model(inputs, keras.layers.Dense(2)(inputs))
        >>> x = np.random.default_rng(0).random((8, 4), dtype="float32")
        >>> y = np.arange(8) % 2
        >>> monitoring.inference_gradient_alignment(linear, x, y, epsilon=0.1) > 0.9
        True
    """
    x = tf.convert_to_tensor(x, tf.float32)
    eta = ops.project(x, ops.uniform_noise(tf.shape(x), epsilon, ops.as_seed(seed)))
    g1 = tf.reshape(input_gradients(model, x, y), (tf.shape(x)[0], -1))
    g2 = tf.reshape(input_gradients(model, x + eta, y), (tf.shape(x)[0], -1))
    dot = tf.reduce_sum(g1 * g2, axis=1)
    norms = tf.norm(g1, axis=1) * tf.norm(g2, axis=1)
    cosine = tf.math.divide_no_nan(dot, norms)
    return float(tf.reduce_mean(cosine))
