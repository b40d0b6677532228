"""Batched `tf.data` pipelines of image arrays, scaled to [0, 1].

`make_dataset` batches arrays for evaluation and plain `fit` calls (scaled
to [0, 1] and, if asked, augmented as the reference does on CIFAR/SVHN-like
data: pad-4 random crop, horizontal flip); `epochs_dataset` is the
resumable per-epoch training pipeline of the programs, whose every epoch is
a function of the seed and the epoch alone.
"""

import numpy as np
import tensorflow as tf

__all__ = ["epochs_dataset", "make_dataset", "to_unit_range"]


def to_unit_range(x):
    """uint8 0-255 or float images as float32 in [0, 1]."""
    x = tf.convert_to_tensor(x)
    if x.dtype == tf.uint8:
        return tf.cast(x, tf.float32) / 255.0
    return tf.cast(x, tf.float32)


def _pad_crop_flip(image, flip, crop, mirror):
    """Pad-4 crop and (optionally) a horizontal flip, by the given ops."""
    padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
    image = crop(padded, (image.shape[0], image.shape[1], image.shape[2]))
    return mirror(image) if flip else image


def _augment(image, flip):
    """Pad-4 random crop and (optionally) a random horizontal flip."""
    return _pad_crop_flip(image, flip, tf.image.random_crop,
                          tf.image.random_flip_left_right)


def _stateless_augment(image, flip, seed):
    """Pad-4 crop and (optionally) a horizontal flip, drawn from `seed`."""
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    return _pad_crop_flip(
        image, flip, lambda padded, size: tf.image.stateless_random_crop(padded, size, crop_seed),
        lambda image: tf.image.stateless_random_flip_left_right(image, flip_seed))


def epochs_dataset(x, y, batch_size, *, epochs, first_epoch=0, seed=0, augment=False,
                   flip=True):
    """The training batches of epochs `first_epoch` .. `epochs - 1`, resumable.

    Each epoch's order and augmentation are a function of `(seed, epoch)`
    alone (stateless random ops), so a run resumed at epoch k sees exactly
    the batches the uninterrupted run saw from epoch k on. Batches do not
    cross epochs. Pass `steps_per_epoch=ceil(len(x) / batch_size)` to `fit`.

    Args:
        x: images (uint8 or float in [0, 1]).
        y: integer labels.
        batch_size: batch size.
        epochs: the epoch to stop before (the `epochs` of `fit`).
        first_epoch: the first epoch (`fit`'s `initial_epoch`). Defaults to 0.
        seed: integer seed of the order and the augmentation. Defaults to 0.
        augment: pad-4 random crop (+ flip if `flip`). Defaults to False.
        flip: allow horizontal flips when augmenting. Defaults to True.

    Returns:
        A `tf.data.Dataset` of `(images in [0, 1], int32 labels)` batches.

    Examples:
        >>> import numpy as np
        >>> from zerograd_tf.batching import epochs_dataset
        >>> x = np.zeros((10, 4, 4, 1), np.uint8); y = np.arange(10)
        >>> batches = list(epochs_dataset(x, y, 4, epochs=2, seed=1))
        >>> [len(b[1]) for b in batches]
        [4, 4, 2, 4, 4, 2]
        >>> resumed = list(epochs_dataset(x, y, 4, epochs=2, first_epoch=1, seed=1))
        >>> all((a[1].numpy() == b[1].numpy()).all() for a, b in zip(batches[3:], resumed))
        True
    """
    n = len(x)
    images = tf.constant(x)
    labels = tf.constant(np.asarray(y).astype(np.int32))
    seed = tf.constant(int(seed), tf.int64)

    def one_epoch(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([seed, epoch]))

        def load(position, index):
            image = to_unit_range(tf.gather(images, index))
            if augment:
                image = _stateless_augment(
                    image, flip, tf.stack([seed, epoch * n + position]))
            return image, tf.gather(labels, index)

        return (tf.data.Dataset.from_tensor_slices(order).enumerate()
                .map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size))

    return (tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
            .prefetch(tf.data.AUTOTUNE))


def make_dataset(x, y, batch_size, *, shuffle=False, augment=False, flip=True,
                 seed=0, drop_remainder=False):
    """A batched `tf.data` pipeline of `(images in [0, 1], labels)`.

    For evaluation and plain `fit` calls; the programs train on
    `epochs_dataset`, whose order a resumed run reproduces.

    Args:
        x: images (uint8 or float in [0, 1]).
        y: integer labels.
        batch_size: batch size.
        shuffle: reshuffle every epoch (seeded). Defaults to False.
        augment: pad-4 random crop (+ flip if `flip`). Defaults to False.
        flip: allow horizontal flips when augmenting. Defaults to True.
        seed: shuffle seed. Defaults to 0.
        drop_remainder: drop a last partial batch. Defaults to False.

    Returns:
        A `tf.data.Dataset`.

    Examples:
        >>> import numpy as np
        >>> from zerograd_tf import batching
        >>> x = np.full((5, 4, 4, 1), 255, np.uint8)
        >>> images, labels = next(iter(batching.make_dataset(x, np.arange(5), 4)))
        >>> images.shape.as_list(), float(images.numpy().max()), labels.numpy().tolist()
        ([4, 4, 4, 1], 1.0, [0, 1, 2, 3])
    """
    dataset = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(lambda image, label: (to_unit_range(image), label),
                          num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        dataset = dataset.map(lambda image, label: (_augment(image, flip), label),
                              num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(
        tf.data.AUTOTUNE)
