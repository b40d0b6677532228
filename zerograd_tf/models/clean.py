"""Standard training with the adversarial models' interface: `CleanModel`."""

import keras
import tensorflow as tf

from zerograd_tf.models.base import PACKAGE, AdversarialModel

@keras.saving.register_keras_serializable(package=PACKAGE)
class CleanModel(AdversarialModel):
    """Standard (non-adversarial) training with the same interface.

    `perturb` returns zero, so `fit` trains on clean inputs; the model still
    offers `validation_pgd_steps`, the metrics and the saving of the others,
    which makes it the baseline of comparisons. `epsilon` is then only the
    radius of the validation attack.
    """

    def perturb(self, x, y, seed):
        del y, seed
        return tf.zeros_like(x), {}
