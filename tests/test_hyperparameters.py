"""Hyperparameters are read when the step runs, never frozen into a trace.

`perturb(x, y, seed, hyperparameters)` receives epsilon, alpha and the
method's own hyperparameters (ZeroGrad's quantile) as tensors; alpha is a
multiple of epsilon, so an epsilon warm-up keeps their ratio.
"""

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import zerograd_tf as zg
from all_models import IDS, MODELS
from conftest import compile_kwargs, mlp

EPS = 0.1



class SignNoise(zg.AdversarialModel):
    """The method of `AdversarialModel`'s docstring."""

    def perturb(self, x, y, seed, hyperparameters):
        noise = tf.random.stateless_uniform(tf.shape(x), seed, -1.0, 1.0)
        return hyperparameters["epsilon"] * tf.sign(noise), {}


class FrozenSignNoise(zg.AdversarialModel):
    """The same method reading the Python property while tracing."""

    def perturb(self, x, y, seed, hyperparameters):
        noise = tf.random.stateless_uniform(tf.shape(x), seed, -1.0, 1.0)
        return self.epsilon * tf.sign(noise), {}


def _data(n=32, seed=0):
    """Inputs in [0.2, 0.8] (no perturbation is clipped by the box), labels."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.2, 0.8, (n, 4, 4, 1)).astype("float32"),
            (np.arange(n) % 2).astype("int32"))


def _count_traces(model):
    """Counts the traces of the model's train step (a Python call is a trace)."""
    traces = []
    step = model.train_step

    def counting_step(data):
        traces.append(1)
        return step(data)

    model.train_step = counting_step
    return traces


def test_a_method_written_as_the_docs_show_follows_epsilon():
    x, y = _data()
    model = SignNoise(*mlp(), epsilon=EPS, seed=0)
    model.compile(**compile_kwargs())
    first = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    model.epsilon = 0.02
    second = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    assert first["mean_abs_delta"][0] == pytest.approx(0.1, rel=1e-5)
    assert second["mean_abs_delta"][0] == pytest.approx(0.02, rel=1e-5)


def test_reading_the_epsilon_property_while_tracing_warns():
    x, y = _data()
    model = FrozenSignNoise(*mlp(), epsilon=EPS, seed=0)
    model.compile(**compile_kwargs())
    with pytest.warns(UserWarning, match="hyperparameters"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert model.epsilon == pytest.approx(EPS)  # eagerly: no warning


def _mean_abs_delta(model, x, y, hyperparameters):
    """The `mean_abs_delta` of the next step with these hyperparameters,
    computed eagerly (the attack is stateless)."""
    delta, _ = model.perturb(tf.constant(x), tf.constant(y), model.step_seed(),
                             hyperparameters)
    return float(tf.reduce_mean(tf.abs(delta)))


@pytest.mark.parametrize("cls, kwargs", MODELS, ids=IDS)
def test_every_model_uses_changed_hyperparameters_without_retracing(cls, kwargs):
    x, y = _data()
    model = cls(*mlp(), epsilon=EPS, seed=0, **kwargs)
    model.compile(**compile_kwargs())
    traces = _count_traces(model)
    model.train_on_batch(x, y)
    traced = len(traces)  # (tf.function traces again when the first creates variables)
    before = model.read_hyperparameters()
    model.epsilon = 0.04
    model.alpha = 0.3 * 0.04
    changes = {"epsilon": 0.04, "alpha": 0.3 * 0.04}
    if cls is zg.ZeroGradModel:
        model.quantile = changes["quantile"] = 0.7
    now = model.read_hyperparameters()
    assert {k: float(now[k]) for k in changes} == pytest.approx(changes)
    expected = _mean_abs_delta(model, x, y, now)
    stale = _mean_abs_delta(model, x, y, before)
    assert abs(expected - stale) > 0.2 * stale  # the test can tell them apart
    logs = model.train_on_batch(x, y, return_dict=True)
    assert logs["mean_abs_delta"] == pytest.approx(expected, rel=1e-4)
    # top_k needs a static quantile: its setter retraces, by design.
    retraced = cls is zg.ZeroGradModel and kwargs.get("quantile_method") == "top_k"
    assert len(traces) == traced + retraced


def test_gradalign_regulariser_uses_the_current_epsilon():
    x, y = _data()
    model = zg.GradAlignModel(*mlp(), epsilon=EPS, seed=0)
    seed = tf.constant([0, 1], tf.int64)
    model.compile(**compile_kwargs())
    model.build(x.shape)
    at = {e: model.regularization(tf.constant(x), tf.constant(y), seed,
                                  {"epsilon": tf.constant(e), "alpha": tf.constant(e)})[0]
          for e in (0.1, 0.5)}
    assert float(at[0.1]) != pytest.approx(float(at[0.5]))


@pytest.mark.parametrize("configure", ["alpha", "alpha_factor"])
def test_epsilon_warmup_keeps_the_ratio_of_alpha_to_epsilon(configure):
    """FGSM from zero steps alpha * sign(gradient): mean |delta| is the
    step's alpha, which must stay half of the ramped epsilon."""
    x, y = _data(16)
    setting = {"alpha": 0.5 * EPS} if configure == "alpha" else {"alpha_factor": 0.5}
    model = zg.FGSMModel(*mlp(), epsilon=EPS, seed=0, **setting)
    model.compile(**compile_kwargs())
    warmup = zg.callbacks.EpsilonWarmup(EPS, warmup_steps=4)
    history = model.fit(x, y, batch_size=16, epochs=5, callbacks=[warmup], verbose=0)
    epsilons = [EPS * s / 4 for s in (1, 2, 3, 4, 4)]
    assert history.history["mean_abs_delta"] == pytest.approx(
        [0.5 * e for e in epsilons], rel=1e-5)
    assert model.alpha == pytest.approx(0.5 * EPS) and model.alpha_factor == pytest.approx(0.5)


def test_alpha_is_a_multiple_of_epsilon():
    model = zg.PGDModel(*mlp(), epsilon=EPS, steps=5)
    assert model.alpha_factor == pytest.approx(0.5) and model.alpha == pytest.approx(0.05)
    model.epsilon = 0.2
    assert model.alpha == pytest.approx(0.1)  # the ratio stays
    model.alpha = 0.05
    assert model.alpha_factor == pytest.approx(0.25)
    model.alpha_factor = 2.0
    assert model.alpha == pytest.approx(0.4)
    with pytest.raises(ValueError, match="not both"):
        zg.PGDModel(*mlp(), epsilon=EPS, alpha=0.1, alpha_factor=1.0)
    with pytest.raises(ValueError, match="`alpha_factor` must be a finite number > 0"):
        model.alpha_factor = 0
    defaults = {zg.FGSMModel(*mlp(), epsilon=EPS).alpha_factor: 1.0,
                zg.FGSMModel(*mlp(), epsilon=EPS, random_init=True).alpha_factor: 1.25,
                zg.ZeroGradModel(*mlp(), epsilon=EPS).alpha_factor: 2.0,
                zg.MultiGradModel(*mlp(), epsilon=EPS).alpha_factor: 2.0,
                zg.NFGSMModel(*mlp(), epsilon=EPS).alpha_factor: 1.0}
    assert list(defaults) == pytest.approx(list(defaults.values()))


@pytest.mark.slow
def test_a_file_with_an_absolute_alpha_loads_with_its_ratio(tmp_path):
    """Files of earlier versions store alpha in pixel units (config and
    variable); they load with alpha_factor = alpha / epsilon."""
    import json
    import zipfile

    x, y = _data()
    model = zg.PGDModel(*mlp(), epsilon=EPS, steps=2, seed=0)
    model.compile(**compile_kwargs())
    model.train_on_batch(x, y)
    model.alpha_factor = 0.8
    path = tmp_path / "new.keras"
    model.save(path)
    # Rewrite it as an earlier version wrote it: `alpha` in the config and
    # the `alpha` variable in pixel units.
    import h5py
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                inner = config["config"]
                inner["alpha"] = inner.pop("alpha_factor") * inner["epsilon"]
                data = json.dumps(config).encode()
            elif item.filename == "model.weights.h5":
                (tmp_path / "w.h5").write_bytes(data)
                with h5py.File(tmp_path / "w.h5", "r+") as h5:
                    values = h5["vars"]
                    values["1"][()] = values["1"][()] * values["0"][()]
                    del values["hyperparameters_format"]  # earlier files had no mark
                data = (tmp_path / "w.h5").read_bytes()
            target.writestr(item, data)
    loaded = keras.models.load_model(old)
    assert loaded.alpha_factor == pytest.approx(0.8)
    assert loaded.alpha == pytest.approx(0.8 * EPS)
    assert keras.models.load_model(path).alpha_factor == pytest.approx(0.8)


DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@pytest.mark.parametrize("cls, name, options, alpha_factor", [
    (zg.PGDModel, "pgd", {"steps": 10}, 0.25),
    (zg.ZeroGradModel, "zerograd", {"quantile": 0.5}, 2.0),
])
def test_weights_saved_by_an_earlier_version_load_with_their_ratio(cls, name, options,
                                                                   alpha_factor):
    """`tests/data/*_048ebcc.weights.h5` were written by `save_weights` of
    the version before alpha became a multiple of epsilon (commit 048ebcc:
    epsilon 0.1, the default step size in pixel units). `load_weights`, which
    the run checkpoints use, converts them."""
    inputs = keras.Input((4,))
    model = cls(inputs, keras.layers.Dense(3)(inputs), epsilon=0.05, alpha_factor=7.0,
                seed=0, **options)
    model.build((None, 4))
    model.load_weights(os.path.join(DATA, f"{name}_048ebcc.weights.h5"))
    assert model.epsilon == pytest.approx(0.1)
    assert model.alpha_factor == pytest.approx(alpha_factor)
    assert model.alpha == pytest.approx(alpha_factor * 0.1)
    if cls is zg.ZeroGradModel:
        assert model.quantile == pytest.approx(0.5)


def test_weights_round_trip_with_the_format_mark(tmp_path):
    inputs = keras.Input((4,))
    model = zg.PGDModel(inputs, keras.layers.Dense(3)(inputs), epsilon=0.1, alpha_factor=0.3,
                        steps=3, seed=0)
    model.build((None, 4))
    model.save_weights(tmp_path / "m.weights.h5")
    model.alpha_factor, model.epsilon = 2.0, 0.2
    model.load_weights(tmp_path / "m.weights.h5")
    assert (model.epsilon, model.alpha_factor) == pytest.approx((0.1, 0.3))
