import zlib

import numpy as np
import pytest
import tensorflow as tf

import zerograd_tf as zg

QS = [0.0, 0.1, 0.35, 0.5, 0.9, 0.99]
SHAPES = [(1, 1), (3, 2), (4, 7), (2, 5, 5, 3), (5, 97), (3, 16, 16, 3)]


def _data(kind, shape, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    if kind == "abs":
        x = np.abs(x)
    elif kind == "ties":
        x = np.round(np.abs(x) * 2) / 2
    elif kind == "zeros":
        x = np.abs(x)
        x[rng.random(shape) < 0.6] = 0.0
    elif kind == "tiny":
        x = np.abs(x) * 1e-30  # subnormal-range gradients
    return x


@pytest.mark.parametrize("method", zg.QUANTILE_METHODS)
@pytest.mark.parametrize("kind", ["abs", "signed", "ties", "zeros", "tiny"])
def test_matches_numpy(method, kind):
    rng = np.random.default_rng(zlib.crc32(f"{method}-{kind}".encode()))
    for shape in SHAPES:
        x = _data(kind, shape, rng)
        for q in QS:
            expected = np.quantile(x.reshape(shape[0], -1), q, axis=1)
            got = zg.per_example_quantile(tf.constant(x), q, method=method).numpy()
            # float32 precision relative to the data's scale (interpolating
            # across zero cancels, so a purely relative bound is too strict).
            atol = 1e-6 * float(np.abs(x).max())
            np.testing.assert_allclose(got, expected, rtol=2e-6, atol=atol,
                                       err_msg=f"{shape} q={q}")


@pytest.mark.slow
@pytest.mark.parametrize("method", zg.QUANTILE_METHODS)
def test_matches_numpy_under_xla(method):
    rng = np.random.default_rng(7)
    x = np.abs(rng.standard_normal((6, 4, 4, 3))).astype(np.float32)
    x[:, :2] = 0.0
    for q in QS:
        fn = tf.function(lambda t, q=q: zg.per_example_quantile(t, q, method=method),
                         jit_compile=True)
        expected = np.quantile(x.reshape(6, -1), q, axis=1)
        np.testing.assert_allclose(fn(tf.constant(x)).numpy(), expected, rtol=2e-6)


@pytest.mark.parametrize("method", ["bisect", "sort"])
def test_tensor_quantile_level(method):
    rng = np.random.default_rng(3)
    x = rng.random((4, 50)).astype(np.float32)
    q = tf.Variable(0.2)
    fn = tf.function(lambda t: zg.per_example_quantile(t, q, method=method),
                     jit_compile=True)
    np.testing.assert_allclose(fn(x).numpy(), np.quantile(x, 0.2, axis=1), rtol=2e-6)
    q.assign(0.8)
    np.testing.assert_allclose(fn(x).numpy(), np.quantile(x, 0.8, axis=1), rtol=2e-6)


def test_q_one_is_the_maximum():
    x = np.random.default_rng(0).random((3, 10)).astype(np.float32)
    for method in zg.QUANTILE_METHODS:
        np.testing.assert_array_equal(
            zg.per_example_quantile(x, 1.0, method=method).numpy(), x.max(axis=1))


def test_errors():
    with pytest.raises(ValueError, match="`q` must be a number in \\[0, 1\\]"):
        zg.per_example_quantile(np.ones((2, 3), np.float32), 1.5)
    with pytest.raises(ValueError, match="`method` must be one of"):
        zg.per_example_quantile(np.ones((2, 3), np.float32), 0.5, method="median")
    with pytest.raises(ValueError, match="top_k"):
        zg.per_example_quantile(np.ones((2, 3), np.float32), tf.Variable(0.5),
                                method="top_k")


@pytest.mark.parametrize("kind", ["abs", "ties", "zeros", "tiny"])
def test_non_negative_bisection_equals_the_general_one_bit_for_bit(kind):
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    for shape in SHAPES:
        x = _data(kind, shape, rng)
        x.reshape(-1)[0] = np.inf  # the largest key
        for q in QS:
            general = zg.per_example_quantile(x, q, method="bisect").numpy()
            fast = zg.per_example_quantile(x, q, method="bisect", non_negative=True).numpy()
            np.testing.assert_array_equal(fast, general, err_msg=f"{shape} q={q}")
            rows = x.reshape(shape[0], -1)
            finite = np.isfinite(rows).all(axis=1)
            if finite.any():
                np.testing.assert_allclose(
                    fast[finite], np.quantile(rows[finite], q, axis=1), rtol=2e-6,
                    atol=1e-6 * float(rows[finite].max()))
