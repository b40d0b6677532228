"""Image classification data: the embedded default, `.npz` files and TFDS.

Every source is loaded into NumPy arrays (`ImageData`): images as uint8 or
float32 in [0, 1] with shape (N, H, W, C), integer labels.
`zerograd_tf.batching` turns arrays into `tf.data` pipelines.
"""

import dataclasses
import importlib.resources
import logging
import os

import numpy as np

from zerograd_tf import _names, tfds_data
from zerograd_tf._names import DataError

_LOG = logging.getLogger("zerograd_tf")

__all__ = ["DataError", "ImageData", "load_image_data", "load_npz", "embedded_path",
           "flips_allowed"]

DEFAULT_DATASET = _names.DEFAULT_DATASET
TFDS_DATASETS = _names.TFDS_DATASETS
# The data sets whose images are natural scenes, augmented like the reference.
_AUGMENTED = ("cifar10", "cifar100", "svhn_cropped")
_NO_FLIP = ("svhn_cropped",)  # digits must not be mirrored


@dataclasses.dataclass
class ImageData:
    """Arrays of one data set.

    Attributes:
        name: the data set's name or path.
        x_train: training images, (N, H, W, C), uint8 or float32 in [0, 1].
        y_train: training labels (integers).
        x_val: the validation images held out from the training data.
            Defaults to `None`.
        y_val: their labels. Defaults to `None`.
        x_test: the test images, or `None` when the data has none.
            Defaults to `None`.
        y_test: their labels. Defaults to `None`.
        num_classes: number of classes. Defaults to 0.
        augment: whether standard augmentation suits this data. Defaults to
            False.

    Examples:
        >>> import numpy as np
        >>> from zerograd_tf import datasets
        >>> data = datasets.ImageData("toy", np.zeros((6, 4, 4, 1), np.uint8), np.arange(6) % 2,
        ...                           x_val=np.zeros((2, 4, 4, 1), np.uint8), y_val=np.arange(2),
        ...                           num_classes=2)
        >>> data.input_shape, data.has_test, data.evaluation_split()[2]
        ((4, 4, 1), False, 'validation')
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray = None
    y_val: np.ndarray = None
    x_test: np.ndarray = None
    y_test: np.ndarray = None
    num_classes: int = 0
    augment: bool = False

    @property
    def input_shape(self):
        return tuple(self.x_train.shape[1:])

    @property
    def has_test(self):
        return self.x_test is not None

    def evaluation_split(self):
        """`(x, y, split_name)`: the test split, else the validation split."""
        if self.has_test:
            return self.x_test, self.y_test, "test"
        if self.x_val is None or len(self.x_val) == 0:
            raise DataError(
                f"{self.name} has no test split and no validation split to "
                "evaluate on; hold out validation data (a validation size > 0)."
            )
        return self.x_val, self.y_val, "validation"

    def channel_stats(self):
        """Per-channel mean and std of the training images in [0, 1]."""
        x = self.x_train.astype(np.float32)
        if self.x_train.dtype == np.uint8:
            x /= 255.0
        mean = x.mean(axis=(0, 1, 2))
        std = np.maximum(x.std(axis=(0, 1, 2)), 1e-3)
        return mean.tolist(), std.tolist()


def embedded_path():
    """Path of the embedded MNIST subset shipped with the package.

    Returns:
        The path of `mnist10k.npz` (8,000 train and 2,000 test digits).

    Examples:
        >>> import os
        >>> from zerograd_tf import datasets
        >>> os.path.basename(datasets.embedded_path())
        'mnist10k.npz'
    """
    return str(importlib.resources.files("zerograd_tf") / "resources" / "mnist10k.npz")


def _check_images(x, key, source):
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(
            f"{source}: `{key}` must hold images of shape (N, H, W, C) with C = 1 "
            f"or 3 (or (N, H, W)), got shape {x.shape}."
        )
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(
            f"{source}: `{key}` must be uint8 (0-255) or float in [0, 1], got "
            f"dtype {x.dtype}."
        )
    finite = np.isfinite(x)
    if not finite.all():
        nan = int(np.isnan(x).sum())
        raise DataError(
            f"{source}: float `{key}` must lie in [0, 1], but it holds "
            f"{nan} NaN and {int((~finite).sum()) - nan} infinite values."
        )
    if x.size and (x.min() < 0 or x.max() > 1):
        raise DataError(
            f"{source}: float `{key}` must lie in [0, 1], got values in "
            f"[{x.min():g}, {x.max():g}]; divide 0-255 images by 255."
        )
    return x.astype(np.float32)


def _check_labels(y, key, source, n):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise DataError(
            f"{source}: `{key}` must be a vector of {n} integer labels, got shape "
            f"{y.shape}."
        )
    if y.size and not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        kind = {"U": "str", "S": "bytes", "O": "object"}.get(y.dtype.kind, str(y.dtype))
        raise DataError(
            f"{source}: `{key}` holds {kind} values (dtype {y.dtype}); labels must be "
            "integers 0..K-1 (map class names to integers, e.g. with "
            "np.unique(y, return_inverse=True)).")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.mod(y, 1) == 0):
            raise DataError(f"{source}: `{key}` must hold integer class labels.")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise DataError(f"{source}: `{key}` has negative labels ({y.min()}).")
    return y


def infer_classes(y_train, source):
    """The number of classes of a training set: its largest label plus one.

    Raises:
        DataError: for a training set with a single class (nothing to
            learn).

    Warns (logging): when the labels are not exactly 0..K-1, naming the
    classes that have no training example.
    """
    present = np.unique(y_train)
    if len(present) < 2:
        raise DataError(
            f"{source}: the training labels hold a single class "
            f"({int(present[0]) if len(present) else 'none'}); a classifier needs at "
            "least two.")
    num_classes = int(present[-1]) + 1
    missing = sorted(set(range(num_classes)) - {int(c) for c in present})
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        _LOG.warning(
            "%s: the training labels span 0..%d but %d of those classes have no training "
            "example (%s); the model gets %d outputs. Relabel to 0..K-1 if that is not "
            "intended.", source, num_classes - 1, len(missing), shown, num_classes)
    return num_classes


def check_labels_in_range(y, num_classes, source):
    """Raises DataError when a label is outside [0, num_classes)."""
    if y.size and y.max() >= num_classes:
        raise DataError(
            f"{source}: labels must be in [0, {num_classes - 1}], the classes of the "
            f"training labels, found label {int(y.max())}."
        )


def _read_array(archive, key, path):
    try:
        return archive[key]
    except ValueError as error:
        if "allow_pickle" not in str(error):
            raise DataError(f"{path} is damaged: `{key}` cannot be read "
                            f"({type(error).__name__}: {error}).") from None
        # An intact array of Python objects, which np.load refuses to unpickle.
        needed = ("labels must be integers 0..K-1" if key.startswith("y")
                  else "images must be uint8 or float arrays")
        raise DataError(f"{path}: `{key}` holds object values (dtype object); {needed}: "
                        "save it with .astype(...) before np.savez.") from None
    except Exception as error:  # corrupt bytes: BadZipFile, CRC, zlib
        raise DataError(f"{path} is damaged: `{key}` cannot be read "
                        f"({type(error).__name__}: {error}).") from None


def load_npz(path, require_train=True):
    """Loads an `.npz` with `x_train`, `y_train` and optionally `x_test`, `y_test`.

    Args:
        path: the file.
        require_train: if False, a file with only `x_test`/`y_test` is
            accepted (its test split is then the whole file), as is a file with
            only `x_train`/`y_train`. Defaults to True.

    Returns:
        `(x_train, y_train, x_test, y_test)`, any of them None when absent.
        Images come back as (N, H, W, C): uint8, or float32 in [0, 1].

    Raises:
        DataError: for a missing file, missing keys, or bad shapes, dtypes or
            labels.

    Examples:
        >>> import os, tempfile, numpy as np
        >>> from zerograd_tf import datasets
        >>> path = os.path.join(tempfile.mkdtemp(), "toy.npz")
        >>> np.savez(path, x_train=np.zeros((4, 8, 8), np.uint8), y_train=[0, 1, 0, 1])
        >>> x_train, y_train, x_test, y_test = datasets.load_npz(path)
        >>> x_train.shape, y_train.tolist(), x_test
        ((4, 8, 8, 1), [0, 1, 0, 1], None)
    """
    if not os.path.isfile(path):
        raise DataError(f"no such .npz file: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:  # a corrupt or non-npz file
        raise DataError(f"{path} is not a readable .npz file ({error}).") from None
    keys = set(archive.files)
    arrays = {}
    for split in ("train", "test"):
        x_key, y_key = f"x_{split}", f"y_{split}"
        if (x_key in keys) != (y_key in keys):
            raise DataError(f"{path}: has `{x_key if x_key in keys else y_key}` "
                            f"but not its partner; both are needed.")
        if x_key in keys:
            x, y = _read_array(archive, x_key, path), _read_array(archive, y_key, path)
            x = _check_images(x, x_key, path)
            arrays[split] = (x, _check_labels(y, y_key, path, len(x)))
    if "train" not in arrays and (require_train or "test" not in arrays):
        needed = "x_train and y_train" if require_train else "x_train/y_train or x_test/y_test"
        raise DataError(f"{path}: needs arrays {needed}; found {sorted(keys) or 'none'}.")
    if "train" in arrays and "test" in arrays:
        if arrays["train"][0].shape[1:] != arrays["test"][0].shape[1:]:
            raise DataError(f"{path}: x_train and x_test images differ in shape.")
    train = arrays.get("train", (None, None))
    test = arrays.get("test", (None, None))
    return train[0], train[1], test[0], test[1]


def split_validation(x, y, val_size, seed):
    """Holds out `val_size` examples (a count, or a fraction if < 1).

    Returns:
        `(x_train, y_train, x_val, y_val)`; a fixed permutation by `seed`.
    """
    n = len(x)
    count = int(round(val_size * n)) if 0 < val_size < 1 else int(val_size)
    if count < 0 or count >= n:
        raise DataError(
            f"`val_size` must leave training data: got {val_size} for {n} examples."
        )
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:count], order[count:]
    return x[train], y[train], x[val], y[val]


def names_a_file(dataset):
    """Whether a `dataset` argument is a path to an `.npz` file (not the
    embedded default or a TFDS name).

    Example:

    >>> names_a_file("data/cifar10_5k.npz"), names_a_file("cifar10")
    (True, False)
    """
    return dataset.endswith(".npz") or os.path.sep in dataset


def load_image_data(dataset=DEFAULT_DATASET, *, val_size=1000, seed=0,
                    data_dir=None, download=True):
    """Loads a data set by name or path and holds out a validation split.

    Args:
        dataset: `"mnist10k"` (the embedded default), a TFDS name in
            `TFDS_DATASETS`, or a path to an `.npz` file. Defaults to
            `"mnist10k"`.
        val_size: examples held out from the training data for validation
            (a count, or a fraction if < 1). Defaults to 1000.
        seed: seed of the validation split. Defaults to 0.
        data_dir: TFDS data directory. Defaults to `None` (TFDS's default).
        download: let TFDS download missing data. Defaults to True.

    Returns:
        An `ImageData`.

    Raises:
        DataError: for an unknown name, missing or malformed data.

    Examples:
        >>> from zerograd_tf import datasets
        >>> data = datasets.load_image_data(val_size=500)
        >>> data.x_train.shape, len(data.x_val), len(data.x_test), data.num_classes
        ((7500, 28, 28, 1), 500, 2000, 10)
    """
    if dataset == DEFAULT_DATASET:
        path, name = embedded_path(), DEFAULT_DATASET
    elif names_a_file(dataset):
        path, name = dataset, dataset
    elif dataset in TFDS_DATASETS:
        path, name = None, dataset
    else:
        raise DataError(
            f"unknown dataset {dataset!r}: use {DEFAULT_DATASET!r} (embedded), "
            f"one of {', '.join(TFDS_DATASETS)} (TFDS), or a path to an .npz file."
        )
    if path is not None:
        x_train, y_train, x_test, y_test = load_npz(path)
        num_classes = infer_classes(y_train, name)
        augment = False
    else:
        x_train, y_train, x_test, y_test, num_classes = tfds_data.load_tfds(
            name, data_dir=data_dir, download=download)
        augment = name in _AUGMENTED
    for y, key in ((y_train, "y_train"), (y_test, "y_test")):
        if y is not None:
            check_labels_in_range(y, num_classes, f"{name} `{key}`")
    x_train, y_train, x_val, y_val = split_validation(x_train, y_train, val_size, seed)
    return ImageData(name=name, x_train=x_train, y_train=y_train, x_val=x_val,
                     y_val=y_val, x_test=x_test, y_test=y_test,
                     num_classes=num_classes, augment=augment)


def flips_allowed(name):
    """Whether a data set's images may be mirrored when augmented (not digits).

    Examples:
        >>> flips_allowed("cifar10"), flips_allowed("svhn_cropped")
        (True, False)
    """
    return name not in _NO_FLIP
