"""PGD adversarial training: `PGDModel`."""

import keras

from zerograd_tf import attacks
from zerograd_tf import validation
from zerograd_tf.models.base import PACKAGE, AdversarialModel

@keras.saving.register_keras_serializable(package=PACKAGE)
class PGDModel(AdversarialModel):
    """PGD adversarial training (Madry et al., 2018): the multi-step reference.

    Args:
        steps: PGD steps k >= 1. Defaults to 10.
        restarts: restarts >= 1. Defaults to 1.
        alpha_factor: step size as a multiple of epsilon (or `alpha`, in
            pixel units; see `AdversarialModel`). Defaults to `2.5 / steps`
            (Madry et al.).
        **kwargs: see `AdversarialModel` (`epsilon` is required).

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> x = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
        >>> y = np.arange(32) % 2
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = zg.PGDModel(inputs, outputs, epsilon=0.1, steps=3)
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        >>> round(model.alpha, 4)
        0.0833
    """

    def __init__(self, *args, steps=10, restarts=1, alpha_factor=None, **kwargs):
        self.steps = validation.check_int(steps, "steps", 1)
        self.restarts = validation.check_int(restarts, "restarts", 1)
        super().__init__(*args, alpha_factor=alpha_factor, **kwargs)

    @property
    def default_alpha_factor(self):
        """`2.5 / steps` (Madry et al., 2018)."""
        return 2.5 / self.steps

    def perturb(self, x, y, seed, hyperparameters):
        delta, _ = attacks.pgd(
            self.attack_objective(), x, y, hyperparameters["epsilon"],
            hyperparameters["alpha"],
            steps=self.steps, restarts=self.restarts, seed=seed,
        )
        return delta, {}

    def get_config(self):
        return {**super().get_config(), "steps": self.steps, "restarts": self.restarts}
