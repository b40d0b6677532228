"""Process-wide defaults applied before TensorFlow is imported.

Importing :mod:`zerograd_tf` selects the TensorFlow backend for Keras (the
package's models use ``tf.GradientTape``) and quiets TensorFlow's C++ start-up
log lines. Both use ``os.environ.setdefault``, so a value the user already set
is kept.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if os.environ["KERAS_BACKEND"] != "tensorflow":
    raise ImportError(
        "zerograd_tf needs the TensorFlow backend of Keras, but KERAS_BACKEND="
        f"{os.environ['KERAS_BACKEND']!r}. Set KERAS_BACKEND=tensorflow before "
        "importing keras."
    )
