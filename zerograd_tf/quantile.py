"""Exact per-example quantiles, the core of ZeroGrad's gradient mask."""

import tensorflow as tf

from zerograd_tf import validation

QUANTILE_METHODS = ("bisect", "sort", "top_k")
DEFAULT_QUANTILE_METHOD = "bisect"

_INT32_MIN = -(2**31)
_SIGN_FLIP = 0x7FFFFFFF


def _order_keys(values):
    """Maps float32 values to int32 keys with the same order.

    Non-negative floats already compare like their bit patterns; for negative
    ones the magnitude bits are flipped so larger magnitudes get smaller keys.
    (-0.0 gets the key just below +0.0, which is harmless: both are equal.)
    """
    bits = tf.bitcast(values, tf.int32)
    return tf.where(bits < 0, tf.bitwise.bitwise_xor(bits, _SIGN_FLIP), bits)


def _keys_to_values(keys):
    bits = tf.where(keys < 0, tf.bitwise.bitwise_xor(keys, _SIGN_FLIP), keys)
    return tf.bitcast(bits, tf.float32)


def _positions(n, q):
    """The numpy 'linear' positions: lower index, upper index and fraction."""
    # A Python float goes straight to float64 (tf.cast would round it to
    # float32 first and shift the interpolation fraction).
    q = tf.convert_to_tensor(q, tf.float64) if isinstance(q, float) else tf.cast(q, tf.float64)
    position = q * tf.cast(n - 1, tf.float64)
    lower = tf.clip_by_value(tf.floor(position), 0.0, tf.cast(n - 1, tf.float64))
    fraction = position - lower
    lower = tf.cast(lower, tf.int32)
    upper = tf.minimum(lower + 1, n - 1)
    return lower, upper, fraction


def _lerp(a, b, t):
    """numpy's `_lerp`: a + t(b - a), computed from the nearer end."""
    t = tf.cast(t, a.dtype)
    diff = b - a
    return tf.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _kth_smallest_bisect(keys, k):
    """The k-th smallest key (0-based) of each row, by binary search on bits.

    Builds the answer's bit pattern from the most significant bit down, in
    the unsigned order of the keys (key XOR sign bit): bit b is set when
    fewer than k + 1 keys lie below the candidate with it set. 32 passes, each
    a compare-and-count over the row; everything stays int32 (7 small ops per
    pass, which matters in graph mode, where per-op dispatch dominates).
    """
    target = tf.cast(k, tf.int32) + 1
    sign = tf.constant(_INT32_MIN, tf.int32)
    answer = tf.zeros(tf.shape(keys)[:1], tf.int32)  # unsigned-order pattern
    for bit in range(31, -1, -1):
        trial = tf.bitwise.bitwise_or(answer, _INT32_MIN if bit == 31 else 1 << bit)
        below = tf.reduce_sum(tf.cast(
            keys < tf.bitwise.bitwise_xor(trial, sign)[:, None], tf.int32), axis=1)
        answer = tf.where(below < target, trial, answer)
    return tf.bitwise.bitwise_xor(answer, sign)


def _kth_smallest_non_negative(keys, k):
    """`_kth_smallest_bisect` for the bit patterns of floats >= 0.

    Non-negative float32 values order like their int32 bit patterns, whose
    sign bit is 0: the search starts at bit 30, 31 passes of 6 small ops.
    """
    target = tf.cast(k, tf.int32) + 1
    answer = tf.zeros(tf.shape(keys)[:1], tf.int32)
    for bit in range(30, -1, -1):
        trial = tf.bitwise.bitwise_or(answer, 1 << bit)
        below = tf.reduce_sum(tf.cast(keys < trial[:, None], tf.int32), axis=1)
        answer = tf.where(below < target, trial, answer)
    return answer


def _quantile_bisect(flat, q, non_negative=False):
    n = tf.shape(flat)[1]
    lower, _, fraction = _positions(n, q)
    if non_negative:
        keys = tf.bitcast(flat, tf.int32)
        low_key = _kth_smallest_non_negative(keys, lower)
        low = tf.bitcast(low_key, tf.float32)
    else:
        keys = _order_keys(flat)
        low_key = _kth_smallest_bisect(keys, lower)
        low = _keys_to_values(low_key)
    # The next order statistic is the same value when it is repeated, else the
    # smallest element above it.
    at_most = tf.reduce_sum(tf.cast(keys <= low_key[:, None], tf.int32), axis=1)
    above = tf.reduce_min(
        tf.where(keys > low_key[:, None], flat, tf.constant(float("inf"))), axis=1
    )
    high = tf.where((at_most > lower + 1) | tf.math.is_inf(above), low, above)
    return _lerp(low, high, fraction)


def _quantile_sort(flat, q, non_negative=False):
    n = tf.shape(flat)[1]
    lower, upper, fraction = _positions(n, q)
    ordered = tf.sort(flat, axis=1)
    low = tf.gather(ordered, lower, axis=1)
    high = tf.gather(ordered, upper, axis=1)
    return _lerp(low, high, fraction)


def _quantile_top_k(flat, q, non_negative=False):
    q_static = tf.get_static_value(q)
    if q_static is None:
        raise ValueError(
            "method='top_k' needs `q` as a Python number (TopK's k must be "
            "known when the function is traced); use method='bisect' or 'sort' "
            "for a tensor or variable `q`."
        )
    n_static = flat.shape[1]
    if n_static is None:
        raise ValueError("method='top_k' needs a statically known example size.")
    q_static = float(q_static)
    position = q_static * (n_static - 1)
    lower = int(position // 1)
    upper = min(lower + 1, n_static - 1)
    fraction = position - lower
    if q_static <= 0.5:
        # The upper+1 smallest values, ascending: negate, take the largest.
        smallest = -tf.math.top_k(-flat, k=upper + 1, sorted=True).values
        low, high = smallest[:, lower], smallest[:, upper]
    else:
        # The n-lower largest values, descending.
        largest = tf.math.top_k(flat, k=n_static - lower, sorted=True).values
        low, high = largest[:, n_static - 1 - lower], largest[:, n_static - 1 - upper]
    return _lerp(low, high, tf.constant(fraction, tf.float64))


_METHODS = {
    "bisect": _quantile_bisect,
    "sort": _quantile_sort,
    "top_k": _quantile_top_k,
}


def per_example_quantile(t, q, method=DEFAULT_QUANTILE_METHOD, non_negative=False):
    """The q-quantile of each example's elements, as `numpy.quantile`.

    For a batch `t` of shape `(batch, ...)`, returns for every example the
    q-quantile over all of its non-batch elements, with numpy's default
    `method="linear"`: the value at position `q * (n - 1)` of the sorted
    elements, interpolated linearly between the two order statistics around
    it. The result equals `numpy.quantile(t.reshape(batch, -1), q, axis=1)`
    to float32 precision, ties and zeros included.

    Three exact formulations are offered; they give the same numbers:

    - `"bisect"` (default): finds the lower order statistic by binary search
      over the float32 bit patterns (mapped to order-preserving integers),
      setting one bit per pass from the most significant: 32 passes that each
      count the elements below a candidate, then one pass for the next order
      statistic, then the interpolation. It costs O(32 n) element-wise
      compares and no data movement, so it fuses into a few loops under XLA
      and vectorises well without it. It is the default because it is by
      far the fastest under XLA, where the models compute ZeroGrad's mask
      (close to the others in graph mode; `benchmarks/step_time.py`), and
      it accepts a tensor or variable `q`.
    - `"sort"`: sorts each example and gathers the two order statistics.
      Simple and exact, but O(n log n) with data movement; XLA's sort on CPU
      is especially slow.
    - `"top_k"`: `tf.math.top_k` on the smaller side of q (ascending for
      q <= 0.5, descending above). Cheaper than a full sort in graph mode,
      but XLA lowers TopK to a sort, and `k` must be static, so `q` must be
      a Python number.

    Args:
        t: a float tensor of shape `(batch, ...)` with at least one non-batch
            element per example. Values must not be NaN.
        q: the quantile level in [0, 1]: a Python number, or a scalar tensor
            or variable for `"bisect"` and `"sort"`.
        method: one of `"bisect"`, `"sort"`, `"top_k"`. Defaults to
            `"bisect"`.
        non_negative: the values are known to be >= 0 (magnitudes, as in
            ZeroGrad's mask; -0.0 excluded, which `abs` never returns), so
            `"bisect"` skips the sign bit: 31 passes instead of 32, and no
            key mapping. A negative value then gives a wrong result.
            Defaults to False.

    Returns:
        A float32 tensor of shape `(batch,)`.

    Raises:
        ValueError: for `q` outside [0, 1], an unknown `method`, a rank-0
            input, or a tensor `q` with `method="top_k"`.

    Examples:
        >>> import numpy as np
        >>> t = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 1.0, 9.0]], "float32")
        >>> per_example_quantile(t, 0.5).numpy().tolist()
        [2.5, 0.5]
        >>> np.quantile(t, 0.5, axis=1).tolist()  # NumPy's "linear" method, the same
        [2.5, 0.5]
    """
    validation.check_choice(method, "method", QUANTILE_METHODS)
    q = validation.check_probability(q, "q")
    with tf.name_scope("per_example_quantile"):
        return _per_example_quantile(tf.convert_to_tensor(t), q, method, bool(non_negative))


def _per_example_quantile(t, q, method, non_negative=False):
    if t.shape.rank is not None and t.shape.rank < 1:
        raise ValueError("`t` must have a batch dimension, got a scalar.")
    input_dtype = t.dtype
    flat = tf.reshape(tf.cast(t, tf.float32), (tf.shape(t)[0], -1))
    if t.shape.rank is not None and t.shape.rank == 1:
        flat = tf.reshape(tf.cast(t, tf.float32), (-1, 1))
    elif t.shape.rank is not None and None not in t.shape[1:]:
        # Keep the static element count (needed by top_k, helps XLA).
        n = 1
        for d in t.shape[1:]:
            n *= d
        flat = tf.reshape(flat, (-1, n))
    result = _METHODS[method](flat, q, non_negative)
    if input_dtype.is_floating and input_dtype != tf.float32:
        result = tf.cast(result, input_dtype)
    return result
