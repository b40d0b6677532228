"""The record of where a result was measured."""

import datetime
import importlib.metadata
import os
import platform


def machine_record(packages=("tensorflow", "keras")):
    """The host, today's date and the installed versions of `packages`.

    Every committed benchmark or study result carries one, so that a number
    in the README can be traced to the machine, day and versions that
    produced it.

    Args:
        packages: distribution names whose versions to record (`None` for
            one that is not installed). Defaults to `("tensorflow", "keras")`.

    Returns:
        A JSON-serialisable dict: `platform`, `processor`, `cpus`, `date`
        and one entry per package.

    Example:

    >>> from zerograd_tf.benchmarking.machine import machine_record
    >>> record = machine_record(("keras",))
    >>> sorted(record)
    ['cpus', 'date', 'keras', 'platform', 'processor']
    """
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "date": datetime.date.today().isoformat(), **versions}
