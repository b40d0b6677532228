"""`NonFiniteLossGuard`: stops training at the first NaN or infinite loss."""

import math

import keras


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training when the loss stops being finite, and remembers where.

    Keras' `TerminateOnNaN` stops too, but keeps nothing; with this guard
    placed before an `EpochCheckpoint`, the epoch that diverged is not saved
    (the checkpoint skips epochs whose logged loss is not finite), so the
    last good checkpoint survives for inspection or a resumed run with other
    settings. After `fit`, `diverged` says where it happened.

    Examples:
        >>> guard = NonFiniteLossGuard()
        >>> guard.diverged is None
        True
    """

    def __init__(self):
        super().__init__()
        self.diverged = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.diverged = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        try:
            value = float(loss)
        except (TypeError, ValueError):
            return
        if not math.isfinite(value):
            self.diverged = {"epoch": self._epoch + 1, "step": batch + 1, "loss": value}
            self.model.stop_training = True
