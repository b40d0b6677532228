"""`NonFiniteLossGuard`: Keras' `TerminateOnNaN` that records where the loss diverged."""

import math

import keras


class NonFiniteLossGuard(keras.callbacks.TerminateOnNaN):
    """Stops training when the loss stops being finite, and remembers where.

    The stop is Keras' own: this is `keras.callbacks.TerminateOnNaN`, which
    at the first training step whose loss is NaN or infinite prints
    `Batch <n>: Invalid loss, terminating training` and sets
    `model.stop_training`. `TerminateOnNaN` keeps nothing of it, though;
    the guard also records in `diverged` the epoch, the step and the loss
    value, so that the program that called `fit` can tell a diverged run
    from a finished one and say where it diverged (`zerograd-train` turns
    it into its error message). Place an `EpochCheckpoint` in the same
    `fit` to keep the last good epoch: it does not save an epoch whose
    logged loss is not finite.

    Examples:
        >>> import numpy as np, keras
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x = np.array([[1.0, 2.0]] * 4 + [[np.nan, 0.0]] * 4, "float32")
        >>> guard = NonFiniteLossGuard()
        >>> history = model.fit(x, np.zeros(8), batch_size=2, epochs=3, shuffle=False,
        ...                     verbose=0, callbacks=[guard])
        Batch 2: Invalid loss, terminating training
        >>> guard.diverged["epoch"], guard.diverged["step"], len(history.history["loss"])
        (1, 3, 1)
    """

    def __init__(self):
        super().__init__()
        self.diverged = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.diverged = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        """Records a non-finite loss, then lets `TerminateOnNaN` stop training."""
        loss = (logs or {}).get("loss")
        try:
            value = float(loss)
        except (TypeError, ValueError):
            return  # no loss, or none that is a number
        if not math.isfinite(value) and self.diverged is None:
            self.diverged = {"epoch": self._epoch + 1, "step": batch + 1, "loss": value}
        super().on_batch_end(batch, logs)
