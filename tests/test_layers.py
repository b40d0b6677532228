"""`FusedBatchNormalization` computes what Keras' batch normalization does."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

import zerograd_tf as zg
from zerograd_tf.layers import FusedBatchNormalization


def _pair(shape=(16, 6, 6, 5), seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    fused, plain = FusedBatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)
    fused.build(shape)
    plain.build(shape)
    for variable in fused.weights:
        value = rng.standard_normal(variable.shape).astype("float32")
        variable.assign(value ** 2 + 0.1 if "variance" in variable.path else value)
    plain.set_weights(fused.get_weights())
    x = tf.constant(rng.standard_normal(shape).astype("float32") * 3 + 1)
    return fused, plain, x


@pytest.mark.parametrize("training", [True, False])
def test_outputs_and_moving_statistics_match_keras(training):
    fused, plain, x = _pair(momentum=0.9)
    before = fused.moving_variance.numpy().copy()
    np.testing.assert_allclose(fused(x, training=training), plain(x, training=training),
                               atol=1e-5)
    for a, b in zip(fused.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    # In training the moving statistics moved (as Keras' did), else not.
    assert np.allclose(fused.moving_variance.numpy(), before) != training


def test_input_and_weight_gradients_match_keras_to_second_order():
    """GradAlign differentiates through input gradients: the fused kernel's
    gradient must itself be differentiable, and agree."""
    def gradients(layer, x):
        with tf.GradientTape(persistent=True) as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                loss = tf.reduce_sum(tf.sin(layer(x, training=True)))
            gx = inner.gradient(loss, x)
            penalty = tf.reduce_sum(gx * gx)
        return [gx, outer.gradient(penalty, x),
                *outer.gradient(penalty, layer.trainable_variables)]

    fused, plain, x = _pair()
    for a, b in zip(gradients(fused, x), gradients(plain, x)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_under_xla_and_stateless_call():
    fused, plain, x = _pair()
    compiled = tf.function(lambda t: fused(t, training=True), jit_compile=True)
    np.testing.assert_allclose(compiled(x), plain(x, training=True), atol=1e-5)
    before = [w.copy() for w in fused.get_weights()]
    _, new = fused.stateless_call([v.value for v in fused.trainable_variables],
                                  [v.value for v in fused.non_trainable_variables], x,
                                  training=True)
    for a, b in zip(fused.get_weights(), before):  # no trace left on the layer
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(new[0], before[2])  # but the new statistics were computed


_HAS_RENORM = "renorm" in inspect.signature(keras.layers.BatchNormalization).parameters


@pytest.mark.parametrize("kwargs", [
    dict(center=False), dict(axis=1),
    pytest.param(dict(renorm=True), marks=pytest.mark.skipif(
        not _HAS_RENORM, reason="this Keras has no batch renormalization (3.11+)"))])
def test_other_configurations_fall_back_to_keras(kwargs):
    fused, plain, x = _pair(**kwargs)
    np.testing.assert_allclose(fused(x, training=True), plain(x, training=True), atol=1e-5)


@pytest.mark.slow
def test_the_residual_networks_use_it_and_save(tmp_path):
    from zerograd_tf import architectures

    classifier = architectures.build_classifier("preact_resnet18", (8, 8, 3), 4)
    assert any(isinstance(layer, FusedBatchNormalization) for layer in classifier.layers)
    model = zg.FGSMModel(model=classifier, epsilon=0.1, seed=0)
    x = np.random.default_rng(0).random((4, 8, 8, 3), dtype="float32")
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
