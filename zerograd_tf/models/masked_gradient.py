"""The shared bases of the methods that zero gradient elements."""

import keras

from zerograd_tf import quantile as quantile_lib
from zerograd_tf import validation
from zerograd_tf.models.base import AdversarialModel
from zerograd_tf.models.hyperparameters import read_variable

class MaskedGradientModel(AdversarialModel):
    """Adds the `zeroed_fraction` metric of methods that zero gradients.

    The base of `ZeroGradModel` and `MultiGradModel`: `perturb` returns an
    info dict with a per-example `"zeroed_fraction"`, which `fit` logs.

    Args:
        *args, **kwargs: see `AdversarialModel`.

    Examples:
        >>> import keras, zerograd_tf as zg
        >>> inputs = keras.Input((4,))
        >>> model = zg.ZeroGradModel(inputs, keras.layers.Dense(2)(inputs), epsilon=0.1)
        >>> isinstance(model, zg.models.masked_gradient.MaskedGradientModel)
        True
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.zeroed_fraction_tracker = keras.metrics.Mean(name="zeroed_fraction")

    def _train_only_metrics(self):
        return super()._train_only_metrics() + [self.zeroed_fraction_tracker]

    def update_attack_metrics(self, info):
        self.zeroed_fraction_tracker.update_state(info["zeroed_fraction"])


class QuantileMaskedModel(MaskedGradientModel):
    """Adds ZeroGrad's quantile q, a hyperparameter read when the step runs.

    The base of `ZeroGradModel` and `ZeroGradNFGSMModel`, which zero, per
    example, the input-gradient elements below the q-quantile of `|g|`.

    Args:
        quantile: q in [0, 1).
        quantile_method: `per_example_quantile` formulation: `"bisect"`,
            `"sort"` or `"top_k"` (whose k is static: setting `quantile`
            retraces the step).
        *args, **kwargs: see `AdversarialModel`.

    Examples:
        >>> import keras, zerograd_tf as zg
        >>> inputs = keras.Input((4,))
        >>> model = zg.ZeroGradModel(inputs, keras.layers.Dense(2)(inputs), epsilon=0.1)
        >>> model.quantile = 0.5
        >>> isinstance(model, zg.models.masked_gradient.QuantileMaskedModel), model.quantile
        (True, 0.5)
    """

    def __init__(self, *args, quantile, quantile_method, **kwargs):
        quantile = validation.check_quantile(quantile)
        self.quantile_method = validation.check_choice(
            quantile_method, "quantile_method", quantile_lib.QUANTILE_METHODS)
        super().__init__(*args, **kwargs)
        self.add_hyperparameter("quantile", quantile)

    @property
    def quantile(self):
        """The quantile q (a float); settable, validated."""
        return self._read_hyperparameter("quantile")

    @quantile.setter
    def quantile(self, value):
        self._assign_hyperparameter("quantile", validation.check_quantile(value))
        if self.quantile_method == "top_k" and self.train_function is not None:
            # TopK needs a static q: retrace with the new value.
            self.make_train_function(force=True)

    def mask_quantile(self, hyperparameters):
        """The q a step passes to its attack: the tensor read when the step
        runs, or with `"top_k"` (static k) the value when it is traced."""
        if self.quantile_method == "top_k":
            return read_variable(self._hyperparameter_variables["quantile"])
        return hyperparameters["quantile"]
