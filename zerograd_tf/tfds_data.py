"""TFDS image classification data sets, loaded into NumPy arrays.

Offline, TFDS retries a download for minutes and leaves a partial one
behind: `load_tfds` first asks `zerograd_tf.downloads` whether the data is
on disk and, if not, whether its download host answers, and fails in
seconds with what to do instead.
"""

import numpy as np

from zerograd_tf import downloads
from zerograd_tf._names import DataError

__all__ = ["load_tfds"]


def _unavailable(name, data_dir, why):
    where = data_dir or "TFDS's default data directory (~/tensorflow_datasets)"
    return DataError(
        f"TFDS data set '{name}' is not in {where} {why}. Without internet, build it on a "
        f"machine that has it (tfds build {name}) and point `data_dir` at its "
        "folder, or save it as an .npz with x_train, y_train, x_test, y_test and "
        "pass that file as the `dataset`.")


def _tfds_split(name, split, data_dir, download):
    import tensorflow_datasets as tfds

    try:
        dataset, info = tfds.load(name, split=split, as_supervised=True, with_info=True,
                                  data_dir=data_dir, download=download)
        num_classes = info.features["label"].num_classes
    except Exception as error:
        cause = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        fetched = ("and could not be downloaded" if download
                   else "and downloading is switched off")
        raise _unavailable(name, data_dir, f"{fetched} ({type(error).__name__}: {cause})"
                           ) from None
    # Batches of 4096, not batch_size=-1: one huge batch needs the size up
    # front, which generator-backed datasets do not know.
    batches = list(tfds.as_numpy(dataset.batch(4096)))
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    return images, labels, num_classes


def load_tfds(name, data_dir=None, download=True, reachable=None):
    """Loads a TFDS image classification data set into arrays.

    Args:
        name: the TFDS name (e.g. `"cifar10"`).
        data_dir: the TFDS data directory. Defaults to `None` (TFDS's
            default, `~/tensorflow_datasets`).
        download: let TFDS download missing data. Defaults to True.
        reachable: a function `name -> bool`, whether the data set's
            download host answers, asked before a download. Defaults to
            `None` (`zerograd_tf.downloads.reachable`).

    Returns:
        `(x_train, y_train, x_test, y_test, num_classes)`.

    Raises:
        DataError: when the data set is not available (with how to fix it:
            build it elsewhere and pass `data_dir`, or use an `.npz`).

    Example (TFDS's mock data, no download):

    >>> import tensorflow_datasets as tfds
    >>> from zerograd_tf import tfds_data
    >>> with tfds.testing.mock_data(num_examples=6):
    ...     x_train, y_train, x_test, y_test, classes = tfds_data.load_tfds("mnist")
    >>> x_train.shape, classes
    ((6, 28, 28, 1), 10)
    """
    if download:
        reachable = reachable or downloads.reachable
        if downloads.needs_download(name, data_dir) and not reachable(name):
            raise _unavailable(name, data_dir, "and its download host "
                               f"{downloads.download_host(name)[0]} is not reachable "
                               "(no network?)")
    x_train, y_train, num_classes = _tfds_split(name, "train", data_dir, download)
    x_test, y_test, _ = _tfds_split(name, "test", data_dir, download)
    return x_train, y_train, x_test, y_test, num_classes
