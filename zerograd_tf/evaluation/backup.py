"""The saved progress of an evaluation, from which a killed one continues.

An evaluation with the full AutoAttack budget takes hours on a CPU for a
large network. With `evaluate_robustness(..., backup_path=...)` the engine
writes, after every stage of every attack (each PGD restart, each APGD-T
target class, each whole attack otherwise), which examples are still
robust, the highest loss found for each, and the finished attacks' report
entries. A later call with the same evaluation continues after the last
saved stage. Every call of a stage draws its random numbers from the
evaluation's seed, the attack's position, the stage and the batch, and the
batches of a stage are formed from the examples still robust, so the
continued evaluation breaks the same examples and finds the same losses as
an uninterrupted one; only the `seconds` differ (an attack's `seconds` add
up the time every call spent on it).

The file belongs to one evaluation: the attacks and their budgets, epsilon,
seed, batch size, XLA, replicas, and digests of the examples and of the
model's weights. A file of another evaluation is refused, never
overwritten. It is written atomically (a kill leaves the previous stage's
file) and removed when the evaluation finishes.
"""

import dataclasses
import hashlib
import json
import os

import numpy as np

from zerograd_tf import io_utils


def digest(arrays):
    """A short digest of arrays' dtypes, shapes and contents.

    Examples:
        >>> import numpy as np
        >>> digest([np.zeros(3)]) == digest([np.zeros(3)]) != digest([np.ones(3)])
        True
    """
    hasher = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        hasher.update(f"{array.dtype}{array.shape}".encode())
        hasher.update(array.tobytes())
    return hasher.hexdigest()[:16]


def evaluation_key(context, x, y, attack_specs, *, batch_size, seed, replicas):
    """What an evaluation's result depends on, as a JSON-ready dict."""
    return json.loads(json.dumps({
        "attacks": [spec.name for spec in attack_specs],
        "settings": dataclasses.asdict(context.settings),
        "epsilon": float(context.epsilon),
        "seed": int(seed),
        "batch_size": int(batch_size),
        "jit_compile": bool(context.jit_compile),
        "replicas": int(replicas),
        "examples": digest([x, y]),
        "model": digest([np.asarray(w) for w in context.model.weights]),
    }))


class BackupError(ValueError):
    """A progress file that cannot be used; `detail` says why, without the
    argument's name (programs name their own option)."""

    def __init__(self, detail):
        super().__init__(f"`backup_path` {detail}")
        self.detail = detail


class EvaluationBackup:
    """The progress file of one evaluation (see the module docstring).

    Args:
        path: the JSON file.
        key: `evaluation_key(...)` of the evaluation.
    """

    def __init__(self, path, key):
        self.path = os.fspath(path)
        self.key = key

    def load(self):
        """The saved progress, or `None` when there is none.

        Returns:
            `None`, or a dict with `member` (the attack to run next),
            `stage` (its next stage), `robust` (indices of the examples
            still robust), `worst_loss` (one float per example), `entries`
            (the finished attacks' report entries), `attacked` and
            `seconds` (the examples the current attack started on and the
            time spent on it so far).

        Raises:
            BackupError: (a `ValueError`) when the file cannot be read or
                belongs to another evaluation.
        """
        if not os.path.exists(self.path):
            return None
        try:
            with open(self.path) as f:
                saved = json.load(f)
            saved_key = saved["key"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise BackupError(f"{io_utils.damaged(self.path, error)}; remove it to evaluate "
                              "afresh") from None
        if saved_key != self.key:
            differing = sorted(k for k in set(saved_key) | set(self.key)
                               if saved_key.get(k) != self.key.get(k))
            raise BackupError(
                f"{self.path} holds the progress of another evaluation (differs in: "
                f"{', '.join(differing)}); remove it or choose another path")
        return saved

    def save(self, *, member, stage, robust, worst_loss, entries, attacked, seconds):
        """Writes the progress after a stage (atomically)."""
        io_utils.write_json_atomic(self.path, {
            "key": self.key, "member": int(member), "stage": int(stage),
            "robust": [int(i) for i in np.flatnonzero(robust)],
            "worst_loss": [float(v) for v in worst_loss],
            "entries": entries, "attacked": int(attacked), "seconds": float(seconds)})

    def remove(self):
        """Removes the file (the evaluation has finished)."""
        if os.path.exists(self.path):
            os.remove(self.path)
