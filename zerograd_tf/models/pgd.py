"""PGD adversarial training: `PGDModel`."""

import keras

from zerograd_tf import perturbations
from zerograd_tf import validation
from zerograd_tf.models.base import PACKAGE, AdversarialModel

@keras.saving.register_keras_serializable(package=PACKAGE)
class PGDModel(AdversarialModel):
    """PGD adversarial training (Madry et al., 2018): the multi-step reference.

    Args:
        steps: PGD steps k >= 1 (default 10).
        restarts: restarts >= 1 (default 1).
        alpha: step size; defaults to `2.5 * epsilon / steps` (Madry et al.).
        **kwargs: see `AdversarialModel` (`epsilon` is required).
    """

    def __init__(self, *args, steps=10, restarts=1, alpha=None, **kwargs):
        self.steps = validation.check_int(steps, "steps", 1)
        self.restarts = validation.check_int(restarts, "restarts", 1)
        epsilon = kwargs.get("epsilon")
        if alpha is None and epsilon is not None:
            alpha = 2.5 * validation.check_epsilon(epsilon) / self.steps
        super().__init__(*args, alpha=alpha, **kwargs)

    def perturb(self, x, y, seed):
        delta = perturbations.pgd(
            self.attack_objective(), x, y, self._epsilon, self._alpha,
            steps=self.steps, restarts=self.restarts, seed=seed,
        )
        return delta, {}

    def get_config(self):
        return {**super().get_config(), "steps": self.steps, "restarts": self.restarts}
