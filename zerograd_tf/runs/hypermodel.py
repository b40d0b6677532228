"""A KerasTuner hypermodel of ZeroGrad/MultiGrad training, scored by robust accuracy."""

import time

import keras_tuner
import numpy as np

from zerograd_tf import monitoring, validation
from zerograd_tf.runs import pipeline

# The score: measured once a trial has trained, under a name that no epoch's
# logs hold (the per-epoch validation logs `val_pgd_accuracy`). KerasTuner's
# checkpoint callback then keeps every epoch's weights, i.e. the final ones,
# instead of those of the epoch with the best validation value.
OBJECTIVE = "final_val_pgd_accuracy"
SEARCHABLE_METHODS = ("zerograd", "multigrad")


def check_range(value, name, low=None, high=None, high_open=False):
    """Checks a `(min, max)` search range.

    Raises:
        ValueError: for an empty or inverted range, or bounds outside
            `[low, high]` (`[low, high)` with `high_open`).
    """
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a pair (min, max), got {value!r}.") from None
    if not lo < hi:
        raise ValueError(f"`{name}` must satisfy min < max (a non-empty range), got "
                         f"({lo:g}, {hi:g}).")
    upper_ok = hi < high if high_open else hi <= high if high is not None else True
    if (low is not None and lo < low) or (high is not None and not upper_ok):
        bracket = ")" if high_open else "]"
        raise ValueError(f"`{name}` must lie in [{low:g}, {high:g}{bracket}, got "
                         f"({lo:g}, {hi:g}).")
    return lo, hi


class ZeroGradHyperModel(keras_tuner.HyperModel):
    """Builds `zerograd-train`'s model with searched hyperparameters.

    Searched: `quantile` (ZeroGrad's q), `alpha` (the step size as a multiple
    of epsilon) and, optionally, `lr_max`; with `method="search"`, also the
    method (ZeroGrad or MultiGrad, whose `quantile` is then inactive).

    The score of a trial is its **final** robust accuracy: after training,
    PGD-k on the fixed validation subset, reported as `final_val_pgd_accuracy`
    (maximised), and the weights KerasTuner keeps (`get_best_models`,
    Hyperband's continued trials) are the final ones that the score
    describes. Keras' history would give KerasTuner the best epoch instead,
    so a run that catastrophically overfits after an early peak would score
    its peak; scored at the end, it scores its collapse.

    Under Hyperband, a trial's learning-rate schedule spans the trial's own
    epochs (`tuner/epochs`), not the search's maximum, and a continued trial
    resumes the optimizer's state (its step counter included) with the
    weights, and its data from `tuner/initial_epoch` (see `fit`).

    Args:
        config: a resolved `zerograd_tf.runs.config.RunConfig`.
        data: the `ImageData` it was resolved on.
        method: `"zerograd"`, `"multigrad"` or `"search"`. Defaults to
            `"zerograd"`.
        quantile_range: `(min, max)` of q, within [0, 1). Defaults to
            `(0.0, 0.9)`.
        alpha_range: `(min, max)` of alpha / epsilon, > 0. Defaults to
            `(0.5, 2.5)`.
        lr_range: `(min, max)` of the peak learning rate (log scale).
            Defaults to `None`: the configuration's, not searched.
        evaluate: a `(model, x, y) -> {"clean_accuracy", "pgd_accuracy"}`
            replacing the PGD-k measurement (for tests). Defaults to `None`.
        name: the hypermodel's name. Defaults to `None`.
    """

    def __init__(self, config, data, *, method="zerograd", quantile_range=(0.0, 0.9),
                 alpha_range=(0.5, 2.5), lr_range=None, evaluate=None, name=None):
        super().__init__(name=name, tunable=True)
        validation.check_choice(method, "method", (*SEARCHABLE_METHODS, "search"))
        self.config = config
        self.data = data
        self.method = method
        self.quantile_range = check_range(quantile_range, "quantile_range", 0.0, 1.0,
                                          high_open=True)
        self.alpha_range = check_range(alpha_range, "alpha_range", 1e-6, 100.0)
        self.lr_range = None if lr_range is None else check_range(
            lr_range, "lr_range", 1e-8, 10.0)
        size = config.val_pgd_size
        x_val, self.y_val = data.x_val[:size], data.y_val[:size]
        self.x_val = (x_val.astype(np.float32) / 255 if x_val.dtype == np.uint8 else x_val)
        self.evaluate = evaluate

    def trial_config(self, hp):
        """The `zerograd-train` configuration of a trial's hyperparameters."""
        if self.method == "search":
            method = hp.Choice("method", list(SEARCHABLE_METHODS))
        else:
            method = hp.Fixed("method", self.method)
        changes = {"method": method}
        if method == "zerograd":
            with hp.conditional_scope("method", ["zerograd"]):
                changes["quantile"] = hp.Float("quantile", *self.quantile_range)
        changes["alpha"] = hp.Float("alpha", *self.alpha_range)
        if self.lr_range is not None:
            changes["lr_max"] = hp.Float("lr_max", *self.lr_range, sampling="log")
        return self.config.replace(**changes)

    def build(self, hp):
        """The compiled model of a trial, its optimizer built.

        The optimizer's variables exist before any training, so that the
        weights KerasTuner loads into it (a continued Hyperband trial,
        `get_best_models`) restore the optimizer's state too.
        """
        config = self.trial_config(hp)
        epochs = hp.values.get("tuner/epochs")
        if epochs:
            config = config.replace(epochs=int(epochs))
        model = pipeline.build_model(config, self.data)
        model.build((None, *self.data.input_shape))
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(self, hp, model, x=None, *args, initial_epoch=0, **kwargs):
        """Trains a trial's model, then measures its score.

        Args:
            hp: the trial's `keras_tuner.HyperParameters`.
            model: the model `build` made (with a continued trial's weights).
            x: the training data. Defaults to `None`: the configuration's
                batches from `initial_epoch` on (`pipeline.train_dataset`), so
                a continued Hyperband trial trains on the batches the
                uninterrupted trial would have seen, not on epoch 0's again.
            *args: further positional arguments of `model.fit`.
            initial_epoch: the epoch to start from (Hyperband's
                `tuner/initial_epoch` for a continued trial). Defaults to 0.
            **kwargs: further keyword arguments of `model.fit`;
                `steps_per_epoch` defaults to the configuration's with `x=None`,
                `validation_freq` to its `val_freq`; its epsilon warm-up is
                added before `callbacks`.

        Returns:
            The trial's metrics: `final_val_pgd_accuracy` (the objective),
            `val_clean_accuracy` and `trial_seconds`.
        """
        if x is None:
            x = pipeline.train_dataset(self.config, self.data, initial_epoch)
            kwargs.setdefault("steps_per_epoch",
                              pipeline.steps_per_epoch(self.config, len(self.data.x_train)))
        # As zerograd-train trains: its epsilon warm-up, its validation
        # frequency.
        kwargs["callbacks"] = [*pipeline.warmup_callbacks(self.config, self.data),
                               *kwargs.get("callbacks", [])]
        kwargs.setdefault("validation_freq", self.config.val_freq)
        start = time.perf_counter()
        model.fit(x, *args, initial_epoch=initial_epoch, **kwargs)
        seconds = time.perf_counter() - start
        if self.evaluate is not None:
            measured = self.evaluate(model, self.x_val, self.y_val)
        else:
            measured = monitoring.AttackMeter(
                model, self.config.epsilon,
                pgd_steps=max(1, self.config.val_pgd_steps))(
                    self.x_val, self.y_val, seed=self.config.seed)
        return {OBJECTIVE: float(measured["pgd_accuracy"]),
                "val_clean_accuracy": float(measured["clean_accuracy"]),
                "trial_seconds": seconds}
