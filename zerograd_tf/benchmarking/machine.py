"""The record of where a result was measured."""

import datetime
import importlib.metadata
import os
import platform

from zerograd_tf import precision


def machine_record(packages=("tensorflow", "keras"), cpuinfo=None):
    """The host, its CPU, today's date and the installed versions of `packages`.

    Every committed benchmark or study result carries one, so that a number
    in the README can be traced to the machine, day and versions that
    produced it. Machines of the same size differ in what bfloat16 gains,
    so the record names the CPU model and its bfloat16 units.

    Args:
        packages: distribution names whose versions to record (`None` for
            one that is not installed). Defaults to `("tensorflow", "keras")`.
        cpuinfo: the text of `/proc/cpuinfo`, for tests. Defaults to `None`:
            read it.

    Returns:
        A JSON-serialisable dict: `platform`, `processor`, `cpu` (the model
        name from `/proc/cpuinfo`, `""` where it names none, e.g. most Arm
        machines, or where there is no such file), `bfloat16_units` (the
        CPU's bfloat16 flags, `zerograd_tf.precision.cpu_bfloat16_flags`;
        `None` without `/proc/cpuinfo`: not known), `cpus`, `date` and one
        entry per package.

    Example:

    >>> from zerograd_tf.benchmarking.machine import machine_record
    >>> record = machine_record(("keras",))
    >>> sorted(record)
    ['bfloat16_units', 'cpu', 'cpus', 'date', 'keras', 'platform', 'processor']
    """
    if cpuinfo is None:
        cpuinfo = precision.read_cpuinfo()
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpu": _cpu_model(cpuinfo),
            "bfloat16_units": (list(precision.cpu_bfloat16_flags(cpuinfo)) if cpuinfo
                               else None),
            "cpus": os.cpu_count(), "date": datetime.date.today().isoformat(), **versions}


def _cpu_model(cpuinfo):
    """The first `model name` of `/proc/cpuinfo`'s text, or `""`."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "model name":
            return value.strip()
    return ""
