"""KerasTuner search over ZeroGrad's quantile and step size (`zerograd-tune`).

`ZeroGradHyperModel` is imported on first access (PEP 562): KerasTuner and
TensorFlow are not imported until they are needed, so that `zerograd-tune
--help` (which runs inside this package) answers without them.
"""

import importlib as _importlib

from zerograd_tf import _programs

__all__ = ["ZeroGradHyperModel", "search"]

_OWNERS = {"ZeroGradHyperModel": "zerograd_tf.tuning.hypermodel",
           "search": "zerograd_tf.tuning.search"}

if not _programs.started_as_program():
    # `search` is the function, not its module of the same name (which an
    # import of `zerograd_tf.tuning.search` leaves here otherwise). The
    # program itself skips it: `python -m zerograd_tf.tuning.search` would
    # warn that the package imported the module before running it.
    from zerograd_tf.tuning.search import search


def __getattr__(name):
    """Imports `ZeroGradHyperModel` (or `search`, or `hypermodel`) on first access."""
    if name == "hypermodel":
        return _importlib.import_module("zerograd_tf.tuning.hypermodel")
    if name not in _OWNERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(_OWNERS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
