"""From a resolved configuration to a compiled model and its data pipelines.

Shared by `zerograd-train`, the tuner and the benchmarks, so that all of
them train the same way.
"""

import contextlib
import math
import random

import keras

import zerograd_tf as zg
from zerograd_tf import architectures, batching, datasets, schedules
from zerograd_tf.dtype_policies import with_dtype_policy
from zerograd_tf.precision import resolve_precision
from zerograd_tf import callbacks as callbacks_lib


def adversarial_model_class(method):
    """The model class and its method-specific arguments for a config."""
    return {
        "zerograd": zg.ZeroGradModel,
        "multigrad": zg.MultiGradModel,
        "fgsm": zg.FGSMModel,
        "fgsm_rs": zg.FGSMModel,
        "n_fgsm": zg.NFGSMModel,
        "zerograd_n_fgsm": zg.ZeroGradNFGSMModel,
        "pgd": zg.PGDModel,
        "gradalign": zg.GradAlignModel,
        "clean": zg.CleanModel,
    }[method]


def method_arguments(config):
    method = config.method
    epsilon = config.epsilon
    kwargs = {"epsilon": epsilon, "seed": config.seed,
              "validation_pgd_steps": config.val_pgd_steps}
    if config.alpha is not None and method != "clean":
        kwargs["alpha_factor"] = config.alpha  # a multiple of epsilon, as the flag
    if method == "zerograd":
        kwargs.update(quantile=config.quantile, zero_iters=config.zero_iters)
    elif method == "zerograd_n_fgsm":
        kwargs.update(quantile=config.quantile)
    elif method == "multigrad":
        kwargs.update(samples=config.samples, threshold=config.threshold)
    elif method == "fgsm_rs":
        kwargs.update(random_init=True)
    elif method == "pgd":
        kwargs.update(steps=config.pgd_steps)
    elif method == "gradalign":
        kwargs.update(gradalign_lambda=config.gradalign_lambda)
    return kwargs


def load_data(config):
    """The `ImageData` of a configuration, split as `zerograd-train` splits it
    (its `dataset`, `val_size`, `seed`, `data_dir` and `download`)."""
    return datasets.load_image_data(config.dataset, val_size=config.val_size,
                                    seed=config.seed, data_dir=config.data_dir,
                                    download=config.download)


def steps_per_epoch(config, num_train):
    return max(1, math.ceil(num_train / config.batch_size))


def build_optimizer(config, total_steps):
    learning_rate = schedules.learning_rate_schedule(
        config.lr_schedule, config.lr_max, total_steps)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=False,
                                    weight_decay=config.weight_decay or None)
    return keras.optimizers.Adam(learning_rate,
                                 weight_decay=config.weight_decay or None)


def build_model(config, data, *, mean=None, std=None):
    """A compiled adversarial model for `config` and `data`.

    No global state changes: the layers get the configuration's dtype policy
    explicitly (`config.precision`, `"auto"` resolved; the logits stay float32),
    and the initial weights depend on `config.seed` only (see
    `seeded_initializers`), not on the global generators, which stay as they
    were. The programs seed the rest of their process in `main`.

    Args:
        config: a resolved `zerograd_tf.runs.config.RunConfig`.
        data: the `ImageData` (for shapes and normalisation statistics).
        mean: per-channel normalisation mean. Defaults to `None`, from `data`.
        std: per-channel normalisation standard deviation. Defaults to
            `None`, from `data`.

    Returns:
        A compiled `zerograd_tf.AdversarialModel`.
    """
    if mean is None:
        mean, std = data.channel_stats()
    policy = resolve_precision(config.precision)
    with seeded_initializers(config.seed):
        classifier = with_dtype_policy(architectures.build_classifier(
            config.model, data.input_shape, data.num_classes, mean=mean, std=std,
            width=config.width, depth=config.depth), policy)
    cls = adversarial_model_class(config.method)
    model = cls(model=classifier, name=f"{config.method}_{config.model}", dtype=policy,
                **method_arguments(config))
    total_steps = steps_per_epoch(config, len(data.x_train)) * config.epochs
    jit = "auto" if config.jit is None else bool(config.jit)
    model.compile(
        optimizer=build_optimizer(config, total_steps),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=jit,
    )
    return model


@contextlib.contextmanager
def seeded_initializers(seed):
    """Layers made inside draw their initializer seeds from `seed` alone.

    Keras gives an initializer (or a dropout layer) made without a seed one
    drawn from Python's `random`; inside, that generator starts from `seed`,
    and its previous state is put back on exit, so the process's random
    state is what it was (not thread-safe: build one model at a time).

    Args:
        seed: an integer.

    Examples:
        >>> import random
        >>> before = random.getstate()
        >>> with seeded_initializers(3):
        ...     first = keras.layers.Dense(2).kernel_initializer.seed
        >>> with seeded_initializers(3):
        ...     second = keras.layers.Dense(2).kernel_initializer.seed
        >>> first == second, random.getstate() == before
        (True, True)
    """
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def warmup_callbacks(config, data):
    """The epsilon warm-up a configuration asks for, as a list of callbacks.

    Args:
        config: a resolved configuration.
        data: its `ImageData` (for the steps per epoch).

    Returns:
        `[EpsilonWarmup]` over `config.epsilon_warmup` epochs, or `[]` (no
        warm-up, or a clean model, which has no epsilon to ramp).
    """
    if config.epsilon_warmup <= 0 or config.method == "clean":
        return []
    steps = steps_per_epoch(config, len(data.x_train))
    return [callbacks_lib.EpsilonWarmup(config.epsilon,
                                        max(1, round(config.epsilon_warmup * steps)))]


def fit(model, config, data, *, callbacks=(), verbose=0, initial_epoch=0):
    """Trains `model` on `config`'s batches as `zerograd-train` does.

    The programs' training without their run directory: the warm-up of
    `warmup_callbacks` first, then `callbacks`, the epochs of
    `train_dataset` from `initial_epoch` on. `zerograd-train` puts
    checkpoints, history and validation around the same pieces
    (`zerograd_tf.runs.training`); the benchmarks call this.

    Args:
        model: the compiled model of `build_model(config, data)`, with the
            weights and optimizer state of `initial_epoch` finished epochs
            when resuming.
        config: a resolved configuration.
        data: its `ImageData`.
        callbacks: further Keras callbacks, after the warm-up. Defaults to
            `()`.
        verbose: Keras `fit` verbosity. Defaults to 0.
        initial_epoch: the number of epochs already trained (a resumed
            run). Defaults to 0.

    Returns:
        The Keras `History`.
    """
    callbacks = [*warmup_callbacks(config, data), *callbacks]
    return model.fit(train_dataset(config, data, initial_epoch),
                     epochs=last_epoch(config, callbacks, initial_epoch),
                     initial_epoch=initial_epoch,
                     steps_per_epoch=steps_per_epoch(config, len(data.x_train)),
                     callbacks=callbacks, shuffle=False, verbose=verbose)


def last_epoch(config, callbacks, initial_epoch):
    """The `epochs` to pass to `fit` when resuming after `initial_epoch` epochs.

    A run that a callback stopped (the CO monitor's `stopped_before` reads
    its saved state) and that was killed before it was finished is
    finished: `fit` then runs no epoch, and its callbacks still load their
    state in `on_train_begin`.

    Args:
        config: the run's resolved configuration.
        callbacks: the run's callbacks.
        initial_epoch: the epochs finished (restored from a checkpoint).

    Returns:
        `initial_epoch` when a callback stopped the run before it, else
        `config.epochs`.
    """
    stopped = any(getattr(c, "stopped_before", lambda epoch: False)(initial_epoch)
                  for c in callbacks)
    return initial_epoch if stopped else config.epochs


def train_dataset(config, data, initial_epoch=0):
    """The training batches from `initial_epoch` on (see `batching.epochs_dataset`).

    Fit it with `steps_per_epoch=steps_per_epoch(config, len(data.x_train))`
    and `initial_epoch`: every epoch's batches depend only on the seed and
    the epoch, so a resumed run trains on what the uninterrupted one did.
    """
    return batching.epochs_dataset(
        data.x_train, data.y_train, config.batch_size, epochs=config.epochs,
        first_epoch=initial_epoch, seed=config.seed, augment=config.augment,
        flip=datasets.flips_allowed(data.name))


def validation_dataset(config, data):
    """The fixed validation subset (first `val_pgd_size` held-out examples)."""
    if data.x_val is None or len(data.x_val) == 0:
        return None
    size = config.val_pgd_size
    return batching.make_dataset(data.x_val[:size], data.y_val[:size],
                                 max(config.batch_size, 256))
