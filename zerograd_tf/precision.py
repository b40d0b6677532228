"""Training precision: the choices, the hardware's low one, and `"auto"`.

A precision is a Keras dtype policy name: `"float32"`, `"mixed_bfloat16"`
(bfloat16 compute, float32 variables: CPUs with bfloat16 units, TPUs)
or `"mixed_float16"` (float16 compute with loss scaling: GPUs with tensor
cores). In every one the inputs, the perturbation `delta`, ZeroGrad's mask,
the projection and the clip stay float32 (the network's first layer then
rounds `x + delta` to its compute dtype), and the logits are float32.

`"auto"` is what the programs default to. It resolves to float32: in the
robustness-parity study (docs/precision.md) bfloat16 training missed the
target on MNIST (more catastrophic overfitting than float32 for some
methods) and on CIFAR-10 (a lower worst-case accuracy for some methods),
and a lower precision becomes the automatic choice only when every method
meets it in every setting. `fastest_precision()` names the lower precision
the hardware has units for (whether it trains faster depends on the
network: docs/precision.md measures it).
"""

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# Why "auto" is float32; the programs print it.
# (tests/test_precision.py checks it against the committed parity records.)
AUTO_REASON = ("bfloat16 training missed the robustness-parity target on MNIST "
               "(more catastrophic overfitting than float32 for some methods) and on CIFAR-10 "
               "(a lower worst-case accuracy for some methods; docs/precision.md)")
# CPU feature flags (Linux /proc/cpuinfo) of bfloat16 matrix or dot-product
# units: x86 AVX512-BF16 and AMX-BF16, Arm's BF16 extension.
_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def read_cpuinfo():
    """The text of `/proc/cpuinfo`, or `""` where there is none (e.g. macOS,
    Windows)."""
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def cpu_bfloat16_flags(cpuinfo=None):
    """The CPU's bfloat16 feature flags: which units it has.

    `amx_bf16` names matrix units (Intel's AMX tiles), which can gain more
    over float32 than the dot-product instructions of `avx512_bf16` alone
    (e.g. AMD Zen 4); Arm names its BF16 extension `bf16`.

    Args:
        cpuinfo: the text of `/proc/cpuinfo`. Defaults to `None`: read it
            (a machine without that file counts as having none).

    Returns:
        tuple of str: those of `avx512_bf16`, `amx_bf16` and `bf16` that a
        `flags`/`Features` line names, in that order.

    Example:

    >>> from zerograd_tf.precision import cpu_bfloat16_flags
    >>> cpu_bfloat16_flags("flags\\t: fpu avx512f amx_bf16 avx512_bf16\\n")
    ('avx512_bf16', 'amx_bf16')
    """
    if cpuinfo is None:
        cpuinfo = read_cpuinfo()
    found = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            found |= set(value.split()) & set(_BF16_FLAGS)
    return tuple(flag for flag in _BF16_FLAGS if flag in found)


def cpu_has_bfloat16_units(cpuinfo=None):
    """Whether the CPU has bfloat16 matrix or dot-product units.

    Without them (e.g. an AVX2-only CPU) bfloat16 arithmetic is converted
    to and from float32 around float32 kernels, which gains nothing, so no
    automatic choice should pick it there.

    Args:
        cpuinfo: the text of `/proc/cpuinfo`. Defaults to `None`: read it
            (a machine without that file, e.g. macOS or Windows, counts as
            having none).

    Returns:
        bool: any `flags`/`Features` line names `avx512_bf16`, `amx_bf16`
        or (Arm) `bf16` (see `cpu_bfloat16_flags`).

    Example:

    >>> from zerograd_tf.precision import cpu_has_bfloat16_units
    >>> cpu_has_bfloat16_units("flags\\t: fpu sse avx2 avx512f\\n")
    False
    >>> cpu_has_bfloat16_units("flags\\t: fpu avx512f avx512_bf16 amx_bf16\\n")
    True
    """
    return bool(cpu_bfloat16_flags(cpuinfo))


def _accelerators():
    """`(has a TPU, has a GPU with float16 tensor cores)`."""
    import tensorflow as tf

    if tf.config.list_logical_devices("TPU"):
        return True, False
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability and tuple(capability) >= (7, 0):
            return False, True
    return False, False


def fastest_precision(cpuinfo=None):
    """The lower precision this machine has units for, else float32.

    Whether it trains faster depends on the network (docs/precision.md
    measures it per network). `"mixed_bfloat16"` on a TPU or a CPU with
    bfloat16 units,
    `"mixed_float16"` on a GPU with tensor cores (compute capability 7.0
    or more), `"float32"` elsewhere.

    Args:
        cpuinfo: the text of `/proc/cpuinfo`, for tests. Defaults to `None`:
            read it.

    Returns:
        A precision name.
    """
    tpu, gpu = _accelerators()
    if tpu:
        return "mixed_bfloat16"
    if gpu:
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bfloat16_units(cpuinfo) else "float32"


def auto_note(fastest):
    """What `--precision auto` chose and why, as the programs print it.

    Args:
        fastest: `fastest_precision()`: a lower precision the hardware has
            units for is named as an explicit choice (whether it is faster
            depends on the network: docs/precision.md).

    Returns:
        The text, e.g. `"float32 (--precision auto: ...)"`.

    Example:

    >>> from zerograd_tf.precision import auto_note
    >>> auto_note("float32").startswith("float32 (--precision auto: bfloat16 training")
    True
    """
    hint = ("" if fastest == "float32" else
            f"; --precision {fastest}, which this hardware has units for, is an explicit choice")
    return f"{resolve_precision('auto')} (--precision auto: {AUTO_REASON}{hint})"


def resolve_precision(precision):
    """The dtype policy name of a precision: `"auto"` resolved.

    Args:
        precision: one of `PRECISIONS`.

    Returns:
        `precision` itself, or for `"auto"` the policy the evidence supports
        (float32: see `AUTO_REASON`).

    Raises:
        ValueError: for an unknown precision, naming the valid ones.

    Example:

    >>> from zerograd_tf.precision import resolve_precision
    >>> resolve_precision("mixed_bfloat16"), resolve_precision("auto")
    ('mixed_bfloat16', 'float32')
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, "
                         f"got {precision!r}")
    if precision == "auto":
        return "float32"
    return precision


def leaf_layers(model):
    """The layers of `model` that compute, nested models opened: every layer
    without sublayers of its own listed in `layers`, input layers left out.

    Args:
        model: a Keras model or layer.

    Returns:
        A list of layers (`[model]` for a layer without sublayers).
    """
    sublayers = getattr(model, "layers", None)
    if not sublayers:
        return [] if type(model).__name__ == "InputLayer" else [model]
    return [leaf for layer in sublayers for leaf in leaf_layers(layer)]


def policy_of(model):
    """The lower-precision dtype policy a model computes in, or `"float32"`.

    Args:
        model: a Keras model or layer.

    Returns:
        The policy name of the first layer of `leaf_layers(model)` whose
        policy is not float32 (a mixed model's logits stay float32), else
        `"float32"`. The policy of the model object itself and of its input
        layer is not looked at: a model built under a global mixed policy
        whose layers all compute in float32 is float32.

    Example:

    >>> import keras
    >>> from zerograd_tf.precision import policy_of
    >>> net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, dtype="mixed_bfloat16"),
    ...                         keras.layers.Dense(2, dtype="float32")])
    >>> policy_of(net), policy_of(net.layers[-1])
    ('mixed_bfloat16', 'float32')
    """
    for layer in leaf_layers(model):
        if layer.dtype_policy.name != "float32":
            return layer.dtype_policy.name
    return "float32"


def computes_in_float16(model):
    """Whether a layer of `model` computes in float16 (whose 5-bit exponent
    flushes gradients below about 6e-8 to zero); see `policy_of`."""
    return policy_of(model) in ("mixed_float16", "float16")


def is_lower_precision(model):
    """Whether a layer of `model` computes below float32; see `policy_of`."""
    return policy_of(model) != "float32"
