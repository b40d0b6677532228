"""`tf.distribute` strategies by name, and who writes the outputs."""

import tensorflow as tf

from zerograd_tf import _names, validation

__all__ = ["make_strategy", "is_chief"]

STRATEGIES = _names.STRATEGIES


def make_strategy(name="default"):
    """A strategy by name.

    Args:
        name: `"default"` (one device), `"mirrored"` (all local GPUs, or the
            logical CPU devices), `"multiworker"` (hosts described by the
            `TF_CONFIG` environment variable) or `"tpu"`. Defaults to
            `"default"`.

    Returns:
        A `tf.distribute.Strategy`. `"multiworker"` must be made before any
        other TensorFlow operation runs (a TensorFlow requirement).

    Raises:
        ValueError: for an unknown name, or `"tpu"` without a TPU.

    Examples:
        >>> from zerograd_tf import distribution
        >>> strategy = distribution.make_strategy()
        >>> strategy.num_replicas_in_sync, distribution.is_chief(strategy)
        (1, True)
    """
    validation.check_choice(name, "strategy", STRATEGIES)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as error:
        raise ValueError(f"strategy 'tpu': no TPU found ({error}).") from None
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy):
    """Whether this process writes the outputs: the chief (or worker 0 without one).

    Args:
        strategy: the `tf.distribute.Strategy` in use.

    Returns:
        True for the chief, for worker 0 of a cluster without a chief, and
        for a strategy without a cluster (one host).

    Examples:
        >>> import tensorflow as tf
        >>> from zerograd_tf import distribution
        >>> distribution.is_chief(tf.distribute.get_strategy())
        True
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if task_type is None or task_type == "chief":
        return True
    if task_type != "worker" or resolver.task_id != 0:
        return False
    return "chief" not in resolver.cluster_spec().as_dict()
