"""N-FGSM adversarial training: `NFGSMModel`."""

import keras

from zerograd_tf import attacks
from zerograd_tf import validation
from zerograd_tf.models.base import PACKAGE, AdversarialModel

@keras.saving.register_keras_serializable(package=PACKAGE)
class NFGSMModel(AdversarialModel):
    """N-FGSM adversarial training (de Jorge et al., 2022).

    Args:
        noise_magnitude: k > 0; the noise is `U(-k epsilon, k epsilon)`.
            Defaults to 2.
        clip: projection radius, or `None` for no projection. Defaults to
            `None`.
        alpha_factor: step size as a multiple of epsilon (or `alpha`, in
            pixel units; see `AdversarialModel`). Defaults to 1.
        **kwargs: see `AdversarialModel` (`epsilon` is required).

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> x = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
        >>> y = np.arange(32) % 2
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = zg.NFGSMModel(inputs, outputs, epsilon=0.1)
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        >>> model.noise_magnitude, model.clip
        (2.0, None)
    """

    def __init__(self, *args, noise_magnitude=2.0, clip=None, alpha_factor=None, **kwargs):
        self.noise_magnitude = validation.check_positive(noise_magnitude, "noise_magnitude")
        self.clip = None if clip is None else validation.check_positive(clip, "clip")
        super().__init__(*args, alpha_factor=alpha_factor, **kwargs)

    def perturb(self, x, y, seed, hyperparameters):
        return attacks.n_fgsm(
            self.attack_objective(), x, y, hyperparameters["epsilon"],
            hyperparameters["alpha"],
            noise_magnitude=self.noise_magnitude, clip=self.clip, seed=seed,
        )

    def get_config(self):
        return {**super().get_config(), "noise_magnitude": self.noise_magnitude,
                "clip": self.clip}
