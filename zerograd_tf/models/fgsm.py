"""FGSM and FGSM-RS adversarial training: `FGSMModel`."""

import keras

from zerograd_tf import attacks
from zerograd_tf.models.base import PACKAGE, AdversarialModel

@keras.saving.register_keras_serializable(package=PACKAGE)
class FGSMModel(AdversarialModel):
    """FGSM adversarial training, or FGSM-RS with `random_init=True`.

    Args:
        random_init: start from `U(-epsilon, epsilon)` (FGSM-RS, Wong et
            al., 2020) instead of zero. Defaults to False.
        alpha_factor: step size as a multiple of epsilon (or `alpha`, in
            pixel units; see `AdversarialModel`). Defaults to 1 for FGSM and
            1.25 for FGSM-RS.
        **kwargs: see `AdversarialModel` (`epsilon` is required).

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> x = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
        >>> y = np.arange(32) % 2
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = zg.FGSMModel(inputs, outputs, epsilon=0.1, random_init=True)
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        >>> round(model.alpha / model.epsilon, 2)
        1.25
    """

    def __init__(self, *args, random_init=False, alpha_factor=None, **kwargs):
        self.random_init = bool(random_init)
        super().__init__(*args, alpha_factor=alpha_factor, **kwargs)

    @property
    def default_alpha_factor(self):
        """1 for FGSM, 1.25 for FGSM-RS (Wong et al., 2020)."""
        return 1.25 if self.random_init else 1.0

    def perturb(self, x, y, seed, hyperparameters):
        return attacks.fgsm(
            self.attack_objective(), x, y, hyperparameters["epsilon"],
            hyperparameters["alpha"],
            init="random" if self.random_init else "zero", seed=seed,
        )

    def get_config(self):
        return {**super().get_config(), "random_init": self.random_init}
