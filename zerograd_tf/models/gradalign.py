"""GradAlign adversarial training: `GradAlignModel`."""

import keras
import tensorflow as tf

from zerograd_tf.attacks import ops
from zerograd_tf.models.base import PACKAGE
from zerograd_tf.models.fgsm import FGSMModel


def gradient_alignment(objective, x, y, eta):
    """Per-example cosine between the input gradients at `x` and `x + eta`.

    Both gradients stay differentiable (a tape inside the caller's tape), so
    a loss built on the cosine back-propagates through them to the weights.

    Args:
        objective: a callable `(x, y) -> (per_example_loss, y_pred)`.
        x: inputs `(batch, ...)`.
        y: targets.
        eta: the perturbation of the second point, `x`'s shape.

    Returns:
        `(cosine, valid)`: float `(batch,)` cosines and a bool `(batch,)`
        marking the examples whose two gradients are both non-zero (the
        others have no direction; their cosine is 0 and they do not count).

    Examples:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> from zerograd_tf import objectives
        >>> x = np.full((2, 3), 0.5, np.float32)
        >>> cos, valid = gradient_alignment(objectives.model_objective(model), x,
        ...                                 np.array([0, 1]), np.full((2, 3), 0.1, np.float32))
        >>> bool(np.allclose(cos, 1.0, atol=1e-5)), bool(valid.numpy().all())
        (True, True)
    """
    x = tf.convert_to_tensor(x)
    first = ops.input_gradient(objective, x, y)[1]
    second = ops.input_gradient(objective, x + tf.cast(eta, x.dtype), y)[1]
    batch = tf.shape(x)[0]
    first = tf.reshape(first, [batch, -1])
    second = tf.reshape(second, [batch, -1])
    norm_first = tf.norm(first, axis=1)
    norm_second = tf.norm(second, axis=1)
    valid = (norm_first > 0) & (norm_second > 0)
    cosine = tf.math.divide_no_nan(tf.reduce_sum(first * second, axis=1),
                                   norm_first * norm_second)
    return tf.where(valid, cosine, tf.zeros_like(cosine)), valid


@keras.saving.register_keras_serializable(package=PACKAGE)
class GradAlignModel(FGSMModel):
    """GradAlign (Andriushchenko & Flammarion, NeurIPS 2020): FGSM training
    plus a gradient-alignment regulariser.

    The loss is FGSM's adversarial loss plus
    `gradalign_lambda * (1 - mean cos(g(x), g(x + eta)))`, with `g` the input
    gradient of the loss and `eta ~ U(-epsilon, epsilon)` per element and
    example (not clipped into [0, 1], as in the reference). The mean runs over
    the examples whose two gradients are non-zero. Both gradients are
    differentiated (double backprop: a tape inside the weight tape), so
    training keeps the loss locally linear within the ball, which is what
    FGSM needs to stay effective; catastrophic overfitting comes with a
    collapse of this alignment. (The reference code detaches the first
    gradient, which it also uses for the FGSM step; here both carry their
    gradients, as the paper's regulariser is written.)

    The FGSM step is taken from zero with `alpha = epsilon` as in the
    reference (`random_init=True` starts from `U(-epsilon, epsilon)` with
    `alpha = 1.25 epsilon` instead). The regulariser costs two extra
    forward and backward passes and their double backward: the reference
    reports about 3x an FGSM step.

    Args:
        gradalign_lambda: the weight lambda >= 0 of the regulariser. Defaults
            to 0.2, the reference's value at epsilon = 8/255 on CIFAR-10; the
            reference raises it with epsilon (e.g. 2.0 at 16/255), because
            catastrophic overfitting is stronger at larger radii.
        random_init: FGSM-RS's random start. Defaults to False.
        alpha_factor: the FGSM step as a multiple of epsilon (or `alpha`,
            in pixel units; see `AdversarialModel`). Defaults to 1 (1.25
            with `random_init`).
        **kwargs: see `AdversarialModel` (`epsilon` is required).

    Examples:
        >>> import keras, numpy as np
        >>> inputs = keras.Input((8,))
        >>> outputs = keras.layers.Dense(3)(keras.layers.Dense(16, activation="relu")(inputs))
        >>> model = GradAlignModel(inputs, outputs, epsilon=0.1, gradalign_lambda=0.5, seed=0)
        >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> x = np.random.default_rng(0).uniform(size=(32, 8)).astype("float32")
        >>> history = model.fit(x, np.arange(32) % 3, epochs=1, verbose=0)
        >>> "gradient_alignment" in history.history
        True
    """

    def __init__(self, *args, gradalign_lambda=0.2, random_init=False, alpha_factor=None,
                 **kwargs):
        lam = gradalign_lambda
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam >= 0:
            raise ValueError(f"`gradalign_lambda` must be a number >= 0, got {lam!r}.")
        self.gradalign_lambda = float(lam)
        super().__init__(*args, random_init=random_init, alpha_factor=alpha_factor, **kwargs)
        self.alignment_tracker = keras.metrics.Mean(name="gradient_alignment")

    def regularization(self, x, y, seed, hyperparameters):
        eta_seed = tf.random.experimental.stateless_fold_in(
            ops.as_seed(seed), 0x6A11)
        eta = ops.uniform_noise(tf.shape(x), hyperparameters["epsilon"], eta_seed, x.dtype)
        cosine, valid = gradient_alignment(self.attack_objective(), x, y, eta)
        count = tf.reduce_sum(tf.cast(valid, tf.float32))
        mean = tf.math.divide_no_nan(tf.reduce_sum(cosine), count)
        penalty = self.gradalign_lambda * (1.0 - mean)
        return penalty, {"gradient_alignment": tf.stop_gradient(cosine),
                         "alignment_valid": valid}

    def _train_only_metrics(self):
        return super()._train_only_metrics() + [self.alignment_tracker]

    def update_attack_metrics(self, info):
        self.alignment_tracker.update_state(
            info["gradient_alignment"], sample_weight=tf.cast(info["alignment_valid"],
                                                              tf.float32))

    def get_config(self):
        return {**super().get_config(), "gradalign_lambda": self.gradalign_lambda}

