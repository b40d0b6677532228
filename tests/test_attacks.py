"""APGD, APGD-T, Square and their composition (`evaluate_robustness(attack=...)`)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zerograd_tf as zg
from zerograd_tf import evaluation, objectives
from zerograd_tf.evaluation import specs
from zerograd_tf.attacks import apgd, losses, square
from zerograd_tf.attacks.apgd_attack import checkpoint_schedule
from zerograd_tf.attacks.square_attack import square_fraction

EPS = 0.1
SHAPE = (4, 4, 1)


def linear_model(weights, bias, activation=None):
    inputs = keras.Input(SHAPE)
    layer = keras.layers.Dense(weights.shape[1], activation=activation)
    model = keras.Model(inputs, layer(keras.layers.Flatten()(inputs)))
    layer.set_weights([weights.astype(np.float32), bias.astype(np.float32)])
    return model


def binary_like(seed=0):
    """Four classes of which the last two can never win: a binary problem
    whose worst case in the ball is known exactly."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((16, 4))
    w[:, 2:] = 0.0
    bias = np.array([-0.5 * w[:, 0].sum(), -0.5 * w[:, 1].sum(), -100.0, -100.0])
    x = rng.uniform(EPS, 1 - EPS, (200, *SHAPE)).astype(np.float32)
    y = rng.integers(0, 2, 200)
    return w, bias, x, y


def analytic(w, bias, x, y):
    """Per example: clean correctness, robustness and the worst-case delta."""
    flat = x.reshape(len(x), -1)
    direction = np.where((y == 0)[:, None], w[:, 0] - w[:, 1], w[:, 1] - w[:, 0])
    offset = np.where(y == 0, bias[0] - bias[1], bias[1] - bias[0])
    margin = (flat * direction).sum(1) + offset
    worst = margin - EPS * np.abs(direction).sum(1)
    return margin > 0, worst > 0, -EPS * np.sign(direction).reshape(x.shape)


def test_losses_equal_their_formulas():
    z = np.array([[2.0, 5.0, 1.0, -1.0, 3.0], [4.0, 0.5, 0.0, -2.0, 1.0]], np.float32)
    y = np.array([0, 0])
    dlr = losses.dlr_loss(y, z).numpy()
    # Example 0: misclassified (top 5); example 1: correct (second 1.0).
    np.testing.assert_allclose(dlr, [-(2 - 5) / (5 - 2), -(4 - 1) / (4 - 0.5)], rtol=1e-5)
    targeted = losses.targeted_dlr_loss(y, z, np.array([4, 1])).numpy()
    np.testing.assert_allclose(
        targeted, [-(2 - 3) / (5 - (2 + 1) / 2), -(4 - 0.5) / (4 - (0.5 + 0) / 2)], rtol=1e-5)
    np.testing.assert_allclose(losses.margin_loss(y, z).numpy(), [2 - 5, 4 - 1])
    # Logits and softmax outputs give the same DLR (a per-example shift).
    softmax = keras.activations.softmax(tf.constant(z))
    np.testing.assert_allclose(losses.dlr_loss(y, losses.as_logits(softmax)), dlr, rtol=1e-4)


def test_schedules_follow_the_references():
    assert checkpoint_schedule(100) == (22, 6, 3)
    assert checkpoint_schedule(10) == (2, 1, 1)
    assert float(square_fraction(0, 5000)) == 0.8
    assert float(square_fraction(10, 5000)) == 0.4   # it = 20 > 10
    assert float(square_fraction(5000 * 0.9, 5000)) == pytest.approx(0.8 / 512)
    assert float(square_fraction(4999, 5000)) == pytest.approx(0.8 / 512)
    assert float(square_fraction(tf.constant(6), 5000)) == 0.4  # the tensor the loop runs


@pytest.mark.slow
@pytest.mark.parametrize("member", ["apgd-ce", "apgd-dlr", "apgd-t", "square"])
def test_each_attack_reaches_the_analytic_worst_case_of_a_linear_model(member):
    w, bias, x, y = binary_like()
    model = linear_model(w, bias)
    clean, robust, _ = analytic(w, bias, x, y)
    assert 0 < robust.sum() < clean.sum()
    report = zg.evaluate_robustness(model, (x, y), EPS, attack=member, apgd_targets=1,
                                    square_queries=1000, batch_size=64)
    assert report["num_clean_correct"] == clean.sum()
    assert report["num_robust_correct"] == robust.sum()


def test_apgd_returns_the_vertex_epsilon_sign_w():
    w, bias, x, y = binary_like(seed=1)
    model = linear_model(w, bias)
    _, robust, worst_delta = analytic(w, bias, x, y)
    objective = objectives.model_objective(model, loss=lambda t, p: losses.cross_entropy_loss(t, p))
    delta = apgd(objective, x, y, EPS, steps=20, seed=3)[0].numpy()
    np.testing.assert_allclose(delta[robust], worst_delta[robust], atol=1e-6)


@pytest.mark.slow
def test_square_moves_robust_points_to_the_vertex():
    w, bias, x, y = binary_like(seed=2)
    model = linear_model(w, bias)
    _, robust, worst_delta = analytic(w, bias, x, y)
    objective = objectives.model_objective(model, loss=lambda t, p: losses.margin_loss(t, p))
    delta, info = square(objective, x, y, EPS, queries=2000, seed=0)
    np.testing.assert_allclose(delta.numpy()[robust], worst_delta[robust], atol=1e-6)
    assert not info["fooled"].numpy()[robust].any()
    assert (info["queries"].numpy()[robust] == 2001).all()


@pytest.mark.slow
def test_apgd_t_attacks_the_intended_classes():
    """The attack for rank r raises z_t - z_y of the rank-r class t of the
    clean prediction more than the attacks aimed at the other ranks do."""
    rng = np.random.default_rng(4)
    w = rng.standard_normal((16, 5))
    model = linear_model(w, np.zeros(5))
    x = rng.uniform(0, 1, (128, *SHAPE)).astype(np.float32)
    logits = model(x).numpy()
    y = logits.argmax(1)
    order = np.argsort(-logits, axis=1)
    rows = np.arange(len(x))
    context = specs.Context(model, 0.1, specs.Settings(apgd_steps=20),
                            objectives.inference_objective(model))
    attack = tf.function(specs.APGD_T.attack, autograph=False)
    ranks = (2, 3, 4)
    gaps = {}  # gaps[(attacked rank, measured rank)]: mean z_t - z_y
    for attacked in ranks:
        delta = attack(context, x, y, tf.constant([0, 0], tf.int64), tf.constant(attacked))
        z = model(np.clip(x + delta.numpy(), 0, 1)).numpy()
        for measured in ranks:
            gaps[attacked, measured] = (z[rows, order[:, measured - 1]] - z[rows, y]).mean()
    for measured in ranks:
        for attacked in ranks:
            if attacked != measured:
                assert gaps[measured, measured] > gaps[attacked, measured] + 0.1


def small_trained_model():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (512, *SHAPE)).astype(np.float32)
    y = (x[:, :2].mean(axis=(1, 2, 3)) > x[:, 2:].mean(axis=(1, 2, 3))).astype(int)
    y = y + 2 * (x[:, :, :2].mean(axis=(1, 2, 3)) > 0.5)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(4)])
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=20, batch_size=64, verbose=0)
    return model, x[:200], y[:200]


@pytest.mark.slow
def test_composition_is_the_worst_case_and_attacks_only_robust_points():
    model, x, y = small_trained_model()
    eps = 0.05
    common = dict(apgd_steps=20, square_queries=200, batch_size=50)
    single = {m: zg.evaluate_robustness(model, (x, y), eps, attack=m, **common)
              for m in ("apgd-ce", "apgd-t", "square")}
    pgd20 = zg.evaluate_robustness(model, (x, y), eps, steps=20, restarts=1)
    composed = zg.evaluate_robustness(model, (x, y), eps, attack="autoattack", **common)
    assert single["apgd-ce"]["robust_accuracy"] <= pgd20["robust_accuracy"]
    assert 0 < composed["robust_accuracy"] < composed["clean_accuracy"]
    for report in single.values():
        assert composed["robust_accuracy"] <= report["robust_accuracy"]
    entries = composed["attacks"]
    assert [e["name"] for e in entries] == ["apgd-ce", "apgd-t", "square"]
    assert entries[0]["num_attacked"] == composed["num_clean_correct"]
    for before, after in zip(entries, entries[1:]):
        assert after["num_attacked"] == round(before["robust_accuracy"] * len(x))
    assert entries[-1]["robust_accuracy"] == composed["robust_accuracy"]
    assert "square_only_broken" in composed


def masked_model(w, bias):
    """A linear model whose input gradient is exactly zero (gradient masking)."""
    inputs = keras.Input(SHAPE)
    masked = keras.layers.Lambda(lambda t: tf.stop_gradient(t) + 0.0 * t)(inputs)
    layer = keras.layers.Dense(4)
    model = keras.Model(inputs, layer(keras.layers.Flatten()(masked)))
    layer.set_weights([w.astype(np.float32), bias.astype(np.float32)])
    return model


@pytest.mark.slow
def test_square_breaks_a_gradient_masked_model_that_pgd_cannot(caplog):
    w, bias, x, y = binary_like(seed=5)
    model = masked_model(w, bias)
    _, robust, _ = analytic(w, bias, x, y)
    pgd = zg.evaluate_robustness(model, (x, y), EPS, steps=10, restarts=1)
    with caplog.at_level("WARNING", logger="zerograd_tf"):
        composed = zg.evaluate_robustness(model, (x, y), EPS, attack=["apgd-ce", "square"],
                                          apgd_steps=10, square_queries=1000)
    assert composed["num_robust_correct"] == robust.sum()
    assert pgd["num_robust_correct"] > robust.sum() + 10
    assert composed["square_only_broken"] > 10
    assert "gradient masking" in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("member", ["pgd", "apgd-ce", "apgd-dlr", "apgd-t", "square"])
def test_invariants_and_seeded_reproducibility(member):
    model, x, y = small_trained_model()
    spec = specs.REGISTRY[member]
    settings = specs.Settings(apgd_steps=10, apgd_targets=3, square_queries=50, steps=5,
                              restarts=1, alpha=0.01)
    context = specs.Context(model, 0.05, settings, objectives.inference_objective(model))
    extra = spec.stages(settings, 4)[0]
    attack = tf.function(spec.attack, autograph=False)
    seed = tf.constant([7, 0], tf.int64)
    a = attack(context, x, y, seed, *extra).numpy()
    b = attack(context, x, y, seed, *extra).numpy()
    c = attack(context, x, y, tf.constant([8, 0], tf.int64), *extra).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.abs(a).max() <= 0.05 + 1e-6
    assert (x + a).min() >= -1e-6 and (x + a).max() <= 1 + 1e-6


def test_bad_arguments_are_refused():
    w, bias, x, y = binary_like()
    model = linear_model(w, bias)
    with pytest.raises(ValueError, match="`attack` must be one of"):
        zg.evaluate_robustness(model, (x, y), EPS, attack="fab")
    with pytest.raises(ValueError, match="names no attack"):
        zg.evaluate_robustness(model, (x, y), EPS, attack=[])
    with pytest.raises(ValueError, match="`square_queries` must be an integer >= 1"):
        zg.evaluate_robustness(model, (x, y), EPS, attack="square", square_queries=0)
    two_class = linear_model(w[:, :2], bias[:2])
    with pytest.raises(ValueError, match="at least 4 classes"):
        zg.evaluate_robustness(two_class, (x, y), EPS, attack="apgd-t")
    flat = keras.Sequential([keras.Input((16,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="image batches"):
        zg.evaluate_robustness(flat, (x.reshape(200, 16), y), EPS, attack="square")
    with pytest.raises(ValueError, match="`rho` must be in"):
        apgd(model, x, y, EPS, rho=1.5)


def test_epsilon_sweep_flags_accuracy_that_rises_with_epsilon(monkeypatch, caplog):
    scripted = {0.05: 0.5, 0.1: 0.3, 0.2: 0.4}
    monkeypatch.setattr(evaluation, "evaluate_robustness",
                        lambda model, data, e, **kw: {"robust_accuracy": scripted[e], **kw})
    with caplog.at_level("WARNING", logger="zerograd_tf"):
        sweep = evaluation.epsilon_sweep(keras.Sequential([keras.layers.Dense(3)]), None,
                                         [0.2, 0.05, 0.1], relative_alpha=0.5, attack="pgd")
    assert sweep["epsilons"] == [0.05, 0.1, 0.2]
    assert sweep["robust_accuracy"] == [0.5, 0.3, 0.4]
    assert not sweep["monotone"] and sweep["violations"] == [(0.1, 0.2)]
    assert [r["alpha"] for r in sweep["reports"]] == [0.025, 0.05, 0.1]
    assert "rises with epsilon" in caplog.text


@pytest.mark.slow
def test_epsilon_sweep_of_a_real_model_is_monotone():
    model, x, y = small_trained_model()
    sweep = evaluation.epsilon_sweep(model, (x, y), [0.02, 0.05, 0.1], attack="apgd-ce",
                                     apgd_steps=10)
    assert sweep["monotone"], sweep["robust_accuracy"]
    assert sweep["robust_accuracy"][0] > sweep["robust_accuracy"][-1]
