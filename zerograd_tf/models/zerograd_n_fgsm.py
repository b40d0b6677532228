"""ZeroGrad on N-FGSM's noise: `ZeroGradNFGSMModel`."""

import keras

from zerograd_tf import _names
from zerograd_tf import attacks
from zerograd_tf import quantile as quantile_lib
from zerograd_tf.models.base import PACKAGE
from zerograd_tf.models.masked_gradient import QuantileMaskedModel
from zerograd_tf.models.n_fgsm import NFGSMModel


@keras.saving.register_keras_serializable(package=PACKAGE)
class ZeroGradNFGSMModel(QuantileMaskedModel, NFGSMModel):
    """N-FGSM training with ZeroGrad's mask on the step.

    N-FGSM's perturbation (noise `U(-k epsilon, k epsilon)`, one sign step
    of `alpha` from it, no projection by default), after zeroing, per
    example, the input-gradient elements whose magnitude is below the
    q-quantile of that example's magnitudes (as `ZeroGradModel` does): those
    elements keep their noise. ZeroGrad's insight (small gradient elements
    have unstable signs) on top of the strongest single-step baseline of
    the project's study on CIFAR-10. `attacks.n_fgsm(..., quantile=q)` is the attack.

    Args:
        quantile: q in [0, 1) (0 is N-FGSM). Defaults to 0.35. Settable
            during training (`model.quantile = 0.5`) without retracing,
            except with `quantile_method="top_k"`.
        quantile_method: `per_example_quantile` formulation: `"bisect"`,
            `"sort"` or `"top_k"`. Defaults to `"bisect"`.
        noise_magnitude: k > 0; the noise is `U(-k epsilon, k epsilon)`.
            Defaults to 2.
        clip: projection radius, or `None` for no projection. Defaults to
            `None`.
        alpha_factor: step size as a multiple of epsilon (or `alpha`, in
            pixel units; see `AdversarialModel`). Defaults to 1 (N-FGSM's).
        **kwargs: see `AdversarialModel` (`epsilon` is required).

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> x = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
        >>> y = np.arange(32) % 2
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = zg.ZeroGradNFGSMModel(inputs, outputs, epsilon=0.1, quantile=0.5)
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        >>> round(history.history["zeroed_fraction"][0], 2), model.noise_magnitude
        (0.5, 2.0)
    """

    def __init__(self, *args, quantile=_names.DEFAULT_QUANTILE,
                 quantile_method=quantile_lib.DEFAULT_QUANTILE_METHOD, noise_magnitude=2.0,
                 clip=None, alpha_factor=None, **kwargs):
        super().__init__(*args, quantile=quantile, quantile_method=quantile_method,
                         noise_magnitude=noise_magnitude, clip=clip,
                         alpha_factor=alpha_factor, **kwargs)

    def perturb(self, x, y, seed, hyperparameters):
        return attacks.n_fgsm(
            self.attack_objective(), x, y, hyperparameters["epsilon"],
            hyperparameters["alpha"], noise_magnitude=self.noise_magnitude, clip=self.clip,
            seed=seed, quantile=self.mask_quantile(hyperparameters),
            quantile_method=self.quantile_method,
        )

    def get_config(self):
        return {**super().get_config(), "quantile": self.quantile,
                "quantile_method": self.quantile_method}
