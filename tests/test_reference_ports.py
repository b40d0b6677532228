"""ZeroGrad and MultiGrad against independent NumPy ports of the reference
code (rohban-lab/catastrophic_overfitting, train_cifar.py: `quantile_fgsm`
and `consensus_fgsm`), on a non-linear network whose input gradient the
port computes by hand (no TensorFlow in the port).

Only the random start is taken from the library (the same stateless draw):
the gradient, the quantile, the mask, the sign step and both clips are the
port's own, in the reference's order.
"""

import keras
import numpy as np
import tensorflow as tf

import zerograd_tf as zg
from zerograd_tf.attacks import ops

EPS = 0.1


def tanh_network(seed=0, size=16, hidden=12, classes=4):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 1.0, (size, hidden)).astype(np.float32)
    b1 = rng.normal(0, 0.1, hidden).astype(np.float32)
    w2 = rng.normal(0, 1.0, (hidden, classes)).astype(np.float32)
    b2 = rng.normal(0, 0.1, classes).astype(np.float32)
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(hidden, activation="tanh"),
                              keras.layers.Dense(classes)])
    model.set_weights([w1, b1, w2, b2])
    return model, (w1, b1, w2, b2)


def port_input_gradient(weights, x, y):
    """d(cross-entropy)/dx of the tanh network, by hand, in float64 (the
    reference's mean over the batch only rescales every gradient)."""
    w1, b1, w2, b2 = (np.asarray(w, np.float64) for w in weights)
    flat = x.reshape(len(x), -1).astype(np.float64)
    hidden = np.tanh(flat @ w1 + b1)
    logits = hidden @ w2 + b2
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    probabilities[np.arange(len(y)), y] -= 1.0
    gradient = ((probabilities @ w2.T) * (1.0 - hidden ** 2)) @ w1.T
    return gradient.reshape(x.shape)


def port_quantile_fgsm(weights, x, y, epsilon, alpha, q, delta0):
    """`quantile_fgsm` of the reference, with its start `delta0` given."""
    grad = port_input_gradient(weights, x + delta0, y)
    flat = np.abs(grad).reshape(len(x), -1)
    q_grad = np.quantile(flat, q, axis=1)  # torch.quantile: linear, as numpy
    grad[np.abs(grad) < q_grad.reshape(-1, 1, 1, 1)] = 0
    d = np.clip(delta0 + np.float32(alpha) * np.sign(grad).astype(np.float32),
                np.float32(-epsilon), np.float32(epsilon))
    return np.maximum(np.minimum(d, 1 - x), 0 - x), flat, q_grad


def port_consensus_fgsm(weights, x, y, epsilon, alpha, starts, threshold):
    """`consensus_fgsm` of the reference (parallel form), starts given."""
    samples = len(starts)
    grads = [port_input_gradient(weights, x + start, y) for start in starts]
    g = sum(np.sign(grad) for grad in grads)
    grad = np.where(np.abs(g) < threshold - (samples - threshold), 0.0, g)
    d = np.clip(np.float32(alpha) * np.sign(grad).astype(np.float32),
                np.float32(-epsilon), np.float32(epsilon))
    return np.maximum(np.minimum(d, 1 - x), 0 - x)


def data(seed, n=32):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 4, 4, 1)).astype(np.float32)
    x[:4] = np.round(x[:4])  # some pixels on the box's faces
    return x, rng.integers(0, 4, n)


def test_zerograd_matches_the_reference_quantile_fgsm():
    model, weights = tanh_network(seed=1)
    x, y = data(seed=2)
    for q, seed in [(0.35, 0), (0.5, 1), (0.7, 2), (0.0, 3)]:
        delta, info = zg.attacks.zerograd(model, x, y, EPS, 2 * EPS, quantile=q, seed=seed)
        delta0 = ops.random_start(tf.constant(x), EPS, "random", ops.as_seed(seed)).numpy()
        expected, flat, threshold = port_quantile_fgsm(weights, x, y, EPS, 2 * EPS, q, delta0)
        # No magnitude within float32 rounding of the threshold: the two
        # gradients (float32 here, float64 in the port) mask alike.
        gap = np.abs(flat - threshold[:, None]) / np.maximum(threshold[:, None], 1e-12)
        assert gap.min() > 1e-4 or q == 0.0
        np.testing.assert_array_equal(delta.numpy(), expected)
        zeroed = (flat < threshold[:, None]).mean(axis=1)
        np.testing.assert_allclose(info["zeroed_fraction"].numpy(), zeroed, rtol=1e-6)


def test_multigrad_matches_the_reference_consensus_fgsm():
    model, weights = tanh_network(seed=3)
    x, y = data(seed=4)
    for samples, threshold, seed in [(3, 3, 0), (3, 2, 1), (4, 3, 2)]:
        delta, _ = zg.attacks.multigrad(model, x, y, EPS, 2 * EPS, samples=samples,
                                        threshold=threshold, seed=seed)
        shape = tf.concat([[samples], tf.shape(x)], 0)
        noise = ops.uniform_noise(shape, EPS, ops.as_seed(seed), batch_axis=1).numpy()
        starts = [np.maximum(np.minimum(n, 1 - x), 0 - x) for n in noise]
        expected = port_consensus_fgsm(weights, x, y, EPS, 2 * EPS, starts, threshold)
        np.testing.assert_array_equal(delta.numpy(), expected)
