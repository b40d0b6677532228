"""What a benchmark result records about where it was measured."""

import datetime
import importlib.metadata
import os
import platform


def machine(packages=("tensorflow", "keras")):
    """The host, today's date and the installed versions of `packages`.

    Args:
        packages: distribution names whose versions to record (`None` for
            one that is not installed). Defaults to TensorFlow and Keras.

    Returns:
        A JSON-serialisable dict: `platform`, `processor`, `cpus`, `date`
        and one entry per package.
    """
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "date": datetime.date.today().isoformat(), **versions}
