"""Keras callbacks for adversarial training runs.

`HistoryWriter` and `EpsilonWarmup` live here; the catastrophic-overfitting
monitor, the diagnostics and the epoch checkpoint have modules of their own
(`co_monitor`, `diagnostics`, `checkpoints`) and are re-exported here.
"""

import json
import math
import os

import keras

from zerograd_tf import validation


def _to_builtin(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return value if math.isfinite(value) else None


@keras.saving.register_keras_serializable(package="zerograd_tf")
class HistoryWriter(keras.callbacks.Callback):
    """Writes the epoch logs to a JSON file after every epoch, resumably.

    The file holds `{"epoch": [...], "<metric>": [...]}` like
    `History.history`. A resumed run (whose `fit` starts at a later
    `initial_epoch`) keeps the entries of earlier epochs and replaces those
    of epochs run again, so the file always has one entry per finished epoch.
    Writes are atomic (a temporary file, then `os.replace`).

    Args:
        path: the JSON file.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.epochs = {}

    def on_train_begin(self, logs=None):
        self.epochs = {}
        for record in load_history_records(self.path):
            self.epochs[record["epoch"]] = record

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": epoch + 1}
        record.update({k: _to_builtin(v) for k, v in (logs or {}).items()})
        optimizer = getattr(self.model, "optimizer", None)
        if "learning_rate" not in record and optimizer is not None:
            record["learning_rate"] = _to_builtin(
                keras.ops.convert_to_numpy(optimizer.learning_rate))
        self.epochs[epoch + 1] = record
        records = [self.epochs[e] for e in sorted(self.epochs) if e <= epoch + 1]
        write_json_atomic(self.path, records_to_history(records))

    def get_config(self):
        return {"path": self.path}


def write_json_atomic(path, payload):
    """Writes JSON to `path` through a temporary file and `os.replace`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(payload, f, indent=1)
    os.replace(temporary, path)


def records_to_history(records):
    """`[{"epoch": 1, "loss": ...}, ...]` -> `{"epoch": [1, ...], "loss": [...]}`."""
    keys = []
    for record in records:
        keys.extend(k for k in record if k not in keys)
    return {k: [r.get(k) for r in records] for k in keys}


def load_history_records(path):
    """The per-epoch records of a history JSON file (empty if absent)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        history = json.load(f)
    epochs = history.get("epoch", [])
    return [{k: history[k][i] for k in history if i < len(history[k])}
            for i in range(len(epochs))]


class EpsilonWarmup(keras.callbacks.Callback):
    """Ramps the model's epsilon linearly from 0 to its target.

    Multi-step PGD training at a large epsilon often fails to learn from the
    start; ramping epsilon over the first epochs fixes that. The ramp is a
    function of the optimizer's step counter, so it is exact after resuming.

    Args:
        epsilon: the target epsilon in (0, 1].
        warmup_steps: steps over which epsilon grows (>= 1).
    """

    def __init__(self, epsilon, warmup_steps):
        super().__init__()
        self.epsilon = validation.check_epsilon(epsilon)
        self.warmup_steps = validation.check_int(warmup_steps, "warmup_steps", 1)

    def on_train_batch_begin(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        fraction = min(1.0, (step + 1) / self.warmup_steps)
        self.model.epsilon = self.epsilon * fraction


from zerograd_tf.checkpoints import EpochCheckpoint  # noqa: E402,F401
from zerograd_tf.co_monitor import CatastrophicOverfittingMonitor  # noqa: E402,F401
from zerograd_tf.diagnostics import AdversarialDiagnostics  # noqa: E402,F401
