"""ZeroGrad adversarial training: `ZeroGradModel`."""

import keras
import numpy as np
import tensorflow as tf

from zerograd_tf import attacks
from zerograd_tf import quantile as quantile_lib
from zerograd_tf import validation
from zerograd_tf.models.base import PACKAGE, read_variable
from zerograd_tf.models.masked_gradient import MaskedGradientModel

AUTO = "auto"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ZeroGradModel(MaskedGradientModel):
    """ZeroGrad adversarial training (Golgooni et al., 2021).

    FGSM from a random start, after zeroing, per example, the input-gradient
    elements whose magnitude is below the q-quantile of that example's
    magnitudes. This removes the small, sign-unstable gradient elements that
    drive catastrophic overfitting.

    The safe quantile depends on the data (the README's CO study: 0.5 on
    CIFAR-10, 0.7 on MNIST; the paper's 0.35 overfits on both).
    `quantile="auto"` tunes it during training: q starts at 0.35, and
    `fit` adds a `zerograd_tf.callbacks.AutoQuantile` monitor that checks
    held-out data every 20 steps and, when catastrophic overfitting starts,
    restores the last healthy weights and raises q by 0.1 (the rule and
    its reasons are in `AutoQuantile`'s documentation). The held-out
    examples are the first 512 of `fit`'s `validation_data` (arrays or a
    `tf.data.Dataset`) or of its `validation_split`; pass an `AutoQuantile`
    callback yourself to use other data or settings.

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
        alpha: step size. Defaults to `2 * epsilon` (the reference's).
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
        >>> history = model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25,
        ...                     verbose=0)
        >>> model.quantile_auto, round(model.quantile, 2)
        (True, 0.35)
    """

    default_alpha_factor = 2.0

    def __init__(self, *args, quantile=0.35, zero_iters=1, init="random",
                 quantile_method=quantile_lib.DEFAULT_QUANTILE_METHOD, alpha=None, **kwargs):
        from zerograd_tf.callbacks import auto_quantile  # (callbacks build on models)

        self.quantile_auto = isinstance(quantile, str) and quantile == AUTO
        if isinstance(quantile, str) and not self.quantile_auto:
            raise ValueError(f"`quantile` must be a number in [0, 1) or 'auto', got {quantile!r}.")
        quantile = validation.check_quantile(
            auto_quantile.START_QUANTILE if self.quantile_auto else quantile)
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

    def fit(self, x=None, y=None, *args, callbacks=None, validation_split=0.0,
            validation_data=None, **kwargs):
        """Keras' `fit`; with `quantile="auto"`, adds the `AutoQuantile` monitor.

        Unless `callbacks` holds an `AutoQuantile` already, the monitor
        checks the first 512 examples of `validation_data` or, with
        `validation_split`, of the examples Keras holds out (the last
        fraction of `x`).

        Raises:
            ValueError: with `quantile="auto"` and no held-out data.
        """
        from zerograd_tf.callbacks import auto_quantile  # (callbacks build on models)

        callbacks = list(callbacks or [])
        if self.quantile_auto and not any(
                isinstance(c, auto_quantile.AutoQuantile) for c in callbacks):
            held_out = _held_out_examples(x, y, validation_split, validation_data,
                                          auto_quantile.CONFIRM_SIZE)
            callbacks.insert(0, auto_quantile.AutoQuantile(*held_out))
        return super().fit(x, y, *args, callbacks=callbacks,
                           validation_split=validation_split,
                           validation_data=validation_data, **kwargs)

    def perturb(self, x, y, seed):
        q = self.quantile if self.quantile_method == "top_k" else self._quantile
        return attacks.zerograd(
            self.attack_objective(), x, y, self._epsilon, self._alpha,
            quantile=q, iterations=self.zero_iters, init=self.init, seed=seed,
            quantile_method=self.quantile_method,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "quantile": AUTO if self.quantile_auto else self.quantile,
            "zero_iters": self.zero_iters,
            "init": self.init,
            "quantile_method": self.quantile_method,
        }


def _held_out_examples(x, y, validation_split, validation_data, size):
    """Up to `size` held-out `(x, y)` arrays from `fit`'s validation arguments."""
    if validation_data is not None:
        if isinstance(validation_data, tf.data.Dataset):
            xs, ys, count = [], [], 0
            for batch in validation_data:
                bx, by, _ = keras.utils.unpack_x_y_sample_weight(batch)
                xs.append(np.asarray(bx))
                ys.append(np.asarray(by))
                count += len(xs[-1])
                if count >= size:
                    break
            return np.concatenate(xs)[:size], np.concatenate(ys)[:size]
        if isinstance(validation_data, (tuple, list)) and len(validation_data) >= 2:
            return np.asarray(validation_data[0])[:size], np.asarray(validation_data[1])[:size]
    elif validation_split and x is not None and y is not None and not isinstance(
            x, tf.data.Dataset):
        # Keras holds out the last `validation_split` of the arrays.
        start = int(len(x) * (1.0 - validation_split))
        return np.asarray(x)[start:start + size], np.asarray(y)[start:start + size]
    raise ValueError(
        "`quantile='auto'` checks held-out examples for catastrophic overfitting: pass "
        "`validation_data` (arrays or a batched tf.data.Dataset) or `validation_split` "
        "to `fit`, or a `zerograd_tf.callbacks.AutoQuantile(x_held_out, y_held_out)` "
        "in `callbacks`.")
