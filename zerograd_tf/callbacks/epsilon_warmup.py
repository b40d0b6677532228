"""`EpsilonWarmup`: a linear ramp of the model's epsilon over the first steps."""

import keras

from zerograd_tf import validation


class EpsilonWarmup(keras.callbacks.Callback):
    """Ramps the model's epsilon linearly from 0 to its target.

    Multi-step PGD training at a large epsilon often fails to learn from the
    start; ramping epsilon over the first epochs fixes that. The ramp is a
    function of the optimizer's step counter, so it is exact after resuming.
    The step size follows: the models store it as a multiple of epsilon
    (`alpha_factor`), so each step's alpha / epsilon is the configured
    ratio.

    Args:
        epsilon: the target epsilon in (0, 1] (required).
        warmup_steps: steps over which epsilon grows, >= 1 (required).

    Examples:
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> x = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
        >>> y = np.arange(32) % 2
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = zg.FGSMModel(inputs, outputs, epsilon=0.1, random_init=True, seed=0)
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> warmup = zg.callbacks.EpsilonWarmup(0.1, warmup_steps=4)
        >>> history = model.fit(x, y, epochs=1, batch_size=16, callbacks=[warmup], verbose=0)
        >>> round(model.epsilon, 3), round(model.alpha, 4)  # 2 of the 4 ramp steps taken
        (0.05, 0.0625)
    """

    def __init__(self, epsilon, warmup_steps):
        super().__init__()
        self.epsilon = validation.check_epsilon(epsilon)
        self.warmup_steps = validation.check_int(warmup_steps, "warmup_steps", 1)

    def on_train_batch_begin(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        fraction = min(1.0, (step + 1) / self.warmup_steps)
        self.model.epsilon = self.epsilon * fraction
