"""Crash-safe epoch checkpoints for resumable training.

A checkpoint is a folder holding `model.weights.h5` (the model's weights,
its hyperparameter variables, and the optimizer's state, whose step counter
also seeds the attack's random numbers) and `state.json` (`{"epoch": n}`,
the number of finished epochs). It is written to `staging/` and then
swapped in with `os.replace`, keeping the previous one until the new one is
in place, so a process killed at any instant leaves at least one complete
checkpoint: `latest/`, or during the swap `previous/`.
"""

import json
import logging
import math
import os
import shutil

import keras

from zerograd_tf import io_utils

_WEIGHTS = "model.weights.h5"
_STATE = "state.json"


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint at the end of every epoch; restores the newest.

    Why not `keras.callbacks.BackupAndRestore`, which also saves the
    weights (optimizer included) and the epoch after every epoch and resumes
    from them (as of Keras 3.15):

    - It writes `latest.weights.h5` and then `training_metadata.json` in
      place. A kill during the first write leaves a truncated weights file
      (`double_checkpoint=True` keeps a copy of the previous pair, used only
      when loading raises an `OSError`); a kill during the second, a
      metadata file that `json` cannot read, which fails the next `fit`; a
      kill between the two, new weights with the previous epoch's number,
      which resumes silently one epoch behind the weights. Here a checkpoint
      is a folder of both files, swapped in whole (the module's docstring).
    - It restores inside `fit` (`on_train_begin` sets the private
      `model._initial_epoch`), so the caller learns the epoch only once
      `fit` runs. `restore` returns it before: `zerograd-train` builds the
      training data from that epoch on (every epoch's batches depend on the
      seed and the epoch, so a resumed run trains on what the uninterrupted
      one did) and asks the CO monitor whether it stopped the run already;
      and it can restore from another folder than the one it writes (under
      a multi-worker strategy every worker writes its own, all restore from
      the chief's).
    - It saves every epoch, also one whose loss is NaN, replacing the last
      good weights with NaN ones; this skips such an epoch.
    - It deletes its backup when `fit` ends (`delete_checkpoint=True` by
      default), also when a callback stopped training (`TerminateOnNaN`,
      the CO monitor), before the program has saved the model; this one is
      deleted when the program says so (`delete`), once the model is saved.
    - It has no check of a checkpoint short of loading it into a model;
      `problems` finds a damaged one before training starts.

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

        A damaged checkpoint is skipped for an older readable one, also when
        only `load_weights` finds the damage.

        Returns:
            The number of finished epochs it holds (0 without a checkpoint),
            to pass to `fit` as `initial_epoch`.

        Raises:
            ValueError: when every checkpoint on disk is damaged (naming the
                file).
        """
        checked = self._checked()
        failures = [result for _, result in checked if isinstance(result, str)]
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        for folder, epoch in checked:
            if isinstance(epoch, str):
                continue
            weights_path = os.path.join(folder, _WEIGHTS)
            try:
                model.load_weights(weights_path)
            except Exception as error:  # noqa: BLE001 - Keras raises many kinds
                failure = io_utils.damaged(weights_path, error).replace(
                    " is damaged (", " cannot be loaded (", 1)
                logging.getLogger("zerograd_tf").warning("%s; trying an older checkpoint.",
                                                         failure)
                failures.append(failure)
                continue
            return epoch
        if failures:
            raise ValueError(failures[0])
        return 0

    def _complete(self):
        """The checkpoint folders holding both files, newest first."""
        folders = [self._path(name) for name in ("latest", "previous")]
        return [f for f in folders if os.path.isfile(os.path.join(f, _STATE))
                and os.path.isfile(os.path.join(f, _WEIGHTS))]

    def _checked(self):
        """`(folder, epoch or problem line)` of each complete checkpoint, newest first."""
        return [(folder, _problem(folder)) for folder in self._complete()]

    def problems(self):
        """The damaged checkpoints, one line each, newest first.

        Checks `state.json` and the structure of `model.weights.h5` (every
        array's header, and that its data lies inside the file) without
        reading the arrays or building a model, so it is cheap also for a
        big model: a truncated or empty file is found before training.

        Returns:
            A list of lines, `"<path> is damaged (<reason>)"`; empty when
            every checkpoint is sound (or there is none).

        Examples:
            >>> import os, tempfile
            >>> folder = os.path.join(tempfile.mkdtemp(), "ckpt")
            >>> os.makedirs(os.path.join(folder, "latest"))
            >>> for name in ("state.json", "model.weights.h5"):
            ...     open(os.path.join(folder, "latest", name), "w").close()
            >>> problems = EpochCheckpoint(folder).problems()
            >>> print(problems[0].replace(folder, "ckpt"))  # doctest: +ELLIPSIS
            ckpt/latest/state.json is damaged (JSONDecodeError: Expecting value: ...)
            >>> len(problems)
            1
        """
        return [p for _, p in self._checked() if isinstance(p, str)]

    def usable(self):
        """The newest checkpoint that `problems` finds sound.

        `restore` loads it (and goes on to an older one should `load_weights`
        still fail).

        Returns:
            `(folder, epoch)`: its folder and the number of finished epochs
            it holds; None when there is no sound checkpoint.

        Examples:
            >>> import os, tempfile
            >>> EpochCheckpoint(os.path.join(tempfile.mkdtemp(), "ckpt")).usable() is None
            True
        """
        for folder, epoch in self._checked():
            if not isinstance(epoch, str):
                return folder, epoch
        return None

    def exists(self):
        """Whether a checkpoint is on disk (sound or not).

        A run whose checkpoint exists has not finished: the checkpoint is
        deleted once the trained model is saved.

        Returns:
            A bool.

        Examples:
            >>> import os, tempfile
            >>> EpochCheckpoint(os.path.join(tempfile.mkdtemp(), "ckpt")).exists()
            False
        """
        return any(os.path.isfile(os.path.join(self._path(n), _STATE))
                   for n in ("latest", "previous"))

    def delete(self):
        """Deletes the checkpoint folder and everything in it (if any)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def _problem(folder):
    """The epoch a checkpoint folder holds, or a line saying which file is damaged.

    Reads `state.json`, and the structure of `model.weights.h5` (h5py):
    every dataset's header (shape, type) and that its stored data lies
    inside the file; the arrays themselves are not read (but for the
    rare dataset not stored contiguously, which is read).
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
        size = os.path.getsize(weights_path)
        with h5py.File(weights_path, "r") as f:
            f.visititems(lambda name, item: _check_dataset(name, item, size))
    except Exception as error:  # h5py raises OSError, KeyError, RuntimeError...
        return io_utils.damaged(weights_path, error)
    return epoch


def _check_dataset(name, item, file_size):
    """Raises unless the dataset `item`'s header reads and its data fits the file."""
    import h5py

    if not isinstance(item, h5py.Dataset):
        return None  # a group: `visititems` goes on
    item.shape, item.dtype  # noqa: B018 - reads the header
    offset = item.id.get_offset()
    if offset is None:  # compact, chunked or unwritten storage: read it
        item[()]
    elif offset + item.id.get_storage_size() > file_size:
        raise OSError(f"dataset {name} ends past the end of the file ({file_size} bytes)")
    return None
