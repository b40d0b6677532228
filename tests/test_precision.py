import keras
import numpy as np
import pytest
import tensorflow as tf

import zerograd_tf as zg
from zerograd_tf import dtype_policies, precision
from zerograd_tf.attacks import ops
from zerograd_tf.objectives import model_objective
from zerograd_tf.runs.config import RunConfig

AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512bw\n"
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"
ZEN4 = ("processor\t: 0\nmodel name\t: AMD EPYC 9R14 96-Core Processor\n"
        "flags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n")


def test_bfloat16_units_are_detected_from_the_cpu_flags():
    assert not precision.cpu_has_bfloat16_units(AVX2_ONLY)
    assert precision.cpu_has_bfloat16_units(SAPPHIRE_RAPIDS)
    assert precision.cpu_has_bfloat16_units(GRAVITON3)
    assert not precision.cpu_has_bfloat16_units("")
    # Which units: AMX's matrix tiles gain far more than AVX512-BF16's dot
    # products, so result records name them.
    assert precision.cpu_bfloat16_flags(SAPPHIRE_RAPIDS) == ("avx512_bf16", "amx_bf16")
    assert precision.cpu_bfloat16_flags(ZEN4) == ("avx512_bf16",)
    assert precision.cpu_bfloat16_flags(GRAVITON3) == ("bf16",)
    assert precision.cpu_bfloat16_flags(AVX2_ONLY) == ()


def test_the_fastest_precision_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(precision, "_accelerators", lambda: (False, False))
    assert precision.fastest_precision(AVX2_ONLY) == "float32"
    assert precision.fastest_precision(SAPPHIRE_RAPIDS) == "mixed_bfloat16"
    monkeypatch.setattr(precision, "_accelerators", lambda: (False, True))
    assert precision.fastest_precision(AVX2_ONLY) == "mixed_float16"
    monkeypatch.setattr(precision, "_accelerators", lambda: (True, False))
    assert precision.fastest_precision(AVX2_ONLY) == "mixed_bfloat16"


def test_auto_resolves_to_float32_until_parity_is_shown():
    assert precision.resolve_precision("auto") == "float32"
    for name in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert precision.resolve_precision(name) == name
    with pytest.raises(ValueError, match="precision must be one of auto, float32"):
        precision.resolve_precision("float64")


def test_auto_and_its_reason_follow_the_committed_parity_records():
    # "auto" may leave float32 only when no committed row of the parity
    # study misses its target; while rows miss, the printed reason says so.
    import os

    from zerograd_tf.benchmarking import study_docs

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    missed = study_docs.parity_missed(
        f"{root}/benchmarks/studies/precision_parity.json",
        f"{root}/benchmarks/results/precision_parity",
        f"{root}/benchmarks/results/co_study_v3")
    assert missed, "no parity row misses: revisit what 'auto' resolves to"
    assert precision.resolve_precision("auto") == "float32"
    assert "missed the robustness-parity target" in precision.AUTO_REASON
    # What zerograd-train prints for auto: the choice and why, once; bfloat16
    # units are named as an explicit choice, not as "fastest" (whether they
    # are faster depends on the network, docs/precision.md).
    for fastest in ("float32", "mixed_bfloat16", "mixed_float16"):
        note = precision.auto_note(fastest)
        assert note.startswith("float32 (--precision auto: bfloat16 training missed")
        assert "fastest" not in note and note.count("float32:") == 0
        assert (f"--precision {fastest}, which this hardware has units for, is an "
                "explicit choice" in note) == (fastest != "float32")
    # The reason names exactly the settings where a row misses.
    names = {"mnist": "MNIST", "cifar10": "CIFAR-10"}
    assert {name for name in names.values() if name in precision.AUTO_REASON} == {
        names.get(setting, setting) for setting, _ in missed}


def test_the_config_records_the_precision_it_resolved_and_reads_old_files():
    class Data:
        input_shape, num_classes, augment, x_val = (8, 8, 1), 3, False, None

    assert RunConfig().precision == "auto"
    assert RunConfig(precision="mixed_bfloat16").resolved(Data()).precision == "mixed_bfloat16"
    assert RunConfig().resolved(Data()).precision == "float32"
    old = RunConfig().to_dict()
    del old["precision"]
    assert RunConfig.from_dict({**old, "mixed_precision": True}).precision == "mixed_float16"
    assert RunConfig.from_dict({**old, "mixed_precision": False}).precision == "float32"
    with pytest.raises(ValueError, match="precision"):
        RunConfig(precision="float64")


def _classifier(policy, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    return dtype_policies.with_dtype_policy(keras.Model(inputs, outputs), policy)


def _data(n=48):
    rng = np.random.default_rng(0)
    return rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, n)


MODELS = {
    "clean": lambda c: zg.CleanModel(model=c, epsilon=0.1, seed=0, dtype="mixed_bfloat16"),
    "fgsm_rs": lambda c: zg.FGSMModel(model=c, epsilon=0.1, random_init=True, seed=0,
                                      dtype="mixed_bfloat16"),
    "zerograd": lambda c: zg.ZeroGradModel(model=c, epsilon=0.1, seed=0,
                                           dtype="mixed_bfloat16"),
    "multigrad": lambda c: zg.MultiGradModel(model=c, epsilon=0.1, seed=0,
                                             dtype="mixed_bfloat16"),
    "n_fgsm": lambda c: zg.NFGSMModel(model=c, epsilon=0.1, seed=0, dtype="mixed_bfloat16"),
    "pgd": lambda c: zg.PGDModel(model=c, epsilon=0.1, steps=2, seed=0,
                                 dtype="mixed_bfloat16"),
    "gradalign": lambda c: zg.GradAlignModel(model=c, epsilon=0.1, seed=0,
                                             dtype="mixed_bfloat16"),
}


@pytest.mark.parametrize("method", list(MODELS))
def test_every_model_trains_in_bfloat16_with_a_float32_perturbation(method):
    model = MODELS[method](_classifier("mixed_bfloat16"))
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    x, y = _data()
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    conv = model.classifier.layers[1]
    assert conv.compute_dtype == "bfloat16" and conv.kernel.dtype == "float32"
    assert model.classifier.get_layer("logits").compute_dtype == "float32"
    # The attack: float32 delta within its bound, BatchNorm statistics untouched.
    bn = next(layer for layer in model.classifier.layers
              if isinstance(layer, keras.layers.BatchNormalization))
    before = [v.numpy().copy() for v in bn.non_trainable_variables]
    delta, _ = model.perturb(tf.constant(x[:16]), tf.constant(y[:16]),
                             tf.constant([1, 2], tf.int64), model.read_hyperparameters())
    assert delta.dtype == tf.float32
    # N-FGSM does not project: noise 2 eps plus a step of eps.
    bound = 0.3 if method == "n_fgsm" else 0.1
    assert float(tf.reduce_max(tf.abs(delta))) <= bound + 1e-6
    for a, b in zip(before, bn.non_trainable_variables):
        np.testing.assert_array_equal(a, b.numpy())


def test_zerograd_masks_a_float32_gradient_in_bfloat16():
    # The mask ranks |grad| of a float32 tensor (the input gradient of a
    # bfloat16 forward pass, cast back at the input). Elements equal to the
    # threshold are kept, so with bfloat16's ties the zeroed fraction can
    # fall below q, never above it (64 elements: q rounds up to 23/64).
    model = MODELS["zerograd"](_classifier("mixed_bfloat16"))
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(16)
    model.build(x.shape)
    delta, info = model.perturb(tf.constant(x), tf.constant(y), tf.constant([0, 1], tf.int64),
                                model.read_hyperparameters())
    assert delta.dtype == tf.float32
    zeroed = info["zeroed_fraction"].numpy()
    assert (zeroed <= 23 / 64 + 1e-6).all() and zeroed.mean() > 0.2


def test_evaluation_attacks_a_float32_copy_unless_asked_otherwise():
    trained = _classifier("mixed_bfloat16")
    model = zg.FGSMModel(model=trained, epsilon=0.1, seed=0, dtype="mixed_bfloat16")
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(32)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    weights = [w.copy() for w in trained.get_weights()]
    float32 = zg.evaluate_robustness(model, (x, y), 0.1, steps=3, restarts=1)
    as_trained = zg.evaluate_robustness(model, (x, y), 0.1, steps=3, restarts=1,
                                        precision="as_trained")
    assert float32["precision"] == "float32" and as_trained["precision"] == "mixed_bfloat16"
    # The copy has the trained weights; the model itself is left as it was.
    copy = dtype_policies.float32_copy(model)
    assert all(layer.dtype_policy.name == "float32" for layer in copy.layers)
    for a, b in zip(copy.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    assert trained.layers[1].compute_dtype == "bfloat16"
    # The float32 copy's clean accuracy is its own forward pass's.
    logits = copy(x, training=False)
    expected = np.mean(np.argmax(logits, -1) == y)
    assert float32["clean_accuracy"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="precision"):
        zg.evaluate_robustness(model, (x, y), 0.1, precision="bfloat16")


def test_a_float32_model_is_evaluated_as_it_is():
    net = _classifier("float32")
    assert dtype_policies.float32_copy(net) is net
    x, y = _data(8)
    assert zg.evaluate_robustness(net, (x, y), 0.1, steps=1, restarts=1)["precision"] == \
        "float32"


def test_a_subclassed_lower_precision_model_cannot_be_copied_and_says_what_to_do():
    class Net(keras.Model):
        def __init__(self):
            super().__init__(dtype="mixed_bfloat16")
            self.dense = keras.layers.Dense(3, dtype="mixed_bfloat16")

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="as_trained"):
        dtype_policies.float32_copy(net)


def test_input_gradients_through_float16_layers_do_not_underflow():
    # Weights so small that the float16 backward pass flushes the input
    # gradient to zero without loss scaling.
    def net(policy):
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(4, kernel_initializer=keras.initializers.Constant(1e-5),
                                    dtype=policy)(inputs)
        outputs = keras.layers.Dense(2, name="logits", dtype="float32",
                                     kernel_initializer=keras.initializers.Constant(
                                         [[1e-4, -1e-4]] * 4))(hidden)
        return keras.Model(inputs, outputs)

    x = tf.constant(np.full((2, 4), 0.5, np.float32))
    y = tf.constant([0, 1])
    reference = ops.loss_and_gradient(model_objective(net("float32")), x, y)[1]
    objective = model_objective(net("mixed_float16"))
    assert objective.gradient_scale > 1
    gradient = ops.loss_and_gradient(objective, x, y)[1]
    assert gradient.dtype == tf.float32
    unscaled = lambda a, b: objective(a, b)  # noqa: E731  (no gradient_scale)
    assert not np.any(ops.loss_and_gradient(unscaled, x, y)[1].numpy())
    np.testing.assert_allclose(gradient.numpy(), reference.numpy(), rtol=0.02)
    assert model_objective(net("mixed_bfloat16")).gradient_scale == 1.0


def test_float16_trains_with_loss_scaling_and_a_scaled_attack_gradient():
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Flatten(dtype="mixed_float16")(inputs)
    h = keras.layers.Dense(16, activation="relu", dtype="mixed_float16")(h)
    outputs = keras.layers.Dense(3, name="logits", dtype="float32")(h)
    model = zg.ZeroGradModel(inputs, outputs, epsilon=0.1, seed=0, dtype="mixed_float16")
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.attack_objective().gradient_scale > 1
    x, y = _data()
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert float(model.optimizer.iterations.numpy()) == 6


def test_a_run_or_search_saved_with_mixed_precision_is_the_same_configuration(tmp_path):
    # Resuming, re-evaluating or continuing a search of 0.1.0 must not see a
    # changed configuration only because the precision setting was renamed.
    import json

    from zerograd_tf.runs import run_dir, tuning

    class Data:
        input_shape, num_classes, augment, x_val = (8, 8, 1), 3, False, None

    config = RunConfig(epochs=2).resolved(Data())
    old = config.to_dict()
    del old["precision"]
    assert run_dir._differences({**old, "mixed_precision": False}, config) == []
    assert run_dir._differences({**old, "mixed_precision": True}, config) == ["precision"]
    path = tmp_path / "search_config.json"
    path.write_text(json.dumps({"tuner": "random", "config": {**old, "mixed_precision": False}}))
    tuning._check_same_search(str(path), {"tuner": "random", "config": config.to_dict()}, False)


def test_the_float32_copy_opens_nested_models_and_ignores_the_global_policy():
    block = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)], name="block")
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2, name="logits")(block(inputs))
    net = dtype_policies.with_dtype_policy(keras.Model(inputs, outputs), "mixed_bfloat16")
    inner = net.get_layer("block").layers[0]
    assert inner.compute_dtype == "bfloat16" and precision.policy_of(net) == "mixed_bfloat16"
    copy = dtype_policies.float32_copy(net)
    assert precision.policy_of(copy) == "float32"
    assert copy.get_layer("block").layers[0].compute_dtype == "float32"
    for a, b in zip(copy.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Built while the global policy is mixed, a float32 copy is still float32.
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        copy = dtype_policies.float32_copy(net)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert precision.policy_of(copy) == "float32"
    x = np.random.default_rng(0).random((3, 4), dtype=np.float32)
    assert copy(x).dtype == "float32"


def test_a_mixed_precision_model_starts_from_the_float32_weights():
    # The same seed gives the same initial weights in every precision, so a
    # parity study changes one thing only.
    from zerograd_tf.runs import pipeline

    class Data:
        input_shape, num_classes, augment, x_val = (8, 8, 1), 3, False, None
        x_train = np.zeros((16, 8, 8, 1), np.float32)

        def channel_stats(self):
            return [0.5], [0.25]

    config = RunConfig(epochs=1, model="small_cnn").resolved(Data())
    a = pipeline.build_model(config, Data())
    b = pipeline.build_model(config.replace(precision="mixed_bfloat16"), Data())
    assert precision.policy_of(b) == "mixed_bfloat16"
    for u, v in zip(a.classifier.get_weights(), b.classifier.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_a_mixed_precision_sequential_classifier_has_a_float32_copy():
    net = dtype_policies.with_dtype_policy(keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2, name="logits")]),
        "mixed_bfloat16")
    assert precision.policy_of(net) == "mixed_bfloat16"
    copy = dtype_policies.float32_copy(net)
    assert precision.policy_of(copy) == "float32"
    for a, b in zip(copy.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, b)
