import keras
import numpy as np
import pytest
import tensorflow as tf

import zerograd_tf as zg
from all_models import IDS, MODELS
from conftest import compile_kwargs, mlp, robustness_problem, small_cnn

EPS = 0.1


@pytest.mark.slow
@pytest.mark.parametrize("cls, kwargs", MODELS, ids=IDS)
def test_fit_under_xla_decreases_loss(cls, kwargs):
    x, y = robustness_problem(512)
    inputs, outputs = mlp()
    model = cls(inputs, outputs, epsilon=EPS, seed=0, **kwargs)
    model.compile(**compile_kwargs(jit_compile=True))
    history = model.fit(x, y, batch_size=64, epochs=4, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert history["loss"][0] > 0
    assert all(0 < d <= EPS * (3 if issubclass(cls, zg.NFGSMModel) else 1) + 1e-6
               for d in history["mean_abs_delta"])
    if cls in (zg.ZeroGradModel, zg.MultiGradModel, zg.ZeroGradNFGSMModel):
        assert 0 < history["zeroed_fraction"][-1] < 1
    assert "pgd_accuracy" not in history


@pytest.mark.slow
def test_adversarial_training_is_more_robust_than_clean_training():
    x, y = robustness_problem(2048, seed=0)
    x_test, y_test = robustness_problem(512, seed=1)
    inputs, outputs = mlp()
    clean = keras.Model(inputs, outputs)
    clean.compile(**compile_kwargs())
    clean.fit(x, y, batch_size=64, epochs=20, verbose=0)
    inputs, outputs = mlp()
    robust = zg.FGSMModel(inputs, outputs, epsilon=EPS, seed=0)
    robust.compile(**compile_kwargs())
    robust.fit(x, y, batch_size=64, epochs=8, verbose=0)
    kw = dict(epsilon=EPS, steps=10, restarts=1)
    clean_report = zg.evaluate_robustness(clean, (x_test, y_test), **kw)
    robust_report = zg.evaluate_robustness(robust, (x_test, y_test), **kw)
    assert clean_report["clean_accuracy"] > 0.95
    assert clean_report["robust_accuracy"] < 0.3
    assert robust_report["robust_accuracy"] > 0.8
    assert robust_report["robust_accuracy"] > clean_report["robust_accuracy"] + 0.4


def _expected_adversarial_batch(model, x, y):
    """The batch the first train step trains on (the attack is stateless)."""
    delta, _ = model.perturb(tf.constant(x), tf.constant(y), model.step_seed(),
                             model.read_hyperparameters())
    return np.clip(x + delta.numpy(), 0, 1)


@pytest.mark.slow
def test_attack_leaves_no_trace_in_batchnorm_statistics():
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    inputs, outputs = small_cnn(batch_norm=True)
    model = zg.ZeroGradModel(inputs, outputs, epsilon=EPS, seed=3)
    reference = keras.models.clone_model(model.classifier)
    reference.set_weights(model.classifier.get_weights())
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x_adv = _expected_adversarial_batch(model, x, y)
    model.train_on_batch(x, y)
    reference.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    reference.train_on_batch(x_adv, y)

    bn = [layer for layer in model.classifier.layers
          if isinstance(layer, keras.layers.BatchNormalization)][0]
    bn_ref = [layer for layer in reference.layers
              if isinstance(layer, keras.layers.BatchNormalization)][0]
    np.testing.assert_allclose(bn.moving_mean.numpy(), bn_ref.moving_mean.numpy(),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bn.moving_variance.numpy(),
                               bn_ref.moving_variance.numpy(), rtol=1e-5, atol=1e-7)
    for a, b in zip(model.classifier.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_reported_loss_is_the_weighted_loss_on_the_adversarial_batch():
    rng = np.random.default_rng(1)
    x = rng.random((16, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    w = rng.random(16).astype(np.float32)
    inputs, outputs = small_cnn()
    model = zg.ZeroGradModel(inputs, outputs, epsilon=EPS, seed=4)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    x_adv = _expected_adversarial_batch(model, x, y)
    logs = model.train_on_batch(x, y, sample_weight=w, return_dict=True)
    expected = float(loss(y, model.predict(x_adv, verbose=0), sample_weight=w))
    assert logs["loss"] > 0
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5)


@pytest.mark.slow
def test_seeded_runs_are_identical_and_seed_dependent():
    x, y = robustness_problem(256)

    def run(seed):
        keras.utils.set_random_seed(0)
        inputs, outputs = mlp()
        model = zg.ZeroGradModel(inputs, outputs, epsilon=EPS, seed=seed)
        model.compile(**compile_kwargs())
        model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
        return model.get_weights()

    first, second, other = run(1), run(1), run(2)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert any((a != b).any() for a, b in zip(first, other))


def test_validation_pgd_accuracy_is_reported_only_when_asked():
    x, y = robustness_problem(256)
    inputs, outputs = mlp()
    model = zg.ZeroGradModel(inputs, outputs, epsilon=EPS, seed=0,
                             validation_pgd_steps=5)
    model.compile(**compile_kwargs())
    history = model.fit(x, y, batch_size=64, epochs=2, verbose=0,
                        validation_data=(x[:128], y[:128])).history
    assert "val_pgd_accuracy" in history and "pgd_accuracy" not in history
    assert "val_mean_abs_delta" not in history and "val_zeroed_fraction" not in history
    report = zg.evaluate_robustness(model, (x[:128], y[:128]), EPS, steps=5,
                                    restarts=1, seed=model.seed + 1,
                                    early_stop=False)
    assert history["val_pgd_accuracy"][-1] <= history["val_accuracy"][-1]
    assert abs(history["val_pgd_accuracy"][-1] - report["robust_accuracy"]) < 0.1


@pytest.mark.slow
@pytest.mark.parametrize("cls, kwargs", MODELS, ids=IDS)
def test_keras_round_trip(tmp_path, cls, kwargs):
    x, y = robustness_problem(128)
    inputs, outputs = small_cnn(input_shape=(4, 4, 1), classes=2, batch_norm=True)
    model = cls(inputs, outputs, epsilon=0.05, seed=7, validation_pgd_steps=2, **kwargs)
    model.compile(**compile_kwargs())
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    if cls is zg.ZeroGradModel:
        model.quantile = 0.6
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is cls
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    hyperparameters = {k: v for k, v in model.get_config().items() if k != "model"}
    assert {k: loaded.get_config()[k] for k in hyperparameters} == hyperparameters
    if cls is zg.ZeroGradModel:
        assert loaded.quantile == pytest.approx(0.6)
    # The reloaded model trains on from where it was (the step counter seeds
    # the attack).
    assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy())
    loaded.fit(x, y, batch_size=32, epochs=1, verbose=0)


@pytest.mark.slow
def test_saved_layout_is_that_of_earlier_versions(tmp_path):
    """Earlier versions named the wrapped classifier `model`; now it is
    `classifier`. Files keep the layout they had (the classifier's weights
    under "layers/functional"), so files of either version load in the
    other, without warnings."""
    import warnings
    import zipfile

    import h5py

    x, y = robustness_problem(128)
    inputs, outputs = small_cnn(input_shape=(4, 4, 1), classes=2, batch_norm=True)
    model = zg.ZeroGradModel(inputs, outputs, epsilon=0.05, seed=7)
    model.compile(**compile_kwargs())
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert model.model is model.classifier
    path = tmp_path / "model.keras"
    model.save(path)
    weights = tmp_path / "model.weights.h5"
    model.save_weights(weights)
    with zipfile.ZipFile(path) as archive:
        archive.extract("model.weights.h5", tmp_path / "unpacked")
    for stored in (weights, tmp_path / "unpacked" / "model.weights.h5"):
        with h5py.File(stored, "r") as h5:
            assert sorted(h5) == ["layers", "optimizer", "vars"]
            assert list(h5["layers"]) == ["functional"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.models.load_model(path)
    for a, b in zip(loaded.classifier.get_weights(), model.classifier.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_wrap_existing_sequential_model():
    x, y = robustness_problem(256)
    sequential = keras.Sequential([
        keras.Input((4, 4, 1)), keras.layers.Flatten(),
        keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2),
    ])
    model = zg.ZeroGradModel.from_model(sequential, epsilon=EPS, quantile=0.5, seed=0)
    model.compile(**compile_kwargs())
    before = [w.copy() for w in sequential.get_weights()]
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    assert any((a != b).any() for a, b in zip(before, sequential.get_weights()))
    np.testing.assert_array_equal(model.predict(x, verbose=0),
                                  sequential.predict(x, verbose=0))


@keras.saving.register_keras_serializable(package="tests")
class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(2, activation="softmax")

    def call(self, x):
        return self.dense(self.flatten(x))


def test_wrap_unbuilt_subclassed_model_with_softmax_output():
    x, y = robustness_problem(256)
    model = zg.MultiGradModel.from_model(Subclassed(), epsilon=EPS, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=64, epochs=2, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]


def test_hyperparameter_setters_validate_and_take_effect():
    inputs, outputs = mlp()
    model = zg.ZeroGradModel(inputs, outputs, epsilon=EPS, seed=0)
    assert model.alpha == pytest.approx(2 * EPS)
    model.epsilon = 0.05
    assert model.epsilon == pytest.approx(0.05)
    with pytest.raises(ValueError, match=r"`quantile` must be a number in \[0, 1\)"):
        model.quantile = 1.0
    with pytest.raises(ValueError, match=r"`epsilon` must be in \(0, 1\]"):
        model.epsilon = -1
    x, y = robustness_problem(64)
    model.compile(**compile_kwargs())
    history = model.fit(x, y, batch_size=64, epochs=1, verbose=0).history
    assert history["mean_abs_delta"][0] <= 0.05 + 1e-6


@pytest.mark.parametrize("kwargs, message", [
    (dict(epsilon=0), r"`epsilon` must be in \(0, 1\]"),
    (dict(epsilon=8), r"8/255"),
    (dict(epsilon=EPS, alpha=0), r"`alpha` must be a finite number > 0"),
    (dict(epsilon=EPS, quantile=1), r"`quantile` must be a number in \[0, 1\)"),
    (dict(epsilon=EPS, zero_iters=0), r"`zero_iters` must be an integer >= 1"),
    (dict(epsilon=EPS, init="normal"), r"`init` must be one of"),
    (dict(epsilon=EPS, quantile_method="median"), r"`quantile_method` must be one of"),
    (dict(epsilon=EPS, validation_pgd_steps=-1), r"`validation_pgd_steps`"),
])
def test_bad_model_arguments(kwargs, message):
    inputs, outputs = mlp()
    with pytest.raises(ValueError, match=message):
        zg.ZeroGradModel(inputs, outputs, **kwargs)


@pytest.mark.parametrize("cls, kwargs, message", [
    (zg.MultiGradModel, dict(samples=0), r"`samples` must be an integer >= 1"),
    (zg.MultiGradModel, dict(samples=2, threshold=3), r"`threshold` must be an integer in \[1, 2\]"),
    (zg.PGDModel, dict(steps=0), r"`steps` must be an integer >= 1"),
    (zg.PGDModel, dict(restarts=0), r"`restarts` must be an integer >= 1"),
    (zg.NFGSMModel, dict(noise_magnitude=0), r"`noise_magnitude`"),
])
def test_bad_subclass_arguments(cls, kwargs, message):
    inputs, outputs = mlp()
    with pytest.raises(ValueError, match=message):
        cls(inputs, outputs, epsilon=EPS, **kwargs)


def test_model_argument_errors():
    inputs, outputs = mlp()
    with pytest.raises(ValueError, match="either `inputs` and `outputs`"):
        zg.ZeroGradModel(epsilon=EPS)
    with pytest.raises(ValueError, match="either `inputs` and `outputs`"):
        zg.ZeroGradModel(inputs, outputs, model=keras.Model(inputs, outputs), epsilon=EPS)
    with pytest.raises(TypeError, match="must be a keras.Model"):
        zg.ZeroGradModel(model="resnet", epsilon=EPS)


def test_integer_images_are_rejected_with_a_clear_message():
    x, y = robustness_problem(64)
    inputs, outputs = mlp()
    model = zg.ZeroGradModel(inputs, outputs, epsilon=EPS, seed=0)
    model.compile(**compile_kwargs())
    with pytest.raises(TypeError, match="floating point with values in \\[0, 1\\]"):
        model.fit((x * 255).astype(np.uint8), y, epochs=1, verbose=0)


def test_base_arguments_such_as_the_dtype_policy_survive_saving(tmp_path):
    inputs, outputs = mlp()
    model = zg.FGSMModel(inputs, outputs, epsilon=EPS, seed=0, dtype="mixed_float16",
                         trainable=False, name="robust")
    config = model.get_config()
    assert config["name"] == "robust" and config["trainable"] is False
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.dtype_policy.name == "mixed_float16"
    assert (loaded.name, loaded.trainable) == ("robust", False)
