import keras
import numpy as np
import pytest
import tensorflow as tf

import zerograd_tf as zg
from zerograd_tf.attacks import ops
from conftest import small_cnn

EPS = 0.1


def linear_objective(coefficients):
    """Loss = sum(c * x): its input gradient is exactly `c`, anywhere."""
    c = tf.constant(coefficients)

    def objective(x, y):
        losses = tf.reduce_sum(tf.reshape(c * x, (tf.shape(x)[0], -1)), axis=1)
        return losses, None

    return objective


def random_start(x, epsilon, seed):
    return ops.project(
        x, ops.uniform_noise(tf.shape(x), epsilon, ops.as_seed(seed)))


def test_zerograd_zeroes_exactly_the_elements_below_the_quantile():
    rng = np.random.default_rng(0)
    shape = (5, 6, 6, 2)
    x = rng.uniform(0.2, 0.8, shape).astype(np.float32)
    c = rng.standard_normal(shape).astype(np.float32)  # distinct magnitudes
    for q in [0.1, 0.35, 0.5, 0.9]:
        delta, info = zg.zerograd(linear_objective(c), x, None, EPS, 2 * EPS,
                                  quantile=q, seed=11)
        delta0 = random_start(tf.constant(x), EPS, 11).numpy()
        flat = np.abs(c).reshape(5, -1)
        threshold = np.quantile(flat, q, axis=1)
        below = (np.abs(c) < threshold[:, None, None, None])
        n = flat.shape[1]
        position = q * (n - 1)
        expected_count = int(np.floor(position)) + (1 if position % 1 else 0)
        assert (below.reshape(5, -1).sum(axis=1) == expected_count).all()
        np.testing.assert_allclose(info["zeroed_fraction"].numpy(), expected_count / n)
        # Zeroed elements keep the random start; the others step to +-eps.
        np.testing.assert_array_equal(delta.numpy()[below], delta0[below])
        np.testing.assert_allclose(delta.numpy()[~below],
                                   (EPS * np.sign(c))[~below], rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_the_compiled_mask_is_bit_identical_to_the_graph_mask(mode):
    inputs, outputs = small_cnn()
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(4)
    x = rng.random((16, 8, 8, 1)).astype(np.float32)
    y = np.arange(16) % 3
    q = tf.Variable(0.35)

    def attack(mask_jit, quantile):
        return zg.zerograd(model, x, y, EPS, 2 * EPS, quantile=quantile, seed=3,
                           mask_jit=mask_jit)

    for quantile in (0.35, 0.9, q):
        if mode == "eager":
            run = attack
        else:
            run = tf.function(attack, jit_compile=mode == "xla")
        compiled, compiled_info = run(True, quantile)
        plain, plain_info = run(False, quantile)
        np.testing.assert_array_equal(compiled.numpy(), plain.numpy())
        np.testing.assert_array_equal(compiled_info["zeroed_fraction"].numpy(),
                                      plain_info["zeroed_fraction"].numpy())
        assert 0 < plain_info["zeroed_fraction"].numpy().min() < 1


def test_zerograd_at_q0_is_fgsm_rs_and_keeps_init():
    inputs, outputs = small_cnn()
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(1).random((6, 8, 8, 1)).astype(np.float32)
    y = np.arange(6) % 3
    for init in ["random", "zero"]:
        zero, _ = zg.zerograd(model, x, y, EPS, 1.5 * EPS, quantile=0.0, init=init, seed=5)
        fgsm, _ = zg.fgsm(model, x, y, EPS, 1.5 * EPS, init=init, seed=5)
        np.testing.assert_array_equal(zero.numpy(), fgsm.numpy())


def test_zerograd_multiple_iterations_stay_in_ball():
    inputs, outputs = small_cnn()
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(2).random((4, 8, 8, 1)).astype(np.float32)
    delta, info = zg.zerograd(model, x, np.zeros(4), EPS, 0.5 * EPS, iterations=3,
                              seed=1)
    assert np.abs(delta.numpy()).max() <= np.float32(EPS)
    assert 0.3 < float(tf.reduce_mean(info["zeroed_fraction"])) < 0.4


def test_multigrad_with_one_sample_is_the_fgsm_rs_sign_step_from_zero():
    inputs, outputs = small_cnn()
    model = keras.Model(inputs, outputs)
    x = tf.constant(np.random.default_rng(3).random((6, 8, 8, 1)).astype(np.float32))
    y = np.arange(6) % 3
    delta, _ = zg.multigrad(model, x, y, EPS, 2 * EPS, samples=1, seed=9)
    start = random_start(x, EPS, 9)
    _, gradient, _ = ops.loss_and_gradient(
        zg.model_objective(model), x + start, tf.constant(y))
    expected = ops.project(x, 2 * EPS * tf.sign(gradient), EPS)
    np.testing.assert_array_equal(delta.numpy(), expected.numpy())


def test_multigrad_unanimity_on_a_hand_built_case():
    # Batch of 1 example with 5 elements; gradients of the 3 starts are set
    # through a loss sum(c_i * x_i) on the tiled batch (sample-major).
    signs = np.array([
        [+1, -1, +1, +1, +1],   # start 1
        [+1, -1, +1, -1, +1],   # start 2
        [+1, -1, -1, 0, +1],    # start 3
    ], np.float32)
    c = (signs * np.array([1, 2, 3, 4, 0.5], np.float32)).reshape(3, 5)
    x = np.full((1, 5), 0.5, np.float32)
    unanimous, _ = zg.multigrad(linear_objective(c), x, None, EPS, samples=3, seed=0)
    np.testing.assert_allclose(unanimous.numpy(), [[EPS, -EPS, 0, 0, EPS]], rtol=1e-6)
    majority, _ = zg.multigrad(linear_objective(c), x, None, EPS, samples=3,
                            threshold=2, seed=0)
    # s = [3, -3, 1, 0, 3]: |s| >= 1 keeps all but the tie, which has sign 0.
    np.testing.assert_allclose(majority.numpy(), [[EPS, -EPS, EPS, 0, EPS]], rtol=1e-6)
    _, info = zg.multigrad(linear_objective(c), x, None, EPS, samples=3, seed=0)
    np.testing.assert_allclose(info["zeroed_fraction"].numpy(), [0.4])


def linear_model(d=12, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    inputs = keras.Input((d,))
    layer = keras.layers.Dense(classes)
    model = keras.Model(inputs, layer(inputs))
    w = rng.standard_normal((d, classes)).astype(np.float32)
    layer.set_weights([w, np.zeros(classes, np.float32)])
    return model, w


def test_fgsm_and_pgd_reach_the_analytic_worst_case_of_a_linear_model():
    model, w = linear_model()
    rng = np.random.default_rng(4)
    x = rng.uniform(0.2, 0.8, (8, 12)).astype(np.float32)  # interior: no box clip
    y = rng.integers(0, 2, 8)
    # Loss grows along W[:, other] - W[:, y]: the worst case is eps * sign of it.
    worst = EPS * np.sign(w[:, 1 - y] - w[:, y]).T
    fgsm, _ = zg.fgsm(model, x, y, EPS, alpha=EPS)
    np.testing.assert_allclose(fgsm.numpy(), worst, rtol=1e-6)
    fgsm_large, _ = zg.fgsm(model, x, y, EPS, alpha=3 * EPS)
    np.testing.assert_allclose(fgsm_large.numpy(), worst, rtol=1e-6)
    pgd, _ = zg.pgd(model, x, y, EPS, alpha=EPS / 4, steps=10, restarts=2, seed=3)
    np.testing.assert_allclose(pgd.numpy(), worst, rtol=1e-6)


def test_pgd_keeps_the_worst_restart_and_early_stop_freezes():
    model, _ = linear_model(seed=1)
    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, 1.0, (16, 12)).astype(np.float32)
    y = rng.integers(0, 2, 16)
    objective = zg.model_objective(model)
    one, info1 = zg.pgd(model, x, y, EPS, steps=1, restarts=1, seed=2)
    many, info = zg.pgd(model, x, y, EPS, steps=1, restarts=4, seed=2)
    loss_many, _ = objective(x + many, y)
    np.testing.assert_allclose(info["loss"].numpy(), loss_many.numpy(), rtol=1e-6)
    assert (info["loss"].numpy() >= info1["loss"].numpy() - 1e-6).all()
    # Early stop: a misclassified example does not move from its start.
    wrong = np.argmax(model(x).numpy(), axis=1) != y
    assert wrong.any()
    stopped, _ = zg.pgd(model, x, y, EPS, steps=5, random_start=False, early_stop=True)
    np.testing.assert_array_equal(stopped.numpy()[wrong], 0.0)


METHODS = {
    "fgsm": lambda m, x, y, s: zg.fgsm(m, x, y, EPS)[0],
    "fgsm_rs": lambda m, x, y, s: zg.fgsm(m, x, y, EPS, init="random", seed=s)[0],
    "zerograd": lambda m, x, y, s: zg.zerograd(m, x, y, EPS, seed=s)[0],
    "zerograd_2iters": lambda m, x, y, s: zg.zerograd(m, x, y, EPS, iterations=2, seed=s)[0],
    "multigrad": lambda m, x, y, s: zg.multigrad(m, x, y, EPS, seed=s)[0],
    "pgd": lambda m, x, y, s: zg.pgd(m, x, y, EPS, steps=3, restarts=2, seed=s)[0],
    "n_fgsm": lambda m, x, y, s: zg.n_fgsm(m, x, y, EPS, seed=s)[0],
}


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("jit", [False, True])
def test_epsilon_ball_and_box_invariants(method, jit):
    rng = np.random.default_rng(6)
    inputs, outputs = small_cnn(batch_norm=True)
    model = keras.Model(inputs, outputs)
    x = rng.random((8, 8, 8, 1)).astype(np.float32)
    x[0] = 0.0
    x[1] = 1.0
    y = rng.integers(0, 3, 8)
    fn = tf.function(lambda x, y, s: METHODS[method](model, x, y, s), jit_compile=jit)
    delta = fn(tf.constant(x), tf.constant(y), tf.constant([7, 1], tf.int64)).numpy()
    adv = x + delta
    assert adv.min() >= -1e-7 and adv.max() <= 1 + 1e-7
    bound = 3 * EPS if method == "n_fgsm" else EPS
    assert np.abs(delta).max() <= bound + 1e-7
    if method == "n_fgsm":
        assert np.abs(delta).max() > EPS  # by design no projection to the ball
    assert np.abs(delta).max() > 0


def test_random_methods_are_reproducible_and_seed_dependent():
    inputs, outputs = small_cnn()
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(7).random((4, 8, 8, 1)).astype(np.float32)
    y = np.zeros(4, np.int64)
    a = zg.zerograd(model, x, y, EPS, seed=1)[0].numpy()
    b = zg.zerograd(model, x, y, EPS, seed=1)[0].numpy()
    c = zg.zerograd(model, x, y, EPS, seed=2)[0].numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_n_fgsm_optional_clip():
    inputs, outputs = small_cnn()
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(8).random((4, 8, 8, 1)).astype(np.float32)
    delta, _ = zg.n_fgsm(model, x, np.zeros(4), EPS, seed=1, clip=EPS)
    assert np.abs(delta.numpy()).max() <= np.float32(EPS)


@pytest.mark.parametrize("call, message", [
    (lambda m, x: zg.fgsm(m, x, None, 0.0), r"`epsilon` must be in \(0, 1\]"),
    (lambda m, x: zg.fgsm(m, x, None, 8), r"8/255"),
    (lambda m, x: zg.fgsm(m, x, None, EPS, alpha=-1), r"`alpha` must be a finite number > 0"),
    (lambda m, x: zg.fgsm(m, x, None, EPS, init="gauss"), r"`init` must be one of"),
    (lambda m, x: zg.fgsm(m, x, None, EPS, init="random"), r"needs a `seed`"),
    (lambda m, x: zg.zerograd(m, x, None, EPS, quantile=1.0, seed=1), r"`quantile` must be a number in \[0, 1\)"),
    (lambda m, x: zg.zerograd(m, x, None, EPS, quantile=-0.1, seed=1), r"`quantile`"),
    (lambda m, x: zg.zerograd(m, x, None, EPS, iterations=0, seed=1), r"`iterations` must be an integer >= 1"),
    (lambda m, x: zg.multigrad(m, x, None, EPS, samples=0, seed=1), r"`samples` must be an integer >= 1"),
    (lambda m, x: zg.multigrad(m, x, None, EPS, samples=3, threshold=4, seed=1), r"`threshold` must be an integer in \[1, 3\]"),
    (lambda m, x: zg.pgd(m, x, None, EPS, steps=0, seed=1), r"`steps` must be an integer >= 1"),
    (lambda m, x: zg.pgd(m, x, None, EPS, restarts=0, seed=1), r"`restarts` must be an integer >= 1"),
    (lambda m, x: zg.fgsm(m, (x * 255).astype(np.uint8), None, EPS), r"floating point"),
])
def test_bad_arguments(call, message):
    objective = linear_objective(np.ones((2, 3), np.float32))
    x = np.full((2, 3), 0.5, np.float32)
    with pytest.raises((ValueError, TypeError), match=message):
        call(objective, x)


def test_large_epsilon_warns():
    objective = linear_objective(np.ones((1, 3), np.float32))
    with pytest.warns(UserWarning, match="divide it by 255"):
        zg.fgsm(objective, np.full((1, 3), 0.5, np.float32), None, 0.6)


def test_pgd_compaction_changes_nothing_but_the_work():
    """`compact=True` gives the same perturbation as the masked batch, and
    more restarts never turn a broken example robust again."""
    import keras

    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3)])
    x = rng.uniform(0.1, 0.9, (64, 6)).astype(np.float32)
    y = model(x).numpy().argmax(1)
    # One short step from each random start: the restarts matter.
    kw = dict(alpha=0.1, steps=1, early_stop=True, seed=3)
    masked, info_masked = zg.pgd(model, x, y, 0.3, restarts=8, **kw)
    compacted, info_compacted = zg.pgd(model, x, y, 0.3, restarts=8, compact=True, **kw)
    np.testing.assert_allclose(compacted.numpy(), masked.numpy(), atol=1e-6)
    np.testing.assert_allclose(info_compacted["loss"].numpy(), info_masked["loss"].numpy(),
                               rtol=1e-5)
    wrong = model(x + masked).numpy().argmax(1) != y
    first, _ = zg.pgd(model, x, y, 0.3, restarts=1, **kw)
    wrong_first = model(x + first).numpy().argmax(1) != y
    assert wrong_first.any() and not wrong.all()
    assert (wrong >= wrong_first).all() and wrong.sum() > wrong_first.sum()
    # Restarts after every example is broken have nothing to attack.
    conv = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3),
                             keras.layers.Conv2D(8, 3), keras.layers.Flatten(),
                             keras.layers.Dense(3)])
    images = rng.uniform(0, 1, (16, 6, 6, 1)).astype(np.float32)
    labels = (conv(images).numpy().argmax(1) + 1) % 3  # all misclassified already
    delta, _ = zg.pgd(conv, images, labels, 0.1, steps=2, restarts=3, early_stop=True,
                   compact=True, seed=0)
    assert delta.shape == images.shape


def test_the_old_perturbations_module_warns_and_keeps_its_signatures():
    import importlib
    import sys
    import warnings

    sys.modules.pop("zerograd_tf.perturbations", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        perturbations = importlib.import_module("zerograd_tf.perturbations")
    assert any(issubclass(w.category, DeprecationWarning) and "zerograd_tf.attacks" in
               str(w.message) for w in caught)
    objective = linear_objective(np.ones((2, 3), np.float32))
    x = np.full((2, 3), 0.5, np.float32)
    delta = perturbations.fgsm(objective, x, None, EPS)
    new_delta, info = zg.attacks.fgsm(objective, x, None, EPS)
    np.testing.assert_array_equal(delta.numpy(), new_delta.numpy())
    old_delta, old_info = perturbations.zerograd(objective, x, None, EPS, seed=1,
                                                 return_info=True)
    assert set(old_info) == {"zeroed_fraction"}


def test_the_compiled_mask_serves_inputs_of_several_ranks_in_one_process():
    """The mask's tf.function relaxes its input signature to an unknown rank
    once it has seen two ranks (reduce_retracing); the quantile must still
    work then."""
    inputs, outputs = small_cnn()
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(0).random((3, 8, 8, 1)).astype(np.float32)
    flat = np.full((2, 3), 0.5, np.float32)
    objective = linear_objective(np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5)
    for _ in range(2):
        _, info = zg.attacks.zerograd(model, images, np.zeros(3), EPS, quantile=0.5, seed=1)
        assert info["zeroed_fraction"].shape == (3,)
        _, info = zg.attacks.zerograd(objective, flat, None, EPS, quantile=0.5, seed=1)
        np.testing.assert_allclose(info["zeroed_fraction"].numpy(), [1 / 3, 1 / 3])


def test_zerograd_on_n_fgsm_zeroes_the_small_gradient_elements_of_the_step():
    # A linear loss: the input gradient is w everywhere, so the mask is known.
    rng = np.random.default_rng(3)
    w = rng.normal(size=(1, 16)).astype(np.float32)

    def objective(x, y):
        return tf.reduce_sum(x * w, axis=1), x

    x = np.full((3, 16), 0.5, np.float32)
    plain, info = zg.n_fgsm(objective, x, None, EPS, seed=4)
    assert info == {}
    again, _ = zg.n_fgsm(objective, x, None, EPS, seed=4, quantile=0.0)
    np.testing.assert_array_equal(plain.numpy(), again.numpy())  # q = 0 is N-FGSM
    masked, info = zg.n_fgsm(objective, x, None, EPS, seed=4, quantile=0.5)
    small = np.abs(w[0]) < np.quantile(np.abs(w[0]), 0.5)
    np.testing.assert_allclose(info["zeroed_fraction"].numpy(), small.mean())
    # Kept elements take N-FGSM's step; zeroed ones keep the noise alone.
    np.testing.assert_array_equal(masked.numpy()[:, ~small], plain.numpy()[:, ~small])
    noise = plain.numpy() - EPS * np.sign(w)
    np.testing.assert_allclose(masked.numpy()[:, small], noise[:, small], atol=1e-7)
    with pytest.raises(ValueError, match="quantile"):
        zg.n_fgsm(objective, x, None, EPS, seed=4, quantile=1.0)


def test_the_zerograd_n_fgsm_method_reaches_its_model():
    from zerograd_tf.runs import pipeline
    from zerograd_tf.runs.config import ConfigError, RunConfig

    config = RunConfig(method="zerograd_n_fgsm", quantile=0.6, epsilon=0.1)
    assert pipeline.adversarial_model_class(config.method) is zg.ZeroGradNFGSMModel
    assert pipeline.method_arguments(config)["quantile"] == 0.6
    with pytest.raises(ConfigError, match="quantile"):
        RunConfig(method="zerograd_n_fgsm", quantile="auto")
