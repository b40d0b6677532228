"""MultiGrad adversarial training: `MultiGradModel`."""

import keras

from zerograd_tf import attacks
from zerograd_tf import validation
from zerograd_tf.models.base import PACKAGE
from zerograd_tf.models.masked_gradient import MaskedGradientModel

@keras.saving.register_keras_serializable(package=PACKAGE)
class MultiGradModel(MaskedGradientModel):
    """MultiGrad adversarial training (Golgooni et al., 2021).

    The input gradient is taken at `samples` random starts in one batched
    pass; only elements whose signs agree (at least `threshold` of them)
    take a step, from zero.

    Args:
        samples: n >= 1 random starts. Defaults to 3.
        threshold: th in [1, n], agreeing signs needed. Defaults to n
            (unanimous).
        alpha_factor: step size as a multiple of epsilon (or `alpha`, in
            pixel units; see `AdversarialModel`). Defaults to 2 (any factor
            >= 1 is a full step).
        **kwargs: see `AdversarialModel` (`epsilon` is required).

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> x = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
        >>> y = np.arange(32) % 2
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = zg.MultiGradModel(inputs, outputs, epsilon=0.1, samples=3)
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        >>> "zeroed_fraction" in history.history
        True
    """

    default_alpha_factor = 2.0

    def __init__(self, *args, samples=3, threshold=None, alpha_factor=None, **kwargs):
        self.samples = validation.check_int(samples, "samples", 1)
        threshold = self.samples if threshold is None else threshold
        self.threshold = validation.check_int(threshold, "threshold", 1, self.samples)
        super().__init__(*args, alpha_factor=alpha_factor, **kwargs)

    def perturb(self, x, y, seed, hyperparameters):
        return attacks.multigrad(
            self.attack_objective(), x, y, hyperparameters["epsilon"],
            hyperparameters["alpha"],
            samples=self.samples, threshold=self.threshold, seed=seed,
        )

    def get_config(self):
        return {**super().get_config(), "samples": self.samples,
                "threshold": self.threshold}
