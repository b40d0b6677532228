"""The saved state of an unfinished study run, from which a killed run resumes."""

import datetime
import json
import os
import shutil
import tempfile

from zerograd_tf import io_utils
from zerograd_tf.benchmarking.machine import machine_record
from zerograd_tf.callbacks.epoch_checkpoint import EpochCheckpoint
from zerograd_tf.runs.options import UsageError
from zerograd_tf.runs.run_lock import RunLock

_IDENTITY = "identity.json"
_EPOCHS = "epochs.json"
_PROCESSES = "processes.json"
_REMOVING = ".removing-"


class PartialRun:
    """An unfinished study run's folder: checkpoint, epoch rows, evaluations.

    A study run trains, measures every epoch, then evaluates several times
    (hours on a CPU for a large network). Its folder keeps what a killed
    process would lose, each piece written atomically and in an order that
    a kill at any instant leaves consistent:

    - `checkpoint/`: an `EpochCheckpoint` of the weights and optimizer state
      (whose step counter seeds the attacks) after each epoch whose loss is
      finite, written after the epoch's row; a resume truncates the rows to
      the checkpoint's epochs, so an epoch killed between the two is trained
      and measured again.
    - `epochs.json`: the per-epoch rows (`EpochMonitor(rows_path=...)`).
    - the CO callbacks' state files (`state_dir`), which they trim to the
      checkpoint's epochs themselves when they resume.
    - `evaluation_<name>.json`: each finished final evaluation with the
      options it ran with; other options run it again. While one runs, its
      progress after every attack stage (`evaluation_backup`), from which a
      killed evaluation continues.
    - `processes.json`: each process that worked on the run (the epochs
      finished when it started, its date and machine).

    Training batches depend only on the seed and the epoch, and every
    measurement is seeded, so a run resumed on the same machine and
    software writes the record the uninterrupted run writes, timings aside
    (on another machine the epochs after the resume follow that machine's
    arithmetic; `processes` names each machine). The folder belongs to one
    run (`identity`: what its training depends on, software versions
    included); a folder of another identity, or one with files but no
    identity, is refused with a `UsageError` naming the difference, never
    removed: it may hold hours of training. A folder holding only the
    temporary files of a write that a kill interrupted counts as fresh.
    Callers hold `lock(directory)` while they use the folder, so that two
    processes never work on one run.

    Args:
        directory: the run's folder (created if missing).
        identity: a JSON-serialisable dict describing what the run's
            training depends on.
        prog: the program's name, for messages. Defaults to `"co_study"`.

    Raises:
        UsageError: for a folder of another run.

    Examples:

        >>> import os, tempfile
        >>> from zerograd_tf.benchmarking import partial_run
        >>> folder = os.path.join(tempfile.mkdtemp(), "run")
        >>> with partial_run.lock(folder):
        ...     run = partial_run.PartialRun(folder, {"seed": 0})
        ...     run.evaluation("final", {"steps": 50}, lambda: {"robust_accuracy": 0.5})
        {'robust_accuracy': 0.5}
        >>> with partial_run.lock(folder):  # a later process: kept
        ...     again = partial_run.PartialRun(folder, {"seed": 0})
        ...     again.evaluation("final", {"steps": 50}, lambda: 1 / 0)
        ...     again.finish()
        {'robust_accuracy': 0.5}
        >>> os.path.exists(folder)
        False
    """

    def __init__(self, directory, identity, prog="co_study"):
        self.directory = directory
        self.identity = json.loads(json.dumps(identity))
        self._check_identity(prog)
        self.checkpoint = EpochCheckpoint(self._path("checkpoint"))

    def _check_identity(self, prog):
        saved = self._read(_IDENTITY)
        if saved is None and unfinished(self.directory):
            raise UsageError(f"{self.directory} holds an unfinished run without {_IDENTITY}; "
                             "remove the folder to train the run afresh")
        if saved is not None and saved != self.identity:
            raise UsageError(
                f"{self.directory} holds an unfinished run of another configuration "
                f"(differs in: {', '.join(_differences(saved, self.identity))}); run {prog} "
                "as that run was, or remove the folder to train the run afresh")
        if saved is None:
            remove(self.directory)  # at most the temporaries of an interrupted write
            io_utils.write_json_atomic(self._path(_IDENTITY), self.identity)

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

    def restore(self, model):
        """Loads the newest checkpoint into `model` (built and compiled) and
        notes this process.

        Returns:
            `(epochs, rows)`: the number of finished epochs (0 for a fresh
            run) and their saved per-epoch rows.

        Raises:
            UsageError: when every checkpoint is damaged, or the rows of a
                checkpointed epoch are missing.
        """
        try:
            epochs = self.checkpoint.restore(model)
        except ValueError as error:
            raise UsageError(f"{error}; remove {self.directory} to train the run "
                             "afresh") from None
        rows = [row for row in self._read(_EPOCHS, []) if row["epoch"] <= epochs]
        if [row["epoch"] for row in rows] != list(range(1, epochs + 1)):
            raise UsageError(f"{self.rows_path} lacks rows of the {epochs} checkpointed "
                             f"epochs; remove {self.directory} to train the run afresh")
        process = {"from_epoch": epochs, "date": datetime.date.today().isoformat(),
                   "machine": machine_record()}
        io_utils.write_json_atomic(self._path(_PROCESSES), self.processes + [process])
        return epochs, rows

    @property
    def processes(self):
        """Each process that restored this run so far (`restore`), oldest first."""
        return self._read(_PROCESSES, [])

    def evaluation(self, name, options, compute):
        """The result of the evaluation `name` with `options`: the saved one
        when it ran with the same options, else `compute()`'s, saved.

        Args:
            name: the evaluation's name (a file name part).
            options: JSON-serialisable options it runs with.
            compute: `() -> report`, a JSON-serialisable dict.

        Returns:
            The report, as JSON gives it back.
        """
        path = self._path(f"evaluation_{name}.json")
        options = json.loads(json.dumps(options))
        saved = self._read(os.path.basename(path))
        if saved is not None and saved["options"] == options:
            return saved["result"]
        result = json.loads(json.dumps(compute()))
        io_utils.write_json_atomic(path, {"options": options, "result": result})
        return result

    def evaluation_backup(self, name, options):
        """The progress file of the evaluation `name` with `options` while it
        runs (`evaluate_robustness`'s `backup_path`): one per set of options,
        so a run resumed with other options starts that evaluation afresh."""
        return self._path(f"evaluation_{name}.{io_utils.options_name(options)}.progress.json")

    def finish(self):
        """Removes the folder once the run's record is written (renamed away
        first, so a kill during the removal never leaves part of it under
        the run's name)."""
        remove(self.directory)


def lock(directory, prog="co_study"):
    """The lock of a run's folder: a `RunLock` on `<directory>.lock`.

    Hold it from before a program decides what to do with a run (finished,
    taken over, resumed) until it is done with it, so that two processes
    never work on one run; a second holder gets a `UsageError`.

    Args:
        directory: the run's folder.
        prog: the program's name, for the message. Defaults to
            `"co_study"`.

    Returns:
        The held `RunLock` (a context manager; `release()` unlocks).
    """
    return RunLock(f"{directory.rstrip(os.sep)}.lock", "--results", prog, what=directory)


def unfinished(directory):
    """Whether `directory` holds an unfinished run's work: anything but the
    temporary files of writes that a kill interrupted."""
    if not os.path.isdir(directory):
        return False
    return any(not io_utils.is_temporary(name) for name in os.listdir(directory))


def remove(directory):
    """Removes a run's folder: renamed away first, then deleted, with what
    earlier removals that a kill interrupted left beside it.

    Examples:
        >>> import os, tempfile
        >>> from zerograd_tf.benchmarking.partial_run import remove
        >>> parent = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(parent, "run", "checkpoint"))
        >>> remove(os.path.join(parent, "run")); os.listdir(parent)
        []
    """
    parent = os.path.dirname(os.path.abspath(directory))
    if os.path.isdir(directory):
        doomed = tempfile.mkdtemp(prefix=_REMOVING, dir=parent)
        os.replace(directory, os.path.join(doomed, "run"))
    if os.path.isdir(parent):
        for name in os.listdir(parent):
            if name.startswith(_REMOVING):
                shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _differences(saved, wanted, prefix=""):
    """The keys (dotted) at which two identity dicts differ."""
    keys = []
    for key in sorted(set(saved) | set(wanted)):
        a, b = saved.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys
