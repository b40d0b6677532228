"""GradAlign: the regulariser, its double backprop, and its guarantees."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zerograd_tf as zg
from conftest import mlp, small_cnn
from zerograd_tf import objectives
from zerograd_tf.models.gradalign import gradient_alignment

EPS = 0.1


def _data(seed=0, shape=(4, 4, 1), n=16, classes=2):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (n, *shape)).astype(np.float32),
            rng.integers(0, classes, n))


def test_the_regulariser_equals_a_hand_computed_cosine():
    keras.utils.set_random_seed(0)
    inputs, outputs = mlp()
    model = keras.Model(inputs, outputs)
    x, y = _data()
    eta = np.random.default_rng(1).uniform(-EPS, EPS, x.shape).astype(np.float32)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def gradient(points):
        points = tf.constant(points)
        with tf.GradientTape() as tape:
            tape.watch(points)
            total = tf.reduce_sum(loss(y, model(points)))
        return tape.gradient(total, points).numpy().reshape(len(x), -1)

    g1, g2 = gradient(x), gradient(x + eta)
    expected = (g1 * g2).sum(1) / (np.linalg.norm(g1, axis=1) * np.linalg.norm(g2, axis=1))
    cosine, valid = gradient_alignment(objectives.model_objective(model), x, y, eta)
    assert valid.numpy().all()
    np.testing.assert_allclose(cosine.numpy(), expected, rtol=1e-4, atol=1e-6)
    assert expected.min() < 0.999  # a non-linear model: the test can fail


def _penalty_and_gradients(model, x, y, lam=1.0):
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with tf.GradientTape() as tape:
        penalty, info = model.regularization(tf.constant(x), tf.constant(y),
                                             tf.constant([0, 0], tf.int64),
                                             model.read_hyperparameters())
    return penalty, tape.gradient(penalty, model.trainable_weights)


def test_the_weights_get_gradients_through_the_input_gradients():
    keras.utils.set_random_seed(0)
    inputs, outputs = mlp()
    model = zg.GradAlignModel(inputs, outputs, epsilon=EPS, gradalign_lambda=1.0, seed=0)
    x, y = _data()
    penalty, gradients = _penalty_and_gradients(model, x, y)
    assert float(penalty) > 1e-4
    assert all(g is not None for g in gradients)
    assert max(float(tf.reduce_max(tf.abs(g))) for g in gradients) > 1e-6


def test_the_regulariser_is_zero_for_a_linear_model():
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
    model = zg.GradAlignModel(inputs, outputs, epsilon=EPS, gradalign_lambda=1.0, seed=0)
    x, y = _data()
    penalty, gradients = _penalty_and_gradients(model, x, y)
    assert abs(float(penalty)) < 1e-6
    assert max(float(tf.reduce_max(tf.abs(g))) for g in gradients if g is not None) < 1e-5


def test_the_penalty_is_in_the_loss_and_the_alignment_is_logged():
    keras.utils.set_random_seed(0)
    x, y = _data(n=64)
    histories = {}
    for lam in (0.0, 5.0):
        keras.utils.set_random_seed(0)
        inputs, outputs = mlp()
        model = zg.GradAlignModel(inputs, outputs, epsilon=EPS, gradalign_lambda=lam, seed=0)
        model.compile(keras.optimizers.SGD(0.0),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        histories[lam] = model.fit(x, y, batch_size=64, epochs=1, verbose=0).history
    alignment = histories[5.0]["gradient_alignment"][0]
    assert -1 <= alignment < 1
    # With a zero learning rate both runs see the same model: the loss
    # differs by exactly lambda * (1 - alignment).
    np.testing.assert_allclose(histories[5.0]["loss"][0] - histories[0.0]["loss"][0],
                               5.0 * (1 - alignment), rtol=1e-4)


def test_batchnorm_statistics_move_only_with_the_training_pass():
    x, y = _data(shape=(8, 8, 1), n=32, classes=3)
    keras.utils.set_random_seed(0)
    inputs, outputs = small_cnn(batch_norm=True)
    model = zg.GradAlignModel(inputs, outputs, epsilon=EPS, seed=3)
    reference = keras.models.clone_model(model.classifier)
    reference.set_weights(model.classifier.get_weights())
    model.compile(keras.optimizers.SGD(0.1),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    delta, _ = zg.fgsm(model.attack_objective(), x, y, EPS, EPS, init="zero")
    x_adv = np.clip(x + delta.numpy(), 0, 1)
    model.train_on_batch(x, y)
    reference(x_adv, training=True)  # one BatchNorm update on the adversarial batch
    bn = [l for l in model.classifier.layers if isinstance(l, keras.layers.BatchNormalization)][0]
    ref = [l for l in reference.layers if isinstance(l, keras.layers.BatchNormalization)][0]
    np.testing.assert_allclose(bn.moving_mean.numpy(), ref.moving_mean.numpy(), rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(bn.moving_variance.numpy(), ref.moving_variance.numpy(),
                               rtol=1e-5, atol=1e-7)


def test_sample_weights_and_bad_arguments():
    keras.utils.set_random_seed(0)
    inputs, outputs = mlp()
    model = zg.GradAlignModel(inputs, outputs, epsilon=EPS, seed=0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(n=32)
    history = model.fit(x, y, sample_weight=np.linspace(0, 1, 32), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(ValueError, match="`gradalign_lambda` must be a number >= 0"):
        zg.GradAlignModel(inputs, outputs, epsilon=EPS, gradalign_lambda=-1)


@pytest.mark.slow
def test_gradalign_from_the_command_line(tmp_path):
    import json

    from conftest import make_npz
    from zerograd_tf.trainers import train as train_program

    data = make_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    assert train_program.main(["--dataset", data, "--output", str(out), "--method",
                               "gradalign", "--gradalign-lambda", "0.7", "--epochs", "1",
                               "--batch-size", "32", "--val-size", "32", "--val-pgd-steps",
                               "1", "--eval-steps", "1", "--eval-restarts", "1", "--eval-attack", "pgd",
                               "--verbose", "0"]) == 0
    model = keras.models.load_model(out / "model.keras")
    assert isinstance(model, zg.GradAlignModel) and model.gradalign_lambda == 0.7
    assert "gradient_alignment" in json.loads((out / "history.json").read_text())
