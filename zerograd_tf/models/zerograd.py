"""ZeroGrad adversarial training: `ZeroGradModel`."""

import keras

from zerograd_tf import _names
from zerograd_tf import attacks
from zerograd_tf import quantile as quantile_lib
from zerograd_tf import validation
from zerograd_tf.callbacks import auto_quantile
from zerograd_tf.callbacks.co_monitor import CatastrophicOverfittingMonitor
from zerograd_tf.models.base import PACKAGE
from zerograd_tf.models.masked_gradient import QuantileMaskedModel

AUTO = "auto"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ZeroGradModel(QuantileMaskedModel):
    """ZeroGrad adversarial training (Golgooni et al., 2021).

    FGSM from a random start, after zeroing, per example, the input-gradient
    elements whose magnitude is below the q-quantile of that example's
    magnitudes. This removes the small, sign-unstable gradient elements that
    drive catastrophic overfitting.

    The safe quantile depends on the data, epsilon and the step size;
    docs/study.md measures it per data set (at the reference step, alpha =
    2 epsilon, no quantile there has been free of catastrophic overfitting
    on both MNIST and CIFAR-10; q = 0.7 at alpha = 1.25 epsilon has been,
    and so has the same mask on N-FGSM's step, `ZeroGradNFGSMModel` and
    `zerograd-train`'s default, with the higher worst case in both).
    `quantile="auto"` tunes it during training: q starts at 0.35 and the
    `zerograd_tf.callbacks.AutoQuantile` callback, which you pass to `fit`
    with held-out examples, raises it whenever catastrophic overfitting
    starts (the rule and its reasons are in `AutoQuantile`'s
    documentation). `fit` adds no callback: it refuses to train a
    `quantile="auto"` model without one, which would leave q at 0.35.

    Args:
        quantile: q in [0, 1), or `"auto"`. Defaults to 0.35 (the
            reference's; the paper used 0.35 on CIFAR-10, 0.45 on CIFAR-100,
            0.7 on SVHN). Settable during training (`model.quantile = 0.5`)
            without retracing, except with `quantile_method="top_k"`.
        zero_iters: zeroed sign steps per example, >= 1. Defaults to 1.
        init: `"random"` (as the reference) or `"zero"`. Defaults to
            `"random"`.
        quantile_method: `per_example_quantile` formulation: `"bisect"`
            (fastest), `"sort"` or `"top_k"`. Defaults to `"bisect"`.
        alpha_factor: step size as a multiple of epsilon (or `alpha`, in
            pixel units; see `AdversarialModel`). Defaults to 2 (the
            reference's).
        **kwargs: see `AdversarialModel` (`epsilon` is required).

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> x = np.random.default_rng(0).random((96, 8, 8, 1), dtype="float32")
        >>> y = np.arange(96) % 2
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = zg.ZeroGradModel(inputs, outputs, epsilon=0.1, quantile="auto")
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> auto = zg.callbacks.AutoQuantile(x[72:], y[72:], verbose=0)
        >>> history = model.fit(x[:72], y[:72], epochs=2, batch_size=16, callbacks=[auto],
        ...                     verbose=0)
        >>> model.quantile_auto, round(model.quantile, 2)
        (True, 0.35)
    """

    default_alpha_factor = 2.0

    def __init__(self, *args, quantile=_names.DEFAULT_QUANTILE, zero_iters=1, init="random",
                 quantile_method=quantile_lib.DEFAULT_QUANTILE_METHOD, alpha_factor=None,
                 **kwargs):
        self.quantile_auto = isinstance(quantile, str) and quantile == AUTO
        if isinstance(quantile, str) and not self.quantile_auto:
            raise ValueError(f"`quantile` must be a number in [0, 1) or 'auto', got {quantile!r}.")
        self.zero_iters = validation.check_int(zero_iters, "zero_iters", 1)
        self.init = validation.check_choice(init, "init", validation.PERTURBATION_INITS)
        super().__init__(
            *args, quantile=auto_quantile.START_QUANTILE if self.quantile_auto else quantile,
            quantile_method=quantile_method, alpha_factor=alpha_factor, **kwargs)

    def _check_callbacks(self, callbacks):
        adapts = any(isinstance(c, CatastrophicOverfittingMonitor) and c.action == "adapt"
                     for c in callbacks)
        if self.quantile_auto and not adapts:
            raise ValueError(
                "ZeroGradModel(quantile='auto') is tuned by the AutoQuantile callback, which "
                "`fit` does not add: pass `callbacks=[zerograd_tf.callbacks.AutoQuantile("
                "x_held_out, y_held_out)]` (arrays, or a tf.data.Dataset or "
                "keras.utils.PyDataset of (x, y) batches as `x_held_out`), or set a fixed "
                "`quantile`.")

    def perturb(self, x, y, seed, hyperparameters):
        return attacks.zerograd(
            self.attack_objective(), x, y, hyperparameters["epsilon"],
            hyperparameters["alpha"], quantile=self.mask_quantile(hyperparameters),
            iterations=self.zero_iters,
            init=self.init, seed=seed, quantile_method=self.quantile_method,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "quantile": AUTO if self.quantile_auto else self.quantile,
            "zero_iters": self.zero_iters,
            "init": self.init,
            "quantile_method": self.quantile_method,
        }
