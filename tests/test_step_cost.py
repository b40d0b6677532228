"""`zerograd_tf.benchmarking.step_cost`: the model and step the step-time
benchmarks time (`benchmarks/step_time.py`, `profile_step.py`,
`vs_pytorch.py`)."""

import math

import keras
import numpy as np
import pytest

import zerograd_tf as zg
from zerograd_tf import architectures
from zerograd_tf.benchmarking import step_cost

SHAPE = (8, 8, 1)
CLASSES = 3


def test_every_method_builds_its_model_with_the_timed_arguments():
    classifier = architectures.build_classifier("small_cnn", SHAPE, CLASSES)
    models = {m: step_cost.adversarial_model(m, classifier, epsilon=0.1)
              for m in step_cost.METHODS}
    assert set(models) == {"clean", "fgsm", "fgsm_rs", "zerograd_bisect", "zerograd_sort",
                           "zerograd_top_k", "multigrad3", "n_fgsm", "gradalign", "pgd10"}
    expected = {"clean": zg.CleanModel, "fgsm": zg.FGSMModel, "fgsm_rs": zg.FGSMModel,
                "zerograd_bisect": zg.ZeroGradModel, "zerograd_sort": zg.ZeroGradModel,
                "zerograd_top_k": zg.ZeroGradModel, "multigrad3": zg.MultiGradModel,
                "n_fgsm": zg.NFGSMModel, "gradalign": zg.GradAlignModel, "pgd10": zg.PGDModel}
    for method, model in models.items():
        assert type(model) is expected[method], method
    for method in ("zerograd_bisect", "zerograd_sort", "zerograd_top_k"):
        assert models[method].quantile_method == method.split("_", 1)[1]


@pytest.mark.parametrize("method", ["clean", "fgsm_rs", "zerograd_bisect", "multigrad3"])
def test_a_step_runs_on_a_tiny_input_and_returns_a_finite_loss(method):
    model = step_cost.compiled_model(method, "small_cnn", False, input_shape=SHAPE,
                                     classes=CLASSES, epsilon=0.1)
    step = step_cost.train_step_runner(model, 4, input_shape=SHAPE, classes=CLASSES)
    before = [w.copy() for w in model.get_weights()]
    losses = [step(), step()]
    assert all(isinstance(v, float) and math.isfinite(v) for v in losses)
    # A step updates the weights (momentum SGD).
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_the_compile_settings_and_the_jit_flag_reach_the_model():
    for jit in (False, True):
        model = step_cost.compiled_model("fgsm", "small_cnn", jit, input_shape=SHAPE,
                                         classes=CLASSES)
        assert model.jit_compile is jit
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert math.isclose(float(model.optimizer.learning_rate.numpy()), 0.01, rel_tol=1e-6)
    assert model.optimizer.momentum == 0.9
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    step_cost.train_step_runner(model, 2, input_shape=SHAPE, classes=CLASSES)()
    compiled = {m.name: m for m in model.metrics}["compile_metrics"]
    assert [m.name for m in compiled.metrics] == ["accuracy"]


def test_a_ready_classifier_is_wrapped_with_the_given_metrics_and_data():
    inputs = keras.Input(SHAPE)
    classifier = keras.Model(inputs, keras.layers.Dense(CLASSES)(keras.layers.Flatten()(inputs)))
    model = step_cost.compiled_model("zerograd_bisect", classifier, False, metrics=None)
    assert model.model is classifier
    rng = np.random.default_rng(1)
    x = rng.random((5, *SHAPE), dtype=np.float32)
    y = rng.integers(0, CLASSES, 5).astype(np.int32)
    step = step_cost.train_step_runner(model, 5, input_shape=SHAPE, data=(x, y))
    assert math.isfinite(step())
    assert "compile_metrics" not in [m.name for m in model.metrics]


@pytest.mark.parametrize("method", ["fgsm_rs", "zerograd_bisect"])
def test_a_bfloat16_step_computes_in_bfloat16_and_returns_a_finite_loss(method):
    model = step_cost.compiled_model(method, "small_cnn", False, input_shape=SHAPE,
                                     classes=CLASSES, epsilon=0.1, metrics=None,
                                     precision="mixed_bfloat16")
    assert model.dtype_policy.name == "mixed_bfloat16"
    layers = model.classifier.layers
    assert {layer.compute_dtype for layer in layers[1:-1]} == {"bfloat16"}
    assert layers[-1].name == "logits" and layers[-1].compute_dtype == "float32"
    assert all(w.dtype == "float32" for w in model.classifier.weights)
    step = step_cost.train_step_runner(model, 4, input_shape=SHAPE, classes=CLASSES)
    losses = [step(), step()]
    assert all(isinstance(v, float) and math.isfinite(v) for v in losses)


def test_the_same_call_starts_from_the_same_weights():
    first, second = (step_cost.compiled_model("clean", "small_cnn", False, input_shape=SHAPE,
                                              classes=CLASSES) for _ in range(2))
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("call, names", [
    (lambda: step_cost.compiled_model("zerograd_median", "small_cnn", False),
     ["`method`", "'zerograd_median'", "zerograd_bisect", "pgd10"]),
    (lambda: step_cost.adversarial_model("pgd", None), ["`method`", "'pgd'", "pgd10"]),
    (lambda: step_cost.compiled_model("clean", "resnet50", False),
     ["`network`", "'resnet50'", "small_cnn", "preact_resnet18"]),
    (lambda: step_cost.compiled_model("clean", 3, False), ["`network`", "int"]),
    (lambda: step_cost.compiled_model("clean", "small_cnn", "yes"), ["`jit`", "'yes'"]),
    (lambda: step_cost.compiled_model("clean", "small_cnn", False, precision="bfloat16"),
     ["`precision`", "'bfloat16'", "float32", "mixed_bfloat16", "mixed_float16"]),
    (lambda: step_cost.adversarial_model("clean", None, precision="auto"),
     ["`precision`", "'auto'", "mixed_bfloat16"]),
])
def test_bad_arguments_are_value_errors_naming_the_argument_and_the_valid_values(call, names):
    with pytest.raises(ValueError) as error:
        call()
    for name in names:
        assert name in str(error.value)


def test_the_runner_checks_its_batch():
    model = step_cost.compiled_model("clean", "small_cnn", False, input_shape=SHAPE,
                                     classes=CLASSES)
    for batch_size in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="`batch_size`"):
            step_cost.train_step_runner(model, batch_size, input_shape=SHAPE)
    data = (np.zeros((3, *SHAPE), np.float32), np.zeros(3, np.int32))
    with pytest.raises(ValueError, match=r"`data`.*\(4, 8, 8, 1\).*\(3, 8, 8, 1\)"):
        step_cost.train_step_runner(model, 4, input_shape=SHAPE, data=data)
