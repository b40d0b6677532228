"""Small file helpers shared by the callbacks, programs and benchmarks.

Writes are atomic (a temporary file, then `os.replace`), so a process killed
at any instant leaves either the old file or the new one, never half of one.
"""

import contextlib
import hashlib
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


def temporary_path(path):
    """The temporary name `replacing` writes `path` under: same folder, same
    extension (writers such as `keras.Model.save` insist on `.keras`).

    Examples:
        >>> temporary_path("run/model.keras")
        'run/model.tmp.keras'
        >>> temporary_path("history.json")
        'history.tmp.json'
    """
    root, extension = os.path.splitext(path)
    return f"{root}.tmp{extension}"


def is_temporary(path):
    """Whether `path` is a `temporary_path` name (what a `replacing` write
    that a kill interrupted leaves behind).

    Examples:
        >>> is_temporary("run/model.tmp.keras"), is_temporary("run/model.keras")
        (True, False)
    """
    return os.path.splitext(path)[0].endswith(".tmp")


@contextlib.contextmanager
def replacing(path):
    """Gives a temporary path to write; puts it in `path`'s place at the end.

    Whatever is written there replaces `path` with `os.replace` once the
    `with` block finishes, so a process killed at any instant leaves the old
    `path` (or none) or the complete new one, never half of one. When the
    block raises, the temporary file is removed and `path` is left alone.
    The folder is made when missing.

    Args:
        path: the file to write.

    Yields:
        The temporary path (`temporary_path(path)`), in `path`'s folder.

    Examples:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
        >>> with replacing(path) as temporary:
        ...     with open(temporary, "w") as f:
        ...         _ = f.write("complete")
        >>> open(path).read()
        'complete'
        >>> try:
        ...     with replacing(path) as temporary:
        ...         with open(temporary, "w") as f:
        ...             _ = f.write("half of")
        ...         raise KeyboardInterrupt
        ... except KeyboardInterrupt:
        ...     pass
        >>> open(path).read(), os.listdir(os.path.dirname(path))
        ('complete', ['notes.txt'])
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = temporary_path(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_json_atomic(path, payload):
    """Writes JSON to `path` through a temporary file and `os.replace`."""
    with replacing(path) as temporary:
        with open(temporary, "w") as f:
            json.dump(payload, f, indent=1)


def options_name(options):
    """A short, stable name for a JSON-serializable set of options (for
    example the file name of an evaluation's progress under these options).

    Examples:
        >>> options_name({"b": 1, "a": 2}) == options_name({"a": 2, "b": 1})
        True
        >>> options_name({})  # the names of files already written never change
        '44136fa355b3'
    """
    text = json.dumps(options, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()[:12]


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
