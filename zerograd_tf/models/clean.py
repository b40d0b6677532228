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

    Args:
        **kwargs: see `AdversarialModel` (`epsilon` is required).

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> x = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
        >>> y = np.arange(32) % 2
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = zg.CleanModel(inputs, outputs, epsilon=0.1, validation_pgd_steps=2)
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        >>> sorted(model.evaluate(x, y, verbose=0, return_dict=True))
        ['loss', 'pgd_accuracy']
    """

    def perturb(self, x, y, seed, hyperparameters):
        del y, seed, hyperparameters
        return tf.zeros_like(x), {}
