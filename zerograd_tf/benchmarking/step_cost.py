"""The cost of one training step: a method's compiled model and a step to time.

What `benchmarks/step_time.py`, `benchmarks/profile_step.py` and
`benchmarks/vs_pytorch.py` time: Keras' compiled `train_function` (input
gradient, perturbation, weight update) of one training method, on one fixed
batch, waiting for the step's loss.
"""

import keras
import numpy as np
import tensorflow as tf

import zerograd_tf as zg
from zerograd_tf import architectures, dtype_policies

EPSILON = 8 / 255

# The adversarial model of each method: its class and the constructor
# arguments that the committed step-time results measured (and `seed=0`).
_METHODS = {
    "clean": ("CleanModel", {}),
    "fgsm": ("FGSMModel", {}),
    "fgsm_rs": ("FGSMModel", {"random_init": True}),
    "zerograd_bisect": ("ZeroGradModel", {"quantile_method": "bisect"}),
    "zerograd_sort": ("ZeroGradModel", {"quantile_method": "sort"}),
    "zerograd_top_k": ("ZeroGradModel", {"quantile_method": "top_k"}),
    "multigrad3": ("MultiGradModel", {"samples": 3}),
    "n_fgsm": ("NFGSMModel", {}),
    "gradalign": ("GradAlignModel", {}),
    "pgd10": ("PGDModel", {"steps": 10}),
}
# The methods whose step is timed, in the order the tables list them.
METHODS = tuple(_METHODS)
# The networks whose step cost the benchmarks report.
NETWORKS = ("small_cnn", "conv3", "preact_resnet18")
# The precisions (Keras dtype policies) a step can be timed in.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def entry_precision(entry):
    """The precision of a stored step-time entry (a dict with `precision`):
    entries written before the precision axis existed have none and were
    measured in float32.

    Example:

    >>> from zerograd_tf.benchmarking.step_cost import entry_precision
    >>> entry_precision({"ms": 12.8}), entry_precision({"precision": "mixed_bfloat16"})
    ('float32', 'mixed_bfloat16')
    """
    return entry.get("precision", "float32")


def _check_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: `precision` must be one of "
                         f"{', '.join(PRECISIONS)}.")


def _check_method(method):
    if not isinstance(method, str) or method not in _METHODS:
        raise ValueError(f"unknown method {method!r}: `method` must be one of "
                         f"{', '.join(METHODS)}.")


def adversarial_model(method, classifier, epsilon=EPSILON, precision="float32"):
    """The (uncompiled) model of one training method around a classifier.

    Every method keeps its defaults except: FGSM-RS is `FGSMModel` with
    `random_init=True`, ZeroGrad is timed with each `quantile_method`,
    MultiGrad with `samples=3` and PGD with `steps=10`; all with `seed=0`.

    Args:
        method: one of `METHODS`: `"clean"`, `"fgsm"`, `"fgsm_rs"`,
            `"zerograd_bisect"`, `"zerograd_sort"`, `"zerograd_top_k"`,
            `"multigrad3"`, `"n_fgsm"`, `"gradalign"` or `"pgd10"`.
        classifier: a `keras.Model` from images in [0, 1] to logits.
        epsilon: the L-infinity radius of the training attack. Defaults to
            `8 / 255`.
        precision: the model's dtype policy, one of `PRECISIONS` (give the
            classifier the same one: `dtype_policies.with_dtype_policy`).
            Defaults to `"float32"`.

    Returns:
        The method's `AdversarialModel` (a `keras.Model`).

    Raises:
        ValueError: for an unknown `method` (listing the valid ones).

    Example:

    >>> from zerograd_tf import architectures, dtype_policies
    >>> from zerograd_tf.benchmarking.step_cost import adversarial_model
    >>> classifier = architectures.build_classifier("small_cnn", (8, 8, 1), 10)
    >>> type(adversarial_model("fgsm_rs", classifier)).__name__
    'FGSMModel'
    """
    _check_method(method)
    _check_precision(precision)
    name, arguments = _METHODS[method]
    return getattr(zg, name)(model=classifier, epsilon=epsilon, seed=0, dtype=precision,
                             **arguments)


def compiled_model(method, network, jit, input_shape=(32, 32, 3), classes=10,
                   epsilon=EPSILON, metrics=("accuracy",), precision="float32"):
    """A method's model on a network, compiled as the step-time benchmarks do.

    Keras' random generators are seeded with 0 first, so that a network
    given by name starts from the same weights on every call. The model is
    compiled with SGD (learning rate 0.01, momentum 0.9) and the
    cross-entropy of the logits.

    Args:
        method: one of `METHODS` (see `adversarial_model`).
        network: the name of an architecture of
            `zerograd_tf.architectures` (built by `build_classifier` with
            `input_shape` and `classes`), or a ready `keras.Model` from
            images in [0, 1] to logits.
        jit: `jit_compile` of the model: `True` (XLA), `False` (graph
            mode) or `"auto"`.
        input_shape: `(H, W, C)` of the images, for a network given by name.
            Defaults to `(32, 32, 3)`.
        classes: number of classes, for a network given by name. Defaults
            to `10`.
        epsilon: the L-infinity radius of the training attack. Defaults to
            `8 / 255`.
        metrics: the compiled metrics (`None` or empty for none). Defaults
            to `("accuracy",)`.
        precision: the dtype policy of the network (its logits stay
            float32) and the model, one of `PRECISIONS`. Defaults to
            `"float32"`.

    Returns:
        The compiled `AdversarialModel`.

    Raises:
        ValueError: for an unknown `method` or `network`, or a `jit` that is
            neither a bool nor `"auto"`.

    Example:

    >>> from zerograd_tf.benchmarking.step_cost import compiled_model
    >>> model = compiled_model("zerograd_bisect", "small_cnn", jit=False,
    ...                        input_shape=(8, 8, 1))
    >>> model.jit_compile
    False
    >>> bf16 = compiled_model("fgsm_rs", "small_cnn", jit=False, input_shape=(8, 8, 1),
    ...                       precision="mixed_bfloat16")
    >>> bf16.classifier.layers[1].compute_dtype, bf16.classifier.layers[-1].compute_dtype
    ('bfloat16', 'float32')
    """
    _check_method(method)
    _check_precision(precision)
    if isinstance(network, str):
        if network not in architectures.ARCHITECTURES:
            raise ValueError(f"unknown network {network!r}: `network` must be one of "
                             f"{', '.join(architectures.ARCHITECTURES)} or a keras.Model.")
    elif not isinstance(network, keras.Model):
        raise ValueError("`network` must be the name of an architecture "
                         f"({', '.join(architectures.ARCHITECTURES)}) or a keras.Model, "
                         f"got {type(network).__name__}.")
    if not (isinstance(jit, bool) or jit == "auto"):
        raise ValueError(f"`jit` must be True, False or 'auto', got {jit!r}.")
    keras.utils.set_random_seed(0)
    if isinstance(network, str):
        network = architectures.build_classifier(network, input_shape, classes)
    network = dtype_policies.with_dtype_policy(network, precision)
    model = adversarial_model(method, network, epsilon, precision)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=list(metrics) if metrics else None, jit_compile=jit)
    return model


def train_step_runner(model, batch_size, input_shape=(32, 32, 3), classes=10, data=None):
    """A callable that runs one training step of `model` and waits for it.

    Each call runs the model's compiled `train_function` once on the same
    batch (a weight update, as `fit` runs per batch) and returns the step's
    loss as a float: converting it waits for the step to finish, so that the
    call's wall time is the step's.

    Args:
        model: a compiled `keras.Model` (e.g. from `compiled_model`).
        batch_size: the number of examples in the batch.
        input_shape: `(H, W, C)` of the images. Defaults to `(32, 32, 3)`.
        classes: the labels of the random batch are drawn from
            `range(classes)`. Defaults to `10`.
        data: an `(x, y)` pair of arrays to train on, `x` of shape
            `(batch_size, *input_shape)`. Defaults to `None`: uniform random
            images in [0, 1) and random labels, from a generator seeded
            with 0.

    Returns:
        A function of no arguments returning the step's loss.

    Raises:
        ValueError: for a `batch_size` that is not a positive integer, or
            `data` whose images are not of shape
            `(batch_size, *input_shape)`.

    Example:

    >>> from zerograd_tf.benchmarking.step_cost import compiled_model, train_step_runner
    >>> model = compiled_model("fgsm_rs", "small_cnn", jit=False, input_shape=(8, 8, 1))
    >>> step = train_step_runner(model, 4, input_shape=(8, 8, 1))
    >>> loss = step()
    >>> loss > 0
    True
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    if data is None:
        rng = np.random.default_rng(0)
        x = rng.random((batch_size, *input_shape), dtype=np.float32)
        y = rng.integers(0, classes, batch_size).astype(np.int32)
    else:
        x, y = data
        if tuple(np.shape(x)) != (batch_size, *input_shape):
            raise ValueError(f"`data` images must be of shape {(batch_size, *input_shape)} "
                             f"(batch_size, *input_shape), got {tuple(np.shape(x))}.")
    iterator = iter(tf.data.Dataset.from_tensors((x, y)).repeat())
    model.make_train_function()

    def step():
        logs = model.train_function(iterator)
        return float(keras.ops.convert_to_numpy(logs["loss"]))

    return step
