"""Argument checks shared by the attacks, models and programs.

Every check raises a ``ValueError`` (or ``TypeError``) whose message names the
argument, the valid range and the value received, so that a bad setting fails
at construction time instead of deep inside a traced TensorFlow function.
Tensors are accepted unchecked: their values are only known at run time.
"""

import math
import numbers
import warnings

import keras
import numpy as np
import tensorflow as tf

PERTURBATION_INITS = ("zero", "random")


def _is_static_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_tensor_like(value):
    return tf.is_tensor(value) or isinstance(value, (tf.Variable, keras.Variable))


def check_epsilon(epsilon, name="epsilon"):
    """Checks a perturbation radius in pixel units.

    Args:
        epsilon: the L-infinity radius, a number in (0, 1] (inputs live in
            [0, 1]), or a tensor (not checked).
        name: the argument name used in messages.

    Returns:
        `epsilon` as a Python float (tensors are returned unchanged).

    Raises:
        ValueError: if `epsilon` is outside (0, 1]; when it looks like it was
            given in 0-255 units the message says how to convert it.
    """
    if _is_tensor_like(epsilon):
        return epsilon
    if not _is_static_number(epsilon) or not math.isfinite(epsilon):
        raise ValueError(f"`{name}` must be a number in (0, 1], got {epsilon!r}.")
    epsilon = float(epsilon)
    if epsilon > 1 and epsilon <= 255:
        raise ValueError(
            f"`{name}` must be in (0, 1] because inputs live in [0, 1], got "
            f"{epsilon:g}. It looks like 0-255 pixel units: pass "
            f"{epsilon:g}/255 = {epsilon / 255:.6g} instead."
        )
    if not 0 < epsilon <= 1:
        raise ValueError(f"`{name}` must be in (0, 1], got {epsilon:g}.")
    if epsilon >= 0.5:
        warnings.warn(
            f"`{name}`={epsilon:g} is at least half the input range [0, 1]. If "
            "it was meant in 0-255 pixel units, divide it by 255.",
            stacklevel=3,
        )
    return epsilon


def check_positive(value, name):
    """Checks a step size or other strictly positive finite number.

    Args:
        value: the number (tensors pass unchecked).
        name: the argument name used in messages.

    Returns:
        `value` as a Python float, or the tensor unchanged.

    Raises:
        ValueError: if `value` is not a finite number > 0.
    """
    if _is_tensor_like(value):
        return value
    if not _is_static_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}.")
    return float(value)


def check_quantile(q, name="quantile"):
    """Checks a ZeroGrad quantile.

    Args:
        q: a number in [0, 1) (tensors pass unchecked). q = 1 would zero every
            gradient element and so never perturb, hence the open bound.
        name: the argument name used in messages.

    Returns:
        `q` as a Python float, or the tensor unchanged.

    Raises:
        ValueError: if `q` is outside [0, 1).
    """
    if _is_tensor_like(q):
        return q
    if not _is_static_number(q) or not 0 <= q < 1:
        raise ValueError(f"`{name}` must be a number in [0, 1), got {q!r}.")
    return float(q)


def check_fraction(value, name, *, zero=False):
    """Checks a fraction such as a drop or a step: a number in (0, 1).

    Args:
        value: the number.
        name: the argument name used in messages.
        zero: also allow 0 (the interval [0, 1)). Defaults to False.

    Returns:
        `value` as a Python float.

    Raises:
        ValueError: if `value` is not a number in the interval.

    Example:

    >>> check_fraction(0.5, "drop")
    0.5
    """
    if not _is_static_number(value) or not 0 <= value < 1 or (value == 0 and not zero):
        raise ValueError(f"`{name}` must be a number in {'[' if zero else '('}0, 1), "
                         f"got {value!r}.")
    return float(value)


def check_same_length(x, y, names=("x", "y")):
    """Checks that examples and labels pair up: `len(x) == len(y)`.

    Raises:
        ValueError: naming both lengths.
    """
    if len(x) != len(y):
        raise ValueError(f"`{names[0]}` and `{names[1]}` must have the same length, got "
                         f"{len(x)} and {len(y)}.")


def check_probability(q, name="q"):
    """Checks a quantile level for `per_example_quantile`: a number in [0, 1].

    Raises:
        ValueError: if `q` is outside [0, 1].
    """
    if _is_tensor_like(q):
        return q
    if not _is_static_number(q) or not 0 <= q <= 1:
        raise ValueError(f"`{name}` must be a number in [0, 1], got {q!r}.")
    return float(q)


def check_int(value, name, minimum=1, maximum=None):
    """Checks an integer count such as `steps`, `restarts` or `samples`.

    Args:
        value: the count.
        name: the argument name used in messages.
        minimum: the smallest valid value.
        maximum: the largest valid value, or None.

    Returns:
        `value` as a Python int.

    Raises:
        ValueError: if `value` is not an integer in [minimum, maximum].
    """
    valid = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if valid:
        value = int(value)
        valid = value >= minimum and (maximum is None or value <= maximum)
    if not valid:
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"`{name}` must be an integer {bound}, got {value!r}.")
    return value


def check_choice(value, name, choices):
    """Checks that `value` is one of `choices`.

    Raises:
        ValueError: naming the valid choices.
    """
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(repr, choices))}; got {value!r}."
        )
    return value


def check_image_batch(x, name="x"):
    """Checks the static dtype of an input batch: floating point in [0, 1].

    Raises:
        TypeError: for integer inputs (such as uint8 images), with the fix.
    """
    dtype = tf.as_dtype(x.dtype)
    if not dtype.is_floating:
        raise TypeError(
            f"`{name}` must be floating point with values in [0, 1], got dtype "
            f"{dtype.name}. Convert images first, e.g. "
            "`tf.cast(images, tf.float32) / 255`."
        )
    return x


def warn_if_outside_unit_range(x, name="x"):
    """Warns once per call when float inputs leave [0, 1] or are not finite.

    A one-time check of the values (not the dtype) that training and
    evaluation run on their first batch: images in 0-255 or with NaN train
    and evaluate without any error otherwise, to a wrong or NaN result.

    Args:
        x: an array or tensor of inputs.
        name: the name used in the message.

    Returns:
        True when the values are finite and in [0, 1].

    Examples:
        >>> import numpy as np
        >>> warn_if_outside_unit_range(np.zeros((2, 3), np.float32))
        True
    """
    values = np.asarray(x)
    if values.size == 0 or not np.issubdtype(values.dtype, np.floating):
        return True
    finite = np.isfinite(values)
    if not finite.all():
        message = (f"`{name}` holds {int((~finite).sum())} NaN or infinite values; the "
                   "model would train to NaN weights.")
    else:
        low, high = float(values.min()), float(values.max())
        if low >= 0 and high <= 1:
            return True
        message = (f"`{name}` has values in [{low:g}, {high:g}], but inputs must lie in "
                   "[0, 1] (epsilon and alpha are in those units)"
                   + ("; divide 0-255 images by 255." if high > 1.5 else "."))
    warnings.warn(message, stacklevel=3)
    return False


def warn_if_first_batch_outside_unit_range(data, name="x"):
    """`warn_if_outside_unit_range` on the inputs of `data`'s first batch.

    `data` is a `tf.data.Dataset` of `(x, ...)` batches (one batch is read)
    or an array of inputs (checked whole); anything else (a generator, a
    `PyDataset`) is not checked.

    Examples:
        >>> import numpy as np
        >>> dataset = tf.data.Dataset.from_tensor_slices(np.zeros((4, 2), np.float32)).batch(2)
        >>> warn_if_first_batch_outside_unit_range(dataset)
        True
    """
    if isinstance(data, tf.data.Dataset):
        for batch in data.take(1):
            inputs, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
            if tf.is_tensor(inputs):
                return warn_if_outside_unit_range(inputs.numpy(), name)
    elif isinstance(data, np.ndarray) or tf.is_tensor(data):
        return warn_if_outside_unit_range(np.asarray(data), name)
    return True
