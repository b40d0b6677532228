"""Small JSON file helpers shared by the callbacks, programs and benchmarks.

Writes are atomic (a temporary file, then `os.replace`), so a process killed
at any instant leaves either the old file or the new one, never half of one.
"""

import json
import math
import os


def to_builtin(value):
    """A metric value as a JSON number: a float, `None` for NaN/inf, or text."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return value if math.isfinite(value) else None


def write_json_atomic(path, payload):
    """Writes JSON to `path` through a temporary file and `os.replace`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(payload, f, indent=1)
    os.replace(temporary, path)


def damaged(path, error):
    """The one-line description of a file that cannot be read.

    >>> damaged("run/history.json", ValueError("Expecting value: line 1\\nmore"))
    'run/history.json is damaged (ValueError: Expecting value: line 1)'
    """
    cause = str(error).strip().splitlines()[0][:120] if str(error).strip() else ""
    return f"{path} is damaged ({type(error).__name__}{': ' + cause if cause else ''})"


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
