"""The evaluation engine: pinned results, batch sizes, the robust loss, the
gradient-masking rule and `epsilon_sweep`'s arguments."""

import keras
import numpy as np
import pytest

import zerograd_tf as zg

EPS = 0.08


def pinned_problem():
    """A fixed 2-layer tanh network on 4x4 images (4 classes) and 60 examples
    labelled by the network on noisy inputs (53 classified correctly)."""
    rng = np.random.default_rng(7)
    inputs = keras.Input((4, 4, 1))
    hidden = keras.layers.Dense(12, activation="tanh")
    output = keras.layers.Dense(4)
    model = keras.Model(inputs, output(hidden(keras.layers.Flatten()(inputs))))
    hidden.set_weights([rng.normal(0, 1.0, (16, 12)).astype("float32"),
                        rng.normal(0, 0.3, 12).astype("float32")])
    output.set_weights([rng.normal(0, 1.0, (12, 4)).astype("float32"),
                        np.zeros(4, "float32")])
    x = rng.uniform(0, 1, (60, 4, 4, 1)).astype("float32")
    noisy = np.clip(x + rng.normal(0, 0.15, x.shape), 0, 1).astype("float32")
    return model, x, model(noisy).numpy().argmax(1)


PINNED_SETTINGS = dict(steps=5, restarts=2, apgd_steps=12, apgd_targets=3, square_queries=60,
                       batch_size=16, seed=3)
# (attack, robust examples, examples each attack broke): the numbers of the
# two engines this one replaced (commit 686e5c2), for the same seeds.
PINNED = [
    ("pgd", 32, [21]),
    ("apgd-ce", 29, [24]),
    ("apgd-t", 29, [24]),
    ("square", 33, [20]),
    ("autoattack", 29, [24, 0, 0]),
    (["pgd", "autoattack"], 29, [19, 5, 0, 0]),
]


@pytest.mark.slow
@pytest.mark.parametrize("attack, robust, broken", PINNED, ids=lambda v: str(v))
def test_seeded_results_are_pinned(attack, robust, broken):
    model, x, y = pinned_problem()
    report = zg.evaluate_robustness(model, (x, y), EPS, attack=attack, **PINNED_SETTINGS)
    assert report["num_clean_correct"] == 53
    assert report["num_robust_correct"] == robust
    assert [entry["num_broken"] for entry in report["attacks"]] == broken
