"""The paper's explanatory statistics of catastrophic overfitting, in TensorBoard."""

import os

import keras
import numpy as np
import tensorflow as tf

from zerograd_tf import monitoring, validation
from zerograd_tf.callbacks.log_keys import add_to_logs

# The prefix of the callback's key in the epoch logs (and its TensorBoard folder).
LOG_PREFIX = "diagnostics"
# Names of the TensorBoard entries, under `<logdir>/diagnostics`.
DIAGNOSTIC_TAGS = (
    "gradient/abs_histogram",
    "gradient/small_fraction",
    "gradient/alignment",
    "attack/fgsm_accuracy",
    "attack/pgd_accuracy",
    "attack/fgsm_pgd_gap",
    "training/mean_abs_delta",
    "training/zeroed_fraction",
)


class AdversarialDiagnostics(keras.callbacks.Callback):
    """Logs, each epoch, what explains catastrophic overfitting.

    On a fixed batch `(x, y)`, with the model in inference mode:

    - `gradient/abs_histogram`: the distribution of |∇ₓL| over all elements;
      `gradient/small_fraction`: the fraction of elements with |∇ₓL| below
      `small_threshold`. ZeroGrad's argument: the many small gradient
      elements have unstable signs, and FGSM's full-size steps along them
      are what the network learns to defeat.
    - `gradient/alignment`: mean cosine between ∇ₓL at x and at x + η, η
      uniform in the ε-ball (Andriushchenko and Flammarion, 2020), measured
      by `monitoring.inference_gradient_alignment`; it drops when the loss
      becomes locally non-linear, as CO sets in. It is also added to the
      epoch logs as `diagnostics/inference_gradient_alignment` (place the
      callback before `TensorBoard`/`CSVLogger` to have it logged there).
      This is not `GradAlignModel`'s training metric `gradient_alignment`,
      which averages the same cosine over the epoch's training batches, in
      the attack's (training) mode and without clipping x + η into [0, 1];
      the prefix keeps the two apart, and a key already in the logs raises
      a `ValueError` rather than being replaced.
    - `attack/fgsm_accuracy`, `attack/pgd_accuracy`, `attack/fgsm_pgd_gap`:
      the gap grows sharply at CO.
    - `training/mean_abs_delta`, `training/zeroed_fraction`: from the epoch's
      training logs, when the model reports them.

    Args:
        x: the fixed inputs (floats in [0, 1]).
        y: their labels.
        logdir: TensorBoard folder; entries go to `<logdir>/diagnostics`.
        epsilon: the radius of the measurements. Defaults to the model's
            `epsilon` when `fit` starts (its target, before an epsilon
            warm-up lowers it), the same for every epoch.
        small_threshold: the |∇ₓL| below which an element counts as small.
            Defaults to 1e-6.
        pgd_steps: steps of the PGD measurement. Defaults to 10.
        seed: seed of η and of the PGD start. Defaults to 0.

    Examples:
        >>> import os, tempfile
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> x = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
        >>> y = np.arange(32) % 2
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = zg.FGSMModel(inputs, outputs, epsilon=0.1, random_init=True, seed=0)
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> logdir = tempfile.mkdtemp()
        >>> diagnostics = zg.AdversarialDiagnostics(x[:16], y[:16], logdir, pgd_steps=2)
        >>> history = model.fit(x, y, epochs=1, batch_size=16, callbacks=[diagnostics],
        ...                     verbose=0)
        >>> os.listdir(logdir)
        ['diagnostics']
        >>> len(history.history["diagnostics/inference_gradient_alignment"])
        1
    """

    def __init__(self, x, y, logdir, epsilon=None, *, small_threshold=1e-6, pgd_steps=10,
                 seed=0):
        super().__init__()
        validation.check_same_length(x, y)
        self.x = np.asarray(x, np.float32)
        self.y = np.asarray(y)
        self.logdir = logdir
        self.epsilon = None if epsilon is None else validation.check_epsilon(epsilon)
        self.small_threshold = validation.check_positive(small_threshold, "small_threshold")
        self.pgd_steps = validation.check_int(pgd_steps, "pgd_steps", 1)
        self.seed = validation.check_int(seed, "seed", 0)
        self._writer = None
        self._meter = None
        self._target_epsilon = self.epsilon

    def on_train_begin(self, logs=None):
        # A fresh start for every `fit` (the model may be another one).
        self._meter = None
        self._target_epsilon = (self.epsilon if self.epsilon is not None
                                else self.model.epsilon)

    def statistics(self):
        """The scalar statistics and the |∇ₓL| values, as a dict."""
        epsilon = self._target_epsilon
        if epsilon is None:
            epsilon = self._target_epsilon = self.model.epsilon
        if self._meter is None:
            self._meter = monitoring.AttackMeter(self.model, epsilon, pgd_steps=self.pgd_steps)
        magnitudes = tf.abs(monitoring.input_gradients(self.model, self.x, self.y))
        accuracies = self._meter(self.x, self.y, self.seed)
        return {
            "gradient_abs": magnitudes.numpy().ravel(),
            "small_fraction": float(tf.reduce_mean(
                tf.cast(magnitudes < self.small_threshold, tf.float32))),
            "alignment": monitoring.inference_gradient_alignment(
                self.model, self.x, self.y, epsilon, self.seed),
            "fgsm_accuracy": accuracies["fgsm_accuracy"],
            "pgd_accuracy": accuracies["pgd_accuracy"],
        }

    def on_epoch_end(self, epoch, logs=None):
        stats = self.statistics()
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.logdir, LOG_PREFIX))
        with self._writer.as_default():
            tf.summary.histogram("gradient/abs_histogram", stats["gradient_abs"], step=epoch)
            tf.summary.scalar("gradient/small_fraction", stats["small_fraction"], step=epoch)
            tf.summary.scalar("gradient/alignment", stats["alignment"], step=epoch)
            tf.summary.scalar("attack/fgsm_accuracy", stats["fgsm_accuracy"], step=epoch)
            tf.summary.scalar("attack/pgd_accuracy", stats["pgd_accuracy"], step=epoch)
            tf.summary.scalar("attack/fgsm_pgd_gap",
                              stats["fgsm_accuracy"] - stats["pgd_accuracy"], step=epoch)
            for key in ("mean_abs_delta", "zeroed_fraction"):
                if key in (logs or {}):
                    tf.summary.scalar(f"training/{key}", float(logs[key]), step=epoch)
        self._writer.flush()
        add_to_logs(logs, LOG_PREFIX, {"inference_gradient_alignment": stats["alignment"]})
