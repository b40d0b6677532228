"""The names the package's registries accept, importable without TensorFlow.

The programs check their options against these before they import
TensorFlow (so `--help` and option errors answer at once); the modules
that own each registry (`evaluation`, `architectures`, `datasets`,
`schedules`, `distribution`) use these very tuples. `DataError` lives here
for the same reason: a program names it in its `except` clauses, which run
before TensorFlow is imported. This module imports neither TensorFlow nor
Keras.
"""

#: ZeroGrad's quantile q unless one is given: the reference code's (and
#: where `quantile="auto"` starts). The one place the number is written.
DEFAULT_QUANTILE = 0.35
#: The attacks `zerograd_tf.evaluate_robustness` runs, by name.
ATTACKS = ("pgd", "apgd-ce", "apgd-dlr", "apgd-t", "square", "autoattack")
#: The classifiers of `zerograd_tf.architectures.build_classifier`.
ARCHITECTURES = ("small_cnn", "conv3", "preact_resnet18", "wide_resnet")
#: The embedded data set, and the TFDS data sets `zerograd_tf.datasets` loads.
DEFAULT_DATASET = "mnist10k"
TFDS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "svhn_cropped")
#: The schedules of `zerograd_tf.schedules.learning_rate_schedule`.
LR_SCHEDULES = ("cyclic", "piecewise", "constant")
#: The strategies of `zerograd_tf.distribution.make_strategy`.
STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


class DataError(ValueError):
    """A data set that cannot be used, with a message that says why.

    A `ValueError`, raised by the loaders for missing files, malformed
    arrays and labels, and unavailable TFDS data.

    Examples:
        >>> from zerograd_tf import datasets
        >>> try:
        ...     datasets.load_npz("no_such_file.npz")
        ... except datasets.DataError as error:
        ...     print(error)
        no such .npz file: no_such_file.npz
    """


# Its public home (reprs, tracebacks, pickles): `zerograd_tf.datasets.DataError`.
DataError.__module__ = "zerograd_tf.datasets"

# What `evaluate_robustness` and `zerograd-eval` attack: a float32 copy of a
# mixed-precision model, or the model as it computes.
EVAL_PRECISIONS = ("float32", "as_trained")
