import keras
import numpy as np
import pytest
import tensorflow as tf

import zerograd_tf as zg

EPS = 0.05


def linear_classifier(activation=None, seed=0, d=12):
    rng = np.random.default_rng(seed)
    inputs = keras.Input((d,))
    layer = keras.layers.Dense(2, activation=activation)
    model = keras.Model(inputs, layer(inputs))
    w = rng.standard_normal((d, 2)).astype(np.float32)
    # Centre the decision boundary on the data (x around 0.5).
    layer.set_weights([w, -0.5 * w.sum(axis=0)])
    return model, w


def data(n=200, d=12, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.2, 0.8, (n, d)).astype(np.float32)
    return x, rng.integers(0, 2, n)


def test_robust_accuracy_matches_the_analytic_value_for_a_linear_model():
    model, w = linear_classifier()
    x, y = data()
    eps = 0.05
    direction = (w[:, 0] - w[:, 1])[None, :] * np.where(y == 0, 1, -1)[:, None]
    margin = ((x - 0.5) * direction).sum(axis=1)
    worst_margin = margin - eps * np.abs(direction).sum(axis=1)
    report = zg.evaluate_robustness(model, (x, y), eps, steps=10, restarts=2)
    assert report["num_examples"] == 200
    assert report["num_clean_correct"] == int((margin > 0).sum())
    assert report["num_robust_correct"] == int((worst_margin > 0).sum())
    assert 0 < report["robust_accuracy"] < report["clean_accuracy"] < 1
    assert report["robust_loss"] > report["clean_loss"]
    assert report["alpha"] == pytest.approx(eps / 4)


def test_softmax_and_logit_outputs_give_the_same_report():
    logits_model, _ = linear_classifier()
    softmax_model, _ = linear_classifier(activation="softmax")
    x, y = data()
    a = zg.evaluate_robustness(logits_model, (x, y), EPS, steps=5, restarts=1)
    b = zg.evaluate_robustness(softmax_model, (x, y), EPS, steps=5, restarts=1)
    assert a["num_robust_correct"] == b["num_robust_correct"]
    np.testing.assert_allclose(a["robust_loss"], b["robust_loss"], rtol=1e-4)


@pytest.mark.slow
def test_dataset_and_arrays_agree_and_are_reproducible():
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2)])
    x, y = data(n=100)
    # The dataset's own batching does not matter: the engine regroups the
    # examples into batches of `batch_size`.
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(10)
    kw = dict(epsilon=EPS, steps=3, restarts=2, seed=5, batch_size=32)
    a = zg.evaluate_robustness(model, (x, y), **kw)
    b = zg.evaluate_robustness(model, dataset, **kw)
    c = zg.evaluate_robustness(model, dataset, jit_compile=True, **kw)
    timing = {"seconds", "attacks"}
    assert {k: v for k, v in a.items() if k not in timing} == \
        {k: v for k, v in b.items() if k not in timing}
    # XLA draws other random numbers than graph mode, so only the clean pass
    # must agree exactly.
    assert a["num_clean_correct"] == c["num_clean_correct"]
    assert a["clean_loss"] == pytest.approx(c["clean_loss"], rel=1e-5)
    assert c["num_robust_correct"] <= c["num_clean_correct"]
    assert [e["name"] for e in a["attacks"]] == ["pgd"]
    assert a["attack"] == "pgd" and a["seconds"] > 0


def test_errors():
    model, _ = linear_classifier()
    x, y = data(n=10)
    with pytest.raises(ValueError, match=r"`steps` must be an integer >= 1"):
        zg.evaluate_robustness(model, (x, y), EPS, steps=0)
    with pytest.raises(ValueError, match=r"`restarts` must be an integer >= 1"):
        zg.evaluate_robustness(model, (x, y), EPS, restarts=0)
    with pytest.raises(ValueError, match=r"`epsilon` must be in \(0, 1\]"):
        zg.evaluate_robustness(model, (x, y), 0)
    with pytest.raises(TypeError, match="floating point"):
        zg.evaluate_robustness(model, ((x * 255).astype(np.uint8), y), EPS)
    with pytest.raises(ValueError, match="differ in length"):
        zg.evaluate_robustness(model, (x, y[:5]), EPS)
    with pytest.raises(TypeError, match="`data` must be"):
        zg.evaluate_robustness(model, x, EPS)
