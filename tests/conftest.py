import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")


def small_cnn(input_shape=(8, 8, 1), classes=3, batch_norm=False):
    """A tiny conv net producing logits (optionally with BatchNorm)."""
    inputs = keras.Input(input_shape)
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    if batch_norm:
        h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(classes)(h)
    return inputs, outputs


def robustness_problem(n=1024, seed=0):
    """Two classes in 4x4x1 images: one robust, 15 non-robust features.

    Pixel 0 equals the label for 90 % of the examples (a feature that an
    epsilon = 0.1 attack cannot flip); the other 15 pixels are
    0.5 +- 0.05 by label (perfectly predictive, but flipped by the attack).
    A clean-trained model uses the non-robust pixels and has ~0 robust
    accuracy; adversarial training must use pixel 0.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.empty((n, 16), np.float32)
    sign = 2 * y - 1
    x[:, 1:] = 0.5 + 0.05 * sign[:, None] + rng.normal(0, 0.01, (n, 15))
    flip = rng.random(n) < 0.1
    x[:, 0] = np.where(flip, 1 - y, y)
    return np.clip(x, 0, 1).reshape(n, 4, 4, 1), y.astype(np.int32)


def make_npz(path, n_train=160, n_test=48, shape=(12, 12, 1), classes=3, seed=0, **override):
    """Writes a small random uint8 image .npz (keys as zerograd-train expects).

    Keyword overrides replace arrays; an override of None removes the key.
    """
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "y_train": rng.integers(0, classes, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "y_test": rng.integers(0, classes, n_test).astype(np.uint8),
    }
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return str(path)


def mlp(input_shape=(4, 4, 1), classes=2, hidden=16):
    inputs = keras.Input(input_shape)
    h = keras.layers.Flatten()(inputs)
    h = keras.layers.Dense(hidden, activation="relu")(h)
    outputs = keras.layers.Dense(classes)(h)
    return inputs, outputs


def compile_kwargs(jit_compile=False, lr=1e-2):
    return dict(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
