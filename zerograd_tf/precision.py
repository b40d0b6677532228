"""Training precision: the choices, the hardware's fast one, and `"auto"`.

A precision is a Keras dtype policy name: `"float32"`, `"mixed_bfloat16"`
(bfloat16 compute, float32 variables: CPUs with bfloat16 matrix units, TPUs)
or `"mixed_float16"` (float16 compute with loss scaling: GPUs with tensor
cores). In every one the inputs, the perturbation `delta`, ZeroGrad's mask,
the projection and the clip stay float32, and the logits are float32.

`"auto"` is what the programs default to. It resolves to float32 until the
robustness-parity study (docs/precision.md) shows that a lower precision
keeps robustness; `fastest_precision()` says what the hardware would run
fastest, so that the choice can follow the evidence.
"""

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# Why "auto" is float32 today; printed by the programs, quoted in the docs.
AUTO_REASON = ("float32: bfloat16's robustness parity with float32 is not yet measured "
               "(docs/precision.md)")
# CPU feature flags (Linux /proc/cpuinfo) of bfloat16 matrix or dot-product
# units: x86 AVX512-BF16 and AMX-BF16, Arm's BF16 extension.
_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_has_bfloat16_units(cpuinfo=None):
    """Whether the CPU has bfloat16 matrix or dot-product units.

    Without them (e.g. an AVX2-only CPU) bfloat16 is emulated and slower
    than float32, so no automatic choice should pick it there.

    Args:
        cpuinfo: the text of `/proc/cpuinfo`. Defaults to `None`: read it
            (a machine without that file, e.g. macOS or Windows, counts as
            having none).

    Returns:
        bool: any `flags`/`Features` line names `avx512_bf16`, `amx_bf16`
        or (Arm) `bf16`.

    Example:

    >>> from zerograd_tf.precision import cpu_has_bfloat16_units
    >>> cpu_has_bfloat16_units("flags\\t: fpu sse avx2 avx512f\\n")
    False
    >>> cpu_has_bfloat16_units("flags\\t: fpu avx512f avx512_bf16 amx_bf16\\n")
    True
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            if set(value.split()) & set(_BF16_FLAGS):
                return True
    return False


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
    """The precision this machine runs fastest.

    `"mixed_bfloat16"` on a TPU or a CPU with bfloat16 units,
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


def resolve_precision(precision):
    """The dtype policy name of a precision: `"auto"` resolved.

    Args:
        precision: one of `PRECISIONS`.

    Returns:
        `precision` itself, or for `"auto"` the policy the evidence supports
        (float32 today: see `AUTO_REASON`).

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


def policy_of(model):
    """The dtype policy name a Keras model computes with (`"float32"` for a
    model whose layers mix several, e.g. mixed with float32 logits: the
    name of its first non-float32 layer's policy)."""
    names = [layer.dtype_policy.name for layer in [model, *_layers(model)]
             if hasattr(layer, "dtype_policy")]
    mixed = [n for n in names if n != "float32"]
    return mixed[0] if mixed else "float32"


def _layers(model):
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _layers(layer)


def computes_in_float16(model):
    """Whether any layer of `model` computes in float16 (whose 5-bit
    exponent flushes gradients below about 6e-8 to zero)."""
    return policy_of(model) in ("mixed_float16", "float16")


def is_lower_precision(model):
    """Whether any layer of `model` computes below float32."""
    return policy_of(model) != "float32"

