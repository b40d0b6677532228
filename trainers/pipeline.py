"""From a resolved configuration to a compiled model and its data pipelines.

Shared by `zerograd-train`, the tuner and the benchmarks, so that all of
them train the same way.
"""

import math

import keras

import zerograd_tf as zg
from zerograd_tf import architectures, datasets, schedules


def adversarial_model_class(method):
    """The model class and its method-specific arguments for a config."""
    return {
        "zerograd": zg.ZeroGradModel,
        "multigrad": zg.MultiGradModel,
        "fgsm": zg.FGSMModel,
        "fgsm_rs": zg.FGSMModel,
        "n_fgsm": zg.NFGSMModel,
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
        kwargs["alpha"] = config.alpha * epsilon
    if method == "zerograd":
        kwargs.update(quantile=config.quantile, zero_iters=config.zero_iters)
    elif method == "multigrad":
        kwargs.update(samples=config.samples, threshold=config.threshold)
    elif method == "fgsm_rs":
        kwargs.update(random_init=True)
    elif method == "pgd":
        kwargs.update(steps=config.pgd_steps)
    elif method == "gradalign":
        kwargs.update(gradalign_lambda=config.gradalign_lambda)
    return kwargs


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

    Args:
        config: a resolved configuration (see `zerograd_tf.trainers.options`).
        data: the `ImageData` (for shapes and normalisation statistics).
        mean, std: normalisation statistics (default: from `data`).

    Returns:
        A compiled `zerograd_tf.AdversarialModel`.
    """
    # The model's dtype policy is fixed when its layers are built: set it
    # for the build only, and leave the global policy as it was (a model
    # built earlier or later in the same process - tuner trials, the study -
    # gets its own).
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if config.mixed_precision else "float32")
    try:
        return _build_model(config, data, mean, std)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _build_model(config, data, mean, std):
    if mean is None:
        mean, std = data.channel_stats()
    # The programs' one global side effect: seeded initial weights (Python,
    # NumPy and TensorFlow generators, as `keras.utils.set_random_seed`).
    keras.utils.set_random_seed(config.seed)
    classifier = architectures.build_classifier(
        config.model, data.input_shape, data.num_classes, mean=mean, std=std,
        width=config.width, depth=config.depth)
    cls = adversarial_model_class(config.method)
    model = cls(model=classifier, name=f"{config.method}_{config.model}",
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


def train_dataset(config, data, initial_epoch=0):
    """The training batches from `initial_epoch` on (see `datasets.epochs_dataset`).

    Fit it with `steps_per_epoch=steps_per_epoch(config, len(data.x_train))`
    and `initial_epoch`: every epoch's batches depend only on the seed and
    the epoch, so a resumed run trains on what the uninterrupted one did.
    """
    return datasets.epochs_dataset(
        data.x_train, data.y_train, config.batch_size, epochs=config.epochs,
        first_epoch=initial_epoch, seed=config.seed, augment=config.augment,
        flip=datasets.flips_allowed(data.name))


def validation_dataset(config, data):
    """The fixed validation subset (first `val_pgd_size` held-out examples)."""
    if data.x_val is None or len(data.x_val) == 0:
        return None
    size = config.val_pgd_size
    return datasets.make_dataset(data.x_val[:size], data.y_val[:size],
                                 max(config.batch_size, 256))
