"""Process-wide defaults applied before TensorFlow is imported.

Importing :mod:`zerograd_tf` selects the TensorFlow backend for Keras (the
package's models use ``tf.GradientTape``) and quiets TensorFlow's C++ start-up
log lines. Both use ``os.environ.setdefault``, so a value the user already set
is kept.

TensorFlow's shared libraries log a few INFO lines (oneDNN, CUDA probing)
before absl logging is initialised, and those ignore ``TF_CPP_MIN_LOG_LEVEL``
(an abseil limitation). Unless the user asked for them
(``TF_CPP_MIN_LOG_LEVEL=0``), standard error is muted at the file-descriptor
level while TensorFlow is first imported, and only then.
"""

import contextlib
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if os.environ["KERAS_BACKEND"] != "tensorflow":
    raise ImportError(
        "zerograd_tf needs the TensorFlow backend of Keras, but KERAS_BACKEND="
        f"{os.environ['KERAS_BACKEND']!r}. Set KERAS_BACKEND=tensorflow before "
        "importing keras."
    )


@contextlib.contextmanager
def _muted_stderr():
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (notebooks)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


if "tensorflow" not in sys.modules and os.environ["TF_CPP_MIN_LOG_LEVEL"] != "0":
    # The import and the device probe (which logs its CUDA attempts), but no
    # op: running one would initialise TensorFlow's context, after which
    # MultiWorkerMirroredStrategy can no longer be made.
    with _muted_stderr():
        import tensorflow  # noqa: F401

        tensorflow.config.list_physical_devices()
