"""The shared base of the methods that zero gradient elements."""

import keras

from zerograd_tf.models.base import AdversarialModel

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
