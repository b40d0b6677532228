"""The saved progress of an evaluation, from which a killed one continues.

An evaluation with the full AutoAttack budget takes hours on a CPU for a
large network. With `evaluate_robustness(..., backup_path=...)` the engine
writes, after every stage of every attack (each APGD restart and APGD-T
target class, each whole attack otherwise: PGD's restarts run within one
stage, Square is one), which examples are still robust, the highest loss
found for each, and the finished attacks' report entries. A later call with
the same evaluation continues after the last saved stage. Every call of a
stage draws its random numbers from the evaluation's seed, the attack's
position, the stage and the batch, and the batches of a stage are formed
from the examples still robust, so the continued evaluation breaks the same
examples and finds the same losses as an uninterrupted one; only the
`seconds` differ (the time of a stage a kill interrupted is not counted).

The file belongs to one evaluation (`evaluation_key`): the attacks and
their budgets, epsilon, seed, batch size, XLA, replicas, the precision the
model is attacked in, the loss, and digests of the examples, of the
model's layers and of its weights. A file of another evaluation is
refused, never overwritten (`run_owned` replaces it, for the programs that
own their files). It is written atomically (a kill leaves the previous
stage's file) and removed when the evaluation finishes.
"""

import dataclasses
import hashlib
import json
import logging
import os

import keras
import numpy as np

from zerograd_tf import io_utils
from zerograd_tf import precision as precision_lib

_LOG = logging.getLogger("zerograd_tf")


def digest(arrays):
    """A short digest of arrays' dtypes, shapes and contents.

    Args:
        arrays: an iterable of array-likes.

    Returns:
        16 hexadecimal characters.

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


def describe_loss(loss):
    """A loss as the backup's key holds it: `"default"` for `None`, its
    Keras serialization, or its module and name.

    Examples:
        >>> import keras
        >>> describe_loss(None)
        'default'
        >>> describe_loss(keras.losses.sparse_categorical_crossentropy)
        'keras.src.losses.losses.sparse_categorical_crossentropy'
    """
    if loss is None:
        return "default"
    if isinstance(loss, keras.losses.Loss):
        try:
            return json.dumps(keras.saving.serialize_keras_object(loss), sort_keys=True)
        except (TypeError, ValueError, NotImplementedError):
            pass
    return f"{getattr(loss, '__module__', '')}.{getattr(loss, '__qualname__', type(loss).__name__)}"


def _layers(model):
    """What the model computes with, besides its weights: each layer's class
    and activation, nested models opened."""
    described = []
    for layer in precision_lib.leaf_layers(model):
        activation = getattr(layer, "activation", None)
        described.append([type(layer).__name__,
                          getattr(activation, "__name__", type(activation).__name__)])
    return described


def evaluation_key(context, x, y, attack_specs, *, batch_size, seed, replicas, loss):
    """What an evaluation's result depends on, as a JSON-ready dict.

    Args:
        context: the engine's `specs.Context` (the attacked model, epsilon,
            budgets, XLA).
        x: the examples' inputs.
        y: their labels.
        attack_specs: the attacks, in order.
        batch_size: the most examples per call.
        seed: the evaluation's seed.
        replicas: the replicas a batch is spread over.
        loss: the `loss` argument of `evaluate_robustness`.

    Returns:
        A dict of JSON values.
    """
    model = context.model
    return json.loads(json.dumps({
        "attacks": [spec.name for spec in attack_specs],
        "settings": dataclasses.asdict(context.settings),
        "epsilon": float(context.epsilon),
        "seed": int(seed),
        "batch_size": int(batch_size),
        "jit_compile": bool(context.jit_compile),
        "replicas": int(replicas),
        "precision": precision_lib.policy_of(getattr(model, "classifier", model)),
        "loss": describe_loss(loss),
        "examples": digest([x, y]),
        "layers": digest([np.frombuffer(json.dumps(_layers(model)).encode(), np.uint8)]),
        "weights": digest([np.asarray(w) for w in model.weights]),
    }))


class BackupError(ValueError):
    """A progress file that cannot be used.

    Args:
        problem: what is wrong with it, naming the file (not the argument:
            a program names its own option).
    """

    def __init__(self, problem):
        super().__init__(f"`backup_path` {problem}; remove it or choose another path")
        self.problem = problem


class EvaluationBackup:
    """The progress file of one evaluation (see the module docstring).

    Args:
        path: the JSON file.
        key: `evaluation_key(...)` of the evaluation.
    """

    def __init__(self, path, key):
        self.path = os.fspath(path)
        self.key = key

    def load(self, count, attacks):
        """The saved progress, or `None` when there is none.

        Args:
            count: the number of examples evaluated.
            attacks: the number of attacks run.

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
            if not isinstance(saved_key, dict):
                raise TypeError("its key is not a JSON object")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise BackupError(io_utils.damaged(self.path, error)) from None
        if saved_key != self.key:
            differing = sorted(k for k in set(saved_key) | set(self.key)
                               if saved_key.get(k) != self.key.get(k))
            raise BackupError(f"{self.path} holds the progress of another evaluation "
                              f"(differs in: {', '.join(differing)})")
        problem = _problem(saved, count, attacks)
        if problem:
            raise BackupError(io_utils.damaged(self.path, ValueError(problem)))
        return saved

    def save(self, *, member, stage, robust, worst_loss, entries, attacked, seconds):
        """Writes the progress after a stage (atomically); the arguments as
        `load` returns them (`robust` as a boolean mask)."""
        io_utils.write_json_atomic(self.path, {
            "key": self.key, "member": int(member), "stage": int(stage),
            "robust": [int(i) for i in np.flatnonzero(robust)],
            "worst_loss": [float(v) for v in worst_loss],
            "entries": entries, "attacked": int(attacked), "seconds": float(seconds)})

    def remove(self):
        """Removes the file (the evaluation has finished)."""
        if os.path.exists(self.path):
            os.remove(self.path)


def _problem(saved, count, attacks):
    """What makes a saved progress unusable, or `None`."""
    def is_int(value, low, high):
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    robust, worst, entries = saved.get("robust"), saved.get("worst_loss"), saved.get("entries")
    if not is_int(saved.get("member"), 0, attacks) or not is_int(saved.get("stage"), 0, 10**9):
        return "no valid attack and stage to continue from"
    if not isinstance(entries, list) or len(entries) != saved["member"]:
        return "its finished attacks do not match its position"
    if not (isinstance(robust, list) and all(is_int(i, 0, count - 1) for i in robust)
            and len(set(robust)) == len(robust)):
        return f"its robust examples are not indices of the {count} examples"
    if not (isinstance(worst, list) and len(worst) == count
            and all(isinstance(v, (int, float)) for v in worst)):
        return f"its losses are not one number per example ({count})"
    if not is_int(saved.get("attacked"), 0, count) or not isinstance(
            saved.get("seconds"), (int, float)):
        return "its current attack's count or time is missing"
    return None


def run_owned(evaluate, path):
    """`evaluate(path)` with a progress file the calling program owns: one
    that cannot be used here (another evaluation's, another machine's, a
    damaged one) is removed with a logged warning, and the evaluation
    starts afresh.

    Args:
        evaluate: `(backup_path) -> report`.
        path: the program's progress file.

    Returns:
        `evaluate`'s report.
    """
    try:
        return evaluate(path)
    except BackupError as error:
        _LOG.warning("%s: evaluating afresh", error.problem)
        os.remove(path)
        return evaluate(path)
