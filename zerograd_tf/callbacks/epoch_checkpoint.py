"""Crash-safe epoch checkpoints for resumable training.

A checkpoint is a folder holding `model.weights.h5` (the model's weights,
its hyperparameter variables, and the optimizer's state, whose step counter
also seeds the attack's random numbers) and `state.json` (`{"epoch": n}`, the number of finished epochs).
It is written to `staging/` and then swapped in with `os.replace`, keeping
the previous one until the new one is in place, so a process killed at any
instant leaves at least one complete checkpoint: `latest/`, or during the
swap `previous/`. (Keras' `BackupAndRestore` overwrites its only weights file
in place: a kill during the first write leaves nothing to resume from.)
"""

import json
import math
import os
import shutil

import keras

from zerograd_tf import io_utils

_WEIGHTS = "model.weights.h5"
_STATE = "state.json"


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint at the end of every epoch; restores the newest.

    Args:
        directory: folder of the checkpoints (created on the first save).

    Examples:
        Restore (0 epochs when there is no checkpoint), fit from there,
        delete the checkpoint once the result is saved:

        >>> import os, tempfile
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> x = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
        >>> y = np.arange(32) % 2
        >>> def build():
        ...     inputs = keras.Input((8, 8, 1))
        ...     outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        ...     model = zg.FGSMModel(inputs, outputs, epsilon=0.1, seed=0)
        ...     model.compile(optimizer="adam",
        ...                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        ...     return model
        >>> checkpoint = zg.callbacks.EpochCheckpoint(os.path.join(tempfile.mkdtemp(), "ckpt"))
        >>> model = build()
        >>> checkpoint.restore(model)
        0
        >>> history = model.fit(x, y, epochs=2, batch_size=16, callbacks=[checkpoint], verbose=0)
        >>> resumed = build()  # as a new process would
        >>> resumed.build((None, 8, 8, 1))
        >>> checkpoint.restore(resumed)
        2
        >>> all(np.array_equal(a, b) for a, b in zip(resumed.get_weights(), model.get_weights()))
        True
        >>> checkpoint.delete(); checkpoint.exists()
        False
    """

    def __init__(self, directory):
        super().__init__()
        self.directory = directory

    def _path(self, name):
        return os.path.join(self.directory, name)

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            # A diverged epoch (NaN weights) must not replace the last good one.
            return
        staging = self._path("staging")
        latest, previous = self._path("latest"), self._path("previous")
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        self.model.save_weights(os.path.join(staging, _WEIGHTS))
        with open(os.path.join(staging, _STATE), "w") as f:
            json.dump({"epoch": epoch + 1}, f)
        if os.path.isdir(latest):
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(latest, previous)
        os.replace(staging, latest)
        shutil.rmtree(previous, ignore_errors=True)

    def restore(self, model):
        """Loads the newest complete checkpoint into a built, compiled model.

        A damaged checkpoint is skipped for an older readable one.

        Returns:
            The number of finished epochs it holds (0 without a checkpoint),
            to pass to `fit` as `initial_epoch`.

        Raises:
            ValueError: when every checkpoint on disk is damaged (naming the
                file).
        """
        usable = self.usable()
        if usable is None:
            problems = self.problems()
            if problems:
                raise ValueError(problems[0])
            return 0
        folder, epoch = usable
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(folder, _WEIGHTS))
        return epoch

    def _complete(self):
        """The checkpoint folders holding both files, newest first."""
        folders = [self._path(name) for name in ("latest", "previous")]
        return [f for f in folders if os.path.isfile(os.path.join(f, _STATE))
                and os.path.isfile(os.path.join(f, _WEIGHTS))]

    def problems(self):
        """One line per damaged checkpoint file (`"<path> is damaged (...)"`)."""
        return [p for p in map(_problem, self._complete()) if isinstance(p, str)]

    def usable(self):
        """`(folder, epoch)` of the newest readable checkpoint, or None."""
        for folder in self._complete():
            epoch = _problem(folder)
            if not isinstance(epoch, str):
                return folder, epoch
        return None

    def exists(self):
        return any(os.path.isfile(os.path.join(self._path(n), _STATE))
                   for n in ("latest", "previous"))

    def delete(self):
        shutil.rmtree(self.directory, ignore_errors=True)


def _problem(folder):
    """The epoch a checkpoint folder holds, or a line saying which file is damaged.

    Reads `state.json` and every array of `model.weights.h5` (h5py), without
    building a model: a truncated or empty file is found before training.
    """
    import h5py

    state_path = os.path.join(folder, _STATE)
    try:
        with open(state_path) as f:
            epoch = json.load(f)["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch {epoch!r} is not a count of epochs")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        return io_utils.damaged(state_path, error)
    weights_path = os.path.join(folder, _WEIGHTS)
    try:
        with h5py.File(weights_path, "r") as f:
            f.visititems(_read_arrays)
    except Exception as error:  # h5py raises OSError, KeyError, RuntimeError...
        return io_utils.damaged(weights_path, error)
    return epoch


def _read_arrays(name, item):
    if hasattr(item, "dtype"):  # an h5py.Dataset
        item[()]
    # None: `visititems` goes on.
