"""The Keras backend check that `import zerograd_tf` makes.

The package's models use `tf.GradientTape` and `tf.function`, so they need
Keras' TensorFlow backend. Importing the library changes nothing in the
process: it sets no environment variable and leaves standard error alone
(CUDA and oneDNN start-up messages show as TensorFlow prints them). Under
another backend (`KERAS_BACKEND=jax`), `import zerograd_tf` raises an
`ImportError` that says so, instead of failing later inside a training step.

The programs (`zerograd-train`, `zerograd-eval`, `zerograd-tune`) choose the
TensorFlow backend and quiet TensorFlow's start-up log for their own process,
in `main`, before TensorFlow is imported (see `zerograd_tf._programs`).
"""

import keras


def check_backend(backend=None):
    """Raises an `ImportError` unless Keras runs on TensorFlow.

    Args:
        backend: the backend name to check. Defaults to `None`, Keras' own
            (`keras.config.backend()`).

    Raises:
        ImportError: naming the backend in use and how to choose TensorFlow.

    Examples:
        >>> check_backend("tensorflow")
        >>> check_backend("jax")
        Traceback (most recent call last):
        ...
        ImportError: zerograd_tf needs Keras' TensorFlow backend, but Keras runs on 'jax'. Set KERAS_BACKEND=tensorflow before Keras is first imported.
    """
    backend = keras.config.backend() if backend is None else backend
    if backend != "tensorflow":
        raise ImportError(
            f"zerograd_tf needs Keras' TensorFlow backend, but Keras runs on {backend!r}. "
            "Set KERAS_BACKEND=tensorflow before Keras is first imported.")


check_backend()
