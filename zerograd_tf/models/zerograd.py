"""ZeroGrad adversarial training: `ZeroGradModel`."""

import keras

from zerograd_tf import perturbations
from zerograd_tf import quantile as quantile_lib
from zerograd_tf import validation
from zerograd_tf.models.base import PACKAGE, read_variable
from zerograd_tf.models.masked_gradient import MaskedGradientModel

@keras.saving.register_keras_serializable(package=PACKAGE)
class ZeroGradModel(MaskedGradientModel):
    """ZeroGrad adversarial training (Golgooni et al., 2021).

    FGSM from a random start, after zeroing, per example, the input-gradient
    elements whose magnitude is below the q-quantile of that example's
    magnitudes. This removes the small, sign-unstable gradient elements that
    drive catastrophic overfitting.

    Args:
        quantile: q in [0, 1) (reference default 0.35; the paper used 0.35
            on CIFAR-10, 0.45 on CIFAR-100, 0.7 on SVHN). Settable during
            training (`model.quantile = 0.5`) without retracing, except with
            `quantile_method="top_k"`.
        zero_iters: zeroed sign steps per example, >= 1 (default 1).
        init: `"random"` (default, as the reference) or `"zero"`.
        quantile_method: `per_example_quantile` formulation: `"bisect"`
            (default, fastest), `"sort"` or `"top_k"`.
        alpha: step size; defaults to `2 * epsilon` (reference default).
        **kwargs: see `AdversarialModel` (`epsilon` is required).
    """

    default_alpha_factor = 2.0

    def __init__(self, *args, quantile=0.35, zero_iters=1, init="random",
                 quantile_method=quantile_lib.DEFAULT_QUANTILE_METHOD, alpha=None, **kwargs):
        quantile = validation.check_quantile(quantile)
        self.zero_iters = validation.check_int(zero_iters, "zero_iters", 1)
        self.init = validation.check_choice(init, "init", validation.PERTURBATION_INITS)
        self.quantile_method = validation.check_choice(
            quantile_method, "quantile_method", quantile_lib.QUANTILE_METHODS)
        super().__init__(*args, alpha=alpha, **kwargs)
        self._quantile = self._hyperparameter("quantile", quantile)

    @property
    def quantile(self):
        """The ZeroGrad quantile q (a float); settable, validated."""
        return read_variable(self._quantile)

    @quantile.setter
    def quantile(self, value):
        self._quantile.assign(validation.check_quantile(value))
        if self.quantile_method == "top_k" and self.train_function is not None:
            # TopK needs a static q: retrace with the new value.
            self.make_train_function(force=True)

    def perturb(self, x, y, seed):
        q = self.quantile if self.quantile_method == "top_k" else self._quantile
        return perturbations.zerograd(
            self.attack_objective(), x, y, self._epsilon, self._alpha,
            quantile=q, iterations=self.zero_iters, init=self.init, seed=seed,
            quantile_method=self.quantile_method, return_info=True,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "quantile": self.quantile,
            "zero_iters": self.zero_iters,
            "init": self.init,
            "quantile_method": self.quantile_method,
        }
