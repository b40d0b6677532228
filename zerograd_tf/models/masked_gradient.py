"""The shared base of the methods that zero gradient elements."""

import keras

from zerograd_tf.models.base import AdversarialModel

class MaskedGradientModel(AdversarialModel):
    """Adds the `zeroed_fraction` metric of methods that zero gradients."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.zeroed_fraction_tracker = keras.metrics.Mean(name="zeroed_fraction")

    def _train_only_metrics(self):
        return super()._train_only_metrics() + [self.zeroed_fraction_tracker]

    def update_attack_metrics(self, info):
        self.zeroed_fraction_tracker.update_state(info["zeroed_fraction"])
