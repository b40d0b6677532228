"""Learning-rate schedules of the reference training scripts, per step.

Keras ships no triangular (one-cycle) schedule, hence `CyclicLR`; the
piecewise schedule is Keras' `PiecewiseConstantDecay` with the reference's
boundaries.
"""

import math

import keras
import tensorflow as tf

from zerograd_tf import _names

LR_SCHEDULES = _names.LR_SCHEDULES


@keras.saving.register_keras_serializable(package="zerograd_tf")
class CyclicLR(keras.optimizers.schedules.LearningRateSchedule):
    """Triangular one-cycle schedule: 0 -> `lr_max` at `peak` -> 0.

    The ZeroGrad reference interpolates linearly between (0, 0),
    (epochs / 2, lr_max) and (epochs, 0), updated every step.

    Args:
        lr_max: the peak learning rate.
        total_steps: steps of the whole run.
        peak: fraction of the run at which the peak is reached. Defaults
            to 0.5.

    Examples:
        >>> schedule = CyclicLR(0.2, total_steps=100)
        >>> [round(float(schedule(step)), 3) for step in (0, 25, 50, 75, 100)]
        [0.0, 0.1, 0.2, 0.1, 0.0]
    """

    def __init__(self, lr_max, total_steps, peak=0.5):
        self.lr_max = float(lr_max)
        self.total_steps = int(total_steps)
        self.peak = float(peak)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        total = float(max(self.total_steps, 1))
        peak = max(self.peak * total, 1.0)
        rising = self.lr_max * step / peak
        falling = self.lr_max * (total - step) / max(total - peak, 1.0)
        return tf.maximum(tf.where(step < peak, rising, falling), 0.0)

    def get_config(self):
        return {"lr_max": self.lr_max, "total_steps": self.total_steps, "peak": self.peak}


@keras.saving.register_keras_serializable(package="zerograd_tf")
class PiecewiseLR(keras.optimizers.schedules.PiecewiseConstantDecay):
    """`lr_max`, divided by 10 at 50 % and again at 75 % of the run.

    Keras' `PiecewiseConstantDecay` with the boundaries of the reference's
    piecewise schedule: steps below `0.5 * total_steps` run at `lr_max`,
    steps below `0.75 * total_steps` at `lr_max / 10`, the rest at
    `lr_max / 100`. (Keras' boundaries are inclusive, so each is the last
    integer step below its fraction of the run.) Saved under its own name,
    with `lr_max` and `total_steps`, so that it is rebuilt from those.

    Args:
        lr_max: the initial learning rate.
        total_steps: steps of the whole run.

    Examples:
        >>> schedule = PiecewiseLR(0.1, total_steps=100)
        >>> [round(float(schedule(step)), 4) for step in (0, 49, 50, 74, 75)]
        [0.1, 0.1, 0.01, 0.01, 0.001]
    """

    def __init__(self, lr_max, total_steps):
        self.lr_max = float(lr_max)
        self.total_steps = int(total_steps)
        super().__init__(
            boundaries=[math.ceil(0.5 * self.total_steps) - 1,
                        math.ceil(0.75 * self.total_steps) - 1],
            values=[self.lr_max, self.lr_max / 10, self.lr_max / 100],
            name="PiecewiseLR")

    def get_config(self):
        return {"lr_max": self.lr_max, "total_steps": self.total_steps}


def learning_rate_schedule(name, lr_max, total_steps):
    """A schedule by name: `cyclic`, `piecewise` or `constant`.

    Raises:
        ValueError: for an unknown name.
    """
    if name == "cyclic":
        return CyclicLR(lr_max, total_steps)
    if name == "piecewise":
        return PiecewiseLR(lr_max, total_steps)
    if name == "constant":
        return float(lr_max)
    raise ValueError(f"unknown lr schedule {name!r}: use one of {', '.join(LR_SCHEDULES)}.")
