"""How the callbacks add their measurements to the Keras logs: `add_to_logs`."""


def add_to_logs(logs, prefix, values):
    """Adds `values` to `logs` as `<prefix>/<name>`, never replacing a key.

    Keras hands every callback of a `fit` the same `logs` dict, the one that
    `History`, `CSVLogger`, `TensorBoard` and `HistoryWriter` then record, and
    in it a callback's key would silently replace a model metric of the same
    name. So each callback writes under its own prefix (`co_monitor/`,
    `diagnostics/`): the model metrics of Keras and of this package are
    plain names without a `/`. Keras' `TensorBoard` logs such a key as
    `epoch_<prefix>/<name>` with the training scalars (only keys that start
    with `val_` go to the validation ones), and TensorBoard groups the
    entries by the prefix. A key that is in `logs` already (a metric named so
    on purpose, or a second callback writing the same keys) is an error
    rather than an overwrite.

    Args:
        logs: the logs dict a callback method received; `None` (no logs to
            add to) adds nothing.
        prefix: the callback's prefix, without the `/`.
        values: `{name: value}` to add.

    Raises:
        ValueError: when a key is in `logs` already.

    Examples:
        >>> logs = {"loss": 0.5}
        >>> add_to_logs(logs, "co_monitor", {"pgd_accuracy": 0.25})
        >>> logs
        {'loss': 0.5, 'co_monitor/pgd_accuracy': 0.25}
        >>> add_to_logs(logs, "co_monitor", {"pgd_accuracy": 0.5})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: 'co_monitor/pgd_accuracy' is in the logs already (0.25); ...
    """
    if logs is None:
        return
    keyed = {f"{prefix}/{name}": value for name, value in values.items()}
    for key in keyed:
        if key in logs:
            raise ValueError(
                f"{key!r} is in the logs already ({logs[key]!r}); a callback does not "
                "overwrite a key: give the metric or the second callback another name.")
    logs.update(keyed)
