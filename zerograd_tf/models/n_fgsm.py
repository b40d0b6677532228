"""N-FGSM adversarial training: `NFGSMModel`."""

import keras

from zerograd_tf import perturbations
from zerograd_tf import validation
from zerograd_tf.models.base import PACKAGE, AdversarialModel

@keras.saving.register_keras_serializable(package=PACKAGE)
class NFGSMModel(AdversarialModel):
    """N-FGSM adversarial training (de Jorge et al., 2022).

    Args:
        noise_magnitude: k > 0; noise is `U(-k epsilon, k epsilon)` (default 2).
        clip: optional projection radius; `None` (default) does not project.
        alpha: step size; defaults to `epsilon`.
        **kwargs: see `AdversarialModel` (`epsilon` is required).
    """

    def __init__(self, *args, noise_magnitude=2.0, clip=None, alpha=None, **kwargs):
        self.noise_magnitude = validation.check_positive(noise_magnitude, "noise_magnitude")
        self.clip = None if clip is None else validation.check_positive(clip, "clip")
        super().__init__(*args, alpha=alpha, **kwargs)

    def perturb(self, x, y, seed):
        return perturbations.n_fgsm(
            self.attack_objective(), x, y, self._epsilon, self._alpha,
            noise_magnitude=self.noise_magnitude, clip=self.clip, seed=seed,
            return_info=True,
        )

    def get_config(self):
        return {**super().get_config(), "noise_magnitude": self.noise_magnitude,
                "clip": self.clip}
