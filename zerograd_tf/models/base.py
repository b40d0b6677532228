"""Keras models that train on adversarial examples.

`AdversarialModel` wraps any Keras model (functional, Sequential or
subclassed). Its `train_step` takes the input gradient with
`tf.GradientTape`, builds the perturbation `delta` of its method (held
constant), and updates the weights on the compiled loss at
`clip(x + delta, 0, 1)`, exactly as Keras' own `train_step` does on `x`. The
subclasses choose the perturbation: `FGSMModel`, `ZeroGradModel`,
`MultiGradModel`, `NFGSMModel`, `PGDModel`.

The attack never changes the model's state: its forward passes run through
`stateless_call` and the new values of non-trainable variables (BatchNorm
moving statistics, dropout seeds) are dropped. Only the weight-update pass
updates them.

Hyperparameters that schedules and callbacks may change during training
(`epsilon`, the step size `alpha`, ZeroGrad's `quantile`) live in
non-trainable variables, saved with the weights. The step reads them when it
runs and passes them to `perturb` as tensors, so changing them takes effect
at the next step without retracing. The step size is stored as a multiple
of epsilon (`alpha_factor`): an epsilon warm-up keeps their ratio.

XLA: `compile(jit_compile=True)` works for every model here. Keras' default
`jit_compile="auto"` enables XLA only when a GPU/TPU is present; that is also
our recommendation: XLA pays off on accelerators, while on this project's
CPU our steps ran slower under XLA than in graph mode (docs/benchmarks.md:
small_cnn's step-time tables and PreAct ResNet-18's step profile; its older
XLA step-time table, from an unrecorded machine, had XLA ahead). Under a
`tf.distribute` strategy with several replicas, each replica's work is
compiled on its own (see `replica_xla.ReplicaXLA`).
"""

import random

import keras

from zerograd_tf import objectives as objectives_lib
from zerograd_tf import validation
from zerograd_tf.models.hyperparameters import Hyperparameters
from zerograd_tf.models.replica_xla import ReplicaXLA
from zerograd_tf.models.trainer import AdversarialTrainer

PACKAGE = "zerograd_tf"


@keras.saving.register_keras_serializable(package=PACKAGE)
class AdversarialModel(Hyperparameters, AdversarialTrainer, ReplicaXLA, keras.Model):
    """Base class: a Keras model whose `fit` trains on adversarial examples.

    Build it like a functional model, `Cls(inputs, outputs, epsilon=...)`, or
    wrap an existing model, `Cls.from_model(model, epsilon=...)` (the
    existing model's layers and weights are shared, not copied). Inputs must
    be floats in [0, 1]; put normalisation inside the model. The wrapped
    network is `classifier` (the functional model built from `inputs` and
    `outputs`, or the given `model`): its weights are the trained weights,
    and `classifier.predict` runs it without the adversarial wrapper.

    A method is a subclass that implements
    `perturb(x, y, seed, hyperparameters)`: `hyperparameters` holds
    `"epsilon"`, `"alpha"` (in pixel units) and the method's own (e.g.
    ZeroGrad's `"quantile"`) as scalar tensors, read from the model's
    variables when the step runs. Use them, not the `epsilon` and `alpha`
    properties, which are Python floats: read while the step is traced, a
    property's value would be frozen into the trace (a warning says so).
    `add_hyperparameter` adds a method's own.

    The step size is stored as a multiple of epsilon, `alpha_factor`:
    changing `epsilon` (an `EpsilonWarmup`, a schedule) scales `alpha` with
    it. Give it as `alpha_factor` or, in pixel units at the initial epsilon,
    as `alpha`.

    Args:
        inputs: functional-API inputs (with `outputs`), or `None` with
            `model`. Defaults to `None`.
        outputs: functional-API outputs. Defaults to `None`.
        model: an existing Keras model to wrap (instead of inputs/outputs).
            Defaults to `None`.
        epsilon: L-infinity radius in (0, 1], in pixel units (required).
        alpha: step size > 0 in pixel units at this `epsilon`; stored as
            `alpha_factor = alpha / epsilon`. Defaults to `None`: see
            `alpha_factor`.
        alpha_factor: step size as a multiple > 0 of epsilon (not with
            `alpha`). Defaults to `None`: the subclass's
            `default_alpha_factor` (documented by each).
        attack_training: run the model in training mode during the attack,
            as the reference code does (BatchNorm on batch statistics). The
            attack never updates the model's state either way. Defaults to
            True.
        attack_loss: the loss the attack maximises (a name, a
            `keras.losses.Loss` or a callable `(y_true, y_pred)`). Defaults
            to `None`: the loss given to `compile`.
        validation_pgd_steps: if > 0, `evaluate` (and `fit`'s validation)
            also reports `pgd_accuracy`, the accuracy under PGD with this many
            steps (`val_pgd_accuracy` in `fit` history), at the model's
            current `epsilon` - during an epsilon warm-up, the ramped value,
            so the curve is comparable across epochs only after the warm-up.
            Defaults to 0, which keeps `test_step` clean and as cheap as
            Keras' own.
        validation_pgd_restarts: restarts of that PGD attack, >= 1.
            Defaults to 1.
        validation_pgd_alpha: its step size in pixel units. Defaults to
            `None`: a quarter of the current epsilon.
        seed: integer seed of the attack's random numbers. A seeded model
            trains reproducibly; `None` draws one with Python's `random`
            (so `keras.utils.set_random_seed` makes it reproducible too).
            The seed is saved in the config. Defaults to `None`.
        name: model name. Defaults to `None` (Keras chooses).
        **kwargs: passed to `keras.Model` (e.g. `trainable`, `dtype`).

    Raises:
        ValueError: for invalid hyperparameters, for both `alpha` and
            `alpha_factor`, or unless exactly one of (`inputs`, `outputs`)
            and `model` is given.

    Examples:
        A method is a subclass that implements `perturb`:

        >>> import numpy as np, keras, tensorflow as tf, zerograd_tf as zg
        >>> class SignNoise(zg.AdversarialModel):
        ...     def perturb(self, x, y, seed, hyperparameters):
        ...         noise = zg.attacks.ops.replica_uniform(tf.shape(x), seed, -1.0, 1.0)
        ...         return hyperparameters["epsilon"] * tf.sign(noise), {}
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = SignNoise(inputs, outputs, epsilon=0.1, seed=0)
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> x = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
        >>> history = model.fit(x, np.arange(32) % 2, epochs=1, batch_size=16, verbose=0)
        >>> round(float(history.history["mean_abs_delta"][0]), 3)
        0.1
        >>> model.epsilon = 0.02  # the next step uses it, without retracing
        >>> history = model.fit(x, np.arange(32) % 2, epochs=1, batch_size=16, verbose=0)
        >>> round(float(history.history["mean_abs_delta"][0]), 3)
        0.02
    """

    default_alpha_factor = 1.0

    def __init__(self, inputs=None, outputs=None, *, model=None, epsilon,
                 alpha=None, alpha_factor=None, attack_training=True, attack_loss=None,
                 validation_pgd_steps=0, validation_pgd_restarts=1,
                 validation_pgd_alpha=None, seed=None, name=None, **kwargs):
        if (model is None) == (inputs is None and outputs is None):
            raise ValueError(
                "Pass either `inputs` and `outputs` (functional API) or `model` "
                "(an existing Keras model), not both and not neither."
            )
        if model is None:
            if inputs is None or outputs is None:
                raise ValueError("Pass both `inputs` and `outputs`.")
            model = keras.Model(inputs, outputs)
        elif not isinstance(model, keras.Model):
            raise TypeError(
                f"`model` must be a keras.Model, got {type(model).__name__}."
            )
        super().__init__(name=name, **kwargs)
        self._init_hyperparameters(epsilon, alpha, alpha_factor, self.default_alpha_factor)
        self.validation_pgd_steps = validation.check_int(
            validation_pgd_steps, "validation_pgd_steps", 0)
        self.validation_pgd_restarts = validation.check_int(
            validation_pgd_restarts, "validation_pgd_restarts", 1)
        if validation_pgd_alpha is not None:
            validation_pgd_alpha = validation.check_positive(
                validation_pgd_alpha, "validation_pgd_alpha")
        self.validation_pgd_alpha = validation_pgd_alpha
        self.attack_training = bool(attack_training)
        self.attack_loss = attack_loss
        if seed is None:
            seed = random.randrange(2**31)
        self.seed = validation.check_int(seed, "seed", 0)
        self.classifier = model
        self.mean_abs_delta_tracker = keras.metrics.Mean(name="mean_abs_delta")
        self.pgd_accuracy_tracker = keras.metrics.Mean(name="pgd_accuracy")
        if model.built:
            self.built = True

    # ------------------------------------------------------------------
    # Construction helpers.
    # ------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, **kwargs):
        """Wraps an existing Keras model (Sequential, functional, subclassed).

        Args:
            model: the `keras.Model` to train adversarially. Its layers and
                weights are shared with the returned model.
            **kwargs: the hyperparameters of `cls` (epsilon, alpha, ...).

        Returns:
            An instance of `cls`.
        """
        return cls(model=model, **kwargs)

    @property
    def model(self):
        """The wrapped classifier under the name earlier versions gave it:
        the same object as `classifier`."""
        return self.classifier

    def __dir__(self):
        # Keras' saver walks the attributes in dir() order and stores each
        # layer under the first name it meets: without `classifier` there,
        # the classifier's weights stay where earlier versions stored them
        # (under the model's `layers`, "layers/functional"), so `.keras` and
        # `.weights.h5` files of earlier versions load (their hyperparameters
        # converted, see `Hyperparameters.load_own_variables`; an earlier
        # version refuses a newer file: one variable more).
        return [name for name in super().__dir__() if name != "classifier"]

    def build(self, input_shape):
        if not self.classifier.built:
            # A symbolic call creates the variables of any model, including
            # subclassed ones whose `build()` cannot infer them.
            self.classifier(keras.KerasTensor(input_shape))
        self.built = True

    def call(self, inputs, training=None):
        return self.classifier(inputs, training=training)

    # ------------------------------------------------------------------
    # The attack.
    # ------------------------------------------------------------------
    def attack_objective(self, training=None):
        """The objective `(x, y) -> (per_example_loss, y_pred)` attacks use.

        Args:
            training: run the model in training mode; defaults to
                `attack_training`. The call is stateless either way.
        """
        training = self.attack_training if training is None else training
        return objectives_lib.model_objective(
            self.classifier, loss=self.objective_loss(), training=training, stateless=True
        )

    def objective_loss(self):
        """The loss attacks maximise: `attack_loss`, else the compiled loss
        (`None` before `compile`: a cross-entropy)."""
        return self.attack_loss if self.attack_loss is not None else getattr(self, "loss", None)

    def perturb(self, x, y, seed, hyperparameters):
        """Builds the perturbation of this model's method.

        Args:
            x: float inputs in [0, 1].
            y: targets.
            seed: a shape-(2,) stateless seed.
            hyperparameters: `read_hyperparameters()`: a dict of scalar
                tensors, `"epsilon"`, `"alpha"` (pixel units) and the
                method's own.

        Returns:
            A tuple `(delta, info)`: `delta` of `x`'s shape and a dict of
            per-example statistics (e.g. `zeroed_fraction`).
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement "
            "`perturb(x, y, seed, hyperparameters)`."
        )

    def regularization(self, x, y, seed, hyperparameters):
        """An extra training loss, computed inside the weight-gradient tape.

        Subclasses (e.g. `GradAlignModel`) return `(penalty, info)`: a
        scalar added to the compiled loss (and so to the `loss` metric) and
        a dict of per-example statistics for `update_attack_metrics`. The
        default adds nothing.

        Args:
            x: the clean inputs of the step.
            y: their targets.
            seed: the step's stateless seed.
            hyperparameters: as `perturb` receives them.

        Returns:
            `(None, {})` here.
        """
        del x, y, seed, hyperparameters
        return None, {}

    def update_attack_metrics(self, info):
        """Updates method-specific metrics from `perturb`'s info dict."""
        del info

    # ------------------------------------------------------------------
    # Serialisation.
    # ------------------------------------------------------------------
    def get_config(self):
        attack_loss = self.attack_loss
        if attack_loss is not None and not isinstance(attack_loss, str):
            attack_loss = keras.saving.serialize_keras_object(attack_loss)
        return {
            **super().get_config(),
            "model": keras.saving.serialize_keras_object(self.classifier),
            "epsilon": self.epsilon,
            "alpha_factor": self.alpha_factor,
            "attack_training": self.attack_training,
            "attack_loss": attack_loss,
            "validation_pgd_steps": self.validation_pgd_steps,
            "validation_pgd_restarts": self.validation_pgd_restarts,
            "validation_pgd_alpha": self.validation_pgd_alpha,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        model = keras.saving.deserialize_keras_object(
            config.pop("model"), custom_objects=custom_objects)
        attack_loss = config.get("attack_loss")
        if isinstance(attack_loss, dict):
            config["attack_loss"] = keras.saving.deserialize_keras_object(
                attack_loss, custom_objects=custom_objects)
        # An earlier version's config has `alpha` in pixel units, which the
        # constructor converts; its variables are converted as they load
        # (`Hyperparameters.load_own_variables`).
        return cls(model=model, **config)
