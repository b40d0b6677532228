"""The saved state of an unfinished study run, from which a killed run resumes."""

import json
import os
import shutil
import sys

from zerograd_tf import io_utils
from zerograd_tf.callbacks.epoch_checkpoint import EpochCheckpoint

_IDENTITY = "identity.json"
_EPOCHS = "epochs.json"
_RESUMES = "resumes.json"


class PartialRun:
    """An unfinished study run's folder: checkpoint, epoch rows, evaluations.

    A study run trains, measures every epoch, then evaluates several times
    (hours on a CPU for a large network). Its folder keeps what a killed
    process would lose, each piece written atomically and in an order that
    a kill at any instant leaves consistent:

    - `checkpoint/`: an `EpochCheckpoint` of the weights and optimizer state
      (whose step counter seeds the attacks), written after each epoch's
      row; a resume truncates the rows to the checkpoint's epochs, so an
      epoch killed between the two is trained and measured again.
    - `epochs.json`: the per-epoch rows (`EpochMonitor(rows_path=...)`).
    - the CO callbacks' state files (`state_dir`), which they trim to the
      checkpoint's epochs themselves when they resume.
    - `evaluation_<name>.json`: each finished final evaluation.
    - `resumes.json`: the number of finished epochs at each resume.

    Training batches depend only on the seed and the epoch, and every
    measurement is seeded, so a resumed run's record equals the
    uninterrupted run's except for its timings (and `resumed_after_epochs`).
    The folder belongs to one run configuration (`identity`): a folder left
    by another configuration (the plan or the evaluation options changed)
    is removed, with a line on stderr, and the run starts afresh.

    Args:
        directory: the run's folder (created if missing).
        identity: a JSON-serialisable description of the run (its
            configuration and evaluation options).

    Examples:

        >>> import tempfile
        >>> from zerograd_tf.benchmarking.partial_run import PartialRun
        >>> folder = tempfile.mkdtemp()
        >>> run = PartialRun(folder, {"seed": 0})
        >>> run.evaluation("final", lambda: {"robust_accuracy": 0.5})
        {'robust_accuracy': 0.5}
        >>> PartialRun(folder, {"seed": 0}).evaluation("final", lambda: 1 / 0)  # kept
        {'robust_accuracy': 0.5}
        >>> run.finish()
    """

    def __init__(self, directory, identity):
        self.directory = directory
        self.identity = json.loads(json.dumps(identity))
        saved = self._read(_IDENTITY)
        if saved is not None and saved != self.identity:
            print(f"{directory}: an unfinished run of another configuration; "
                  "starting this run afresh", file=sys.stderr)
            shutil.rmtree(directory)
        os.makedirs(directory, exist_ok=True)
        if saved != self.identity:
            io_utils.write_json_atomic(self._path(_IDENTITY), self.identity)
        self.checkpoint = EpochCheckpoint(self._path("checkpoint"))

    def _path(self, name):
        return os.path.join(self.directory, name)

    def _read(self, name, default=None):
        path = self._path(name)
        if not os.path.exists(path):
            return default
        with open(path) as f:
            return json.load(f)

    @property
    def state_dir(self):
        """The folder for the CO callbacks' state files."""
        return self.directory

    @property
    def rows_path(self):
        """The JSON file of the per-epoch rows."""
        return self._path(_EPOCHS)

    def rows(self, epochs):
        """The saved rows of the first `epochs` epochs."""
        return [row for row in self._read(_EPOCHS, []) if row["epoch"] <= epochs]

    def restore(self, model):
        """Loads the newest checkpoint into `model` (built and compiled) and
        notes the resume; returns the number of finished epochs (0 when
        there is no checkpoint: a fresh run)."""
        epochs = self.checkpoint.restore(model)
        if epochs:
            io_utils.write_json_atomic(self._path(_RESUMES), self.resumes + [epochs])
        return epochs

    @property
    def resumes(self):
        """The number of finished epochs at each resume so far."""
        return self._read(_RESUMES, [])

    def evaluation(self, name, compute):
        """The saved result of the evaluation `name`, else `compute()`'s,
        saved (a JSON-serialisable report)."""
        saved = self._read(f"evaluation_{name}.json")
        if saved is not None:
            return saved
        result = json.loads(json.dumps(compute()))
        io_utils.write_json_atomic(self._path(f"evaluation_{name}.json"), result)
        return result

    def finish(self):
        """Removes the folder (once the run's record is written)."""
        shutil.rmtree(self.directory, ignore_errors=True)
