"""A study run's per-epoch measurement: clean, FGSM and PGD-10 accuracy."""

import time

import keras

from zerograd_tf import dtype_policies, io_utils, monitoring, precision


class EpochMonitor(keras.callbacks.Callback):
    """Times each epoch's training, then measures clean/FGSM/PGD-10 accuracy.

    For the `fit` of an `AdversarialModel` (it measures `model.classifier`
    through the model's attacks). One row per epoch in `rows`: `epoch`
    (1-based), `train_loss`, `train_accuracy`, `clean_accuracy`,
    `fgsm_accuracy`, `pgd_accuracy`, `epoch_seconds` (from the epoch's start
    to this callback's epoch end: the training steps and the checks of the
    callbacks before this one, not this measurement) and, for ZeroGrad, the
    epoch's mean `zeroed_fraction`. The measurement is seeded
    (`seed`), so an epoch's accuracies depend only on its weights: a resumed
    run measures what the uninterrupted one did.

    A mixed-precision model is measured through a float32 copy with the
    epoch's weights, as the study's final evaluation is: the CO rule then
    judges the same function the reported robustness describes.

    Args:
        x: the monitoring images (floats in [0, 1]).
        y: their integer labels.
        epsilon: the attacks' radius.
        pgd_steps: PGD steps. Defaults to 10.
        seed: the attacks' seed. Defaults to 0.
        rows: the rows of the epochs before this `fit` (a resumed run's).
            Defaults to `None` (none).
        rows_path: JSON file to which the rows are written after every epoch
            (atomically), so that a killed run can resume them. Defaults to
            `None` (kept in memory only).
        verbose: 1 prints a line per epoch (on standard output, as Keras'
            progress does), headed by `label`. Defaults to 0.
        label: what the lines name (e.g. the run). Defaults to `""`.

    Examples:

        >>> import keras, numpy as np
        >>> import zerograd_tf as zg
        >>> from zerograd_tf.benchmarking.epoch_monitor import EpochMonitor
        >>> x = np.random.default_rng(0).random((16, 8, 8, 1), dtype="float32")
        >>> y = np.arange(16) % 2
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = zg.FGSMModel(inputs, outputs, epsilon=0.1)
        >>> model.compile(optimizer="adam", metrics=["accuracy"],
        ...     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> monitor = EpochMonitor(x, y, epsilon=0.1, pgd_steps=2)
        >>> _ = model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[monitor])
        >>> [row["epoch"] for row in monitor.rows]
        [1, 2]
        >>> sorted(k for k in monitor.rows[0] if k.endswith("_accuracy"))
        ['clean_accuracy', 'fgsm_accuracy', 'pgd_accuracy', 'train_accuracy']
    """

    def __init__(self, x, y, epsilon, pgd_steps=10, seed=0, *, rows=None, rows_path=None,
                 verbose=0, label=""):
        super().__init__()
        self.verbose, self.label = verbose, label
        self.x, self.y, self.epsilon = x, y, epsilon
        self.pgd_steps, self.seed = pgd_steps, seed
        self.rows = list(rows or [])
        self.rows_path = rows_path
        self._start = None
        self._meter = None
        self._copy = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        if self._meter is None:
            measured_model = self.model
            if precision.is_lower_precision(self.model.classifier):
                self._copy = measured_model = dtype_policies.float32_copy(self.model)
            self._meter = monitoring.AttackMeter(measured_model, self.epsilon,
                                                 pgd_steps=self.pgd_steps)
        if self._copy is not None:
            self._copy.set_weights(self.model.classifier.get_weights())
        measured = self._meter(self.x, self.y, self.seed)
        logs = logs or {}
        self.rows.append({
            "epoch": epoch + 1,
            "train_loss": float(logs.get("loss", float("nan"))),
            "train_accuracy": float(logs.get("accuracy", float("nan"))),
            **{k: float(v) for k, v in measured.items()},
            "epoch_seconds": seconds,
            # ZeroGrad's mean zeroed fraction of the epoch's training steps.
            **({"zeroed_fraction": float(logs["zeroed_fraction"])}
               if "zeroed_fraction" in logs else {}),
        })
        if self.rows_path:
            io_utils.write_json_atomic(self.rows_path, self.rows)
        if self.verbose:
            row = self.rows[-1]
            epochs = self.params.get("epochs") if self.params else None
            print(f"{self.label + ': ' if self.label else ''}epoch {epoch + 1}"
                  f"{f'/{epochs}' if epochs else ''}: clean {row['clean_accuracy']:.3f}, "
                  f"FGSM {row['fgsm_accuracy']:.3f}, PGD-{self.pgd_steps} "
                  f"{row['pgd_accuracy']:.3f} ({seconds:.0f} s)", flush=True)
