"""Learning-rate schedules of the reference training scripts, per step."""

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
class PiecewiseLR(keras.optimizers.schedules.LearningRateSchedule):
    """`lr_max`, divided by 10 at 50 % and again at 75 % of the run.

    Args:
        lr_max: the initial learning rate.
        total_steps: steps of the whole run.

    Examples:
        >>> schedule = PiecewiseLR(0.1, total_steps=100)
        >>> [round(float(schedule(step)), 4) for step in (0, 50, 75)]
        [0.1, 0.01, 0.001]
    """

    def __init__(self, lr_max, total_steps):
        self.lr_max = float(lr_max)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        factor = tf.where(step < 0.5 * self.total_steps, 1.0,
                          tf.where(step < 0.75 * self.total_steps, 0.1, 0.01))
        return self.lr_max * factor

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
