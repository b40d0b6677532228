"""MultiGrad adversarial training: `MultiGradModel`."""

import keras

from zerograd_tf import perturbations
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
        samples: n >= 1 random starts (default 3).
        threshold: th in [1, n], agreeing signs needed; defaults to n.
        alpha: step size; defaults to `2 * epsilon` (any alpha >= epsilon is
            a full step).
        **kwargs: see `AdversarialModel` (`epsilon` is required).
    """

    default_alpha_factor = 2.0

    def __init__(self, *args, samples=3, threshold=None, alpha=None, **kwargs):
        self.samples = validation.check_int(samples, "samples", 1)
        threshold = self.samples if threshold is None else threshold
        self.threshold = validation.check_int(threshold, "threshold", 1, self.samples)
        super().__init__(*args, alpha=alpha, **kwargs)

    def perturb(self, x, y, seed):
        return perturbations.multigrad(
            self.attack_objective(), x, y, self._epsilon, self._alpha,
            samples=self.samples, threshold=self.threshold, seed=seed,
            return_info=True,
        )

    def get_config(self):
        return {**super().get_config(), "samples": self.samples,
                "threshold": self.threshold}
