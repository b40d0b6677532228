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
(`epsilon`, `alpha`, `quantile`) live in non-trainable variables, so changing
them does not retrace the compiled step; they are saved with the weights.

XLA: `compile(jit_compile=True)` works for every model here. Keras' default
`jit_compile="auto"` enables XLA only when a GPU/TPU is present; that is also
our recommendation: XLA pays off on accelerators, while on a CPU our steps
ran slower under XLA than in graph mode (the step-time tables of
docs/benchmarks.md give the measured ratio per method).

XLA also works under a `tf.distribute` strategy with several replicas, where
Keras' own `jit_compile=True` fails: Keras compiles the whole distributed step
as one XLA cluster, which cannot address the variables of several devices
("Trying to access resource ... located in device ..."), so Keras turns
`"auto"` off under strategies. These models compile each replica's work (the
attack, the forward and the backward pass, the validation attack) with XLA
and run the cross-replica gradient reduction and the update outside it, as
`evaluate_robustness` does.
"""

import random

import keras
import tensorflow as tf

from zerograd_tf import _keras_compat
from zerograd_tf import objectives as objectives_lib
from zerograd_tf import attacks
from zerograd_tf import validation

PACKAGE = "zerograd_tf"


def read_variable(variable):
    """A variable's current value as a Python float, also while tracing."""
    with tf.init_scope():
        return float(keras.ops.convert_to_numpy(variable))


def _per_example_mean(t):
    return tf.reduce_mean(tf.reshape(t, (tf.shape(t)[0], -1)), axis=1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class AdversarialModel(keras.Model):
    """Base class: a Keras model whose `fit` trains on adversarial examples.

    Build it like a functional model, `Cls(inputs, outputs, epsilon=...)`, or
    wrap an existing model, `Cls.from_model(model, epsilon=...)` (the
    existing model's layers and weights are shared, not copied). Inputs must
    be floats in [0, 1]; put normalisation inside the model. The wrapped
    network is `classifier` (the functional model built from `inputs` and
    `outputs`, or the given `model`): its weights are the trained weights,
    and `classifier.predict` runs it without the adversarial wrapper.

    Subclasses implement `perturb(x, y, seed)`.

    Args:
        inputs: functional-API inputs (with `outputs`), or `None` with
            `model`. Defaults to `None`.
        outputs: functional-API outputs. Defaults to `None`.
        model: an existing Keras model to wrap (instead of inputs/outputs).
            Defaults to `None`.
        epsilon: L-infinity radius in (0, 1], in pixel units (required).
        alpha: step size > 0 in pixel units. Defaults to the subclass's
            multiple of epsilon (`default_alpha_factor`, documented by each).
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
        validation_pgd_alpha: its step size. Defaults to `epsilon / 4`.
        seed: integer seed of the attack's random numbers. A seeded model
            trains reproducibly; `None` draws one with Python's `random`
            (so `keras.utils.set_random_seed` makes it reproducible too).
            The seed is saved in the config. Defaults to `None`.
        name: model name. Defaults to `None` (Keras chooses).
        **kwargs: passed to `keras.Model` (e.g. `trainable`, `dtype`).

    Raises:
        ValueError: for invalid hyperparameters, or unless exactly one of
            (`inputs`, `outputs`) and `model` is given.

    Examples:
        A method is a subclass that implements `perturb`:

        >>> import numpy as np, keras, tensorflow as tf, zerograd_tf as zg
        >>> class SignNoise(zg.AdversarialModel):
        ...     def perturb(self, x, y, seed):
        ...         noise = tf.random.stateless_uniform(tf.shape(x), seed, -1.0, 1.0)
        ...         return self.epsilon * tf.sign(noise), {}
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = SignNoise(inputs, outputs, epsilon=0.1, seed=0)
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> x = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
        >>> history = model.fit(x, np.arange(32) % 2, epochs=1, batch_size=16, verbose=0)
        >>> round(float(history.history["mean_abs_delta"][0]), 3)
        0.1
    """

    default_alpha_factor = 1.0

    def __init__(self, inputs=None, outputs=None, *, model=None, epsilon,
                 alpha=None, attack_training=True, attack_loss=None,
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
        epsilon = validation.check_epsilon(epsilon)
        alpha = self.default_alpha_factor * epsilon if alpha is None else alpha
        alpha = validation.check_positive(alpha, "alpha")
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

        self._epsilon = self._hyperparameter("epsilon", epsilon)
        self._alpha = self._hyperparameter("alpha", alpha)
        self.mean_abs_delta_tracker = keras.metrics.Mean(name="mean_abs_delta")
        self.pgd_accuracy_tracker = keras.metrics.Mean(name="pgd_accuracy")
        self._xla_per_replica = False
        self._replica_functions = {}
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

    def _hyperparameter(self, name, value):
        return self.add_weight(
            name=name, shape=(), dtype="float32",
            initializer=keras.initializers.Constant(value), trainable=False,
            aggregation="only_first_replica",
        )

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
        # `.weights.h5` files load across versions in both directions.
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
    # Hyperparameters.
    # ------------------------------------------------------------------
    @property
    def epsilon(self):
        """The L-infinity radius (a float); settable, validated."""
        return read_variable(self._epsilon)

    @epsilon.setter
    def epsilon(self, value):
        self._epsilon.assign(validation.check_epsilon(value))

    @property
    def alpha(self):
        """The step size in pixel units (a float); settable, validated."""
        return read_variable(self._alpha)

    @alpha.setter
    def alpha(self, value):
        self._alpha.assign(validation.check_positive(value, "alpha"))

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
        loss = self.attack_loss
        if loss is None:
            loss = getattr(self, "loss", None)
        return objectives_lib.model_objective(
            self.classifier, loss=loss, training=training, stateless=True
        )

    def step_seed(self):
        """The stateless seed of the current training step.

        It folds the optimizer's step counter into `seed`: each step draws
        fresh noise, a seeded run is reproducible, and a resumed run (whose
        checkpoint holds the optimizer state) continues the same sequence.
        The step reads the counter and never writes it, which keeps it valid
        under XLA and `tf.distribute`. Every replica gets the same seed: the
        random ops draw the noise of the global batch and keep their
        replica's slice (see `attacks.ops.uniform_noise`), so a distributed
        step perturbs each example exactly as a single-device step would.
        """
        step = tf.cast(self.optimizer.iterations, tf.int64)
        base = tf.constant([self.seed, 0], tf.int64)
        return tf.random.experimental.stateless_fold_in(base, step)

    def perturb(self, x, y, seed):
        """Builds the perturbation of this model's method.

        Args:
            x: float inputs in [0, 1].
            y: targets.
            seed: a shape-(2,) stateless seed.

        Returns:
            A tuple `(delta, info)`: `delta` of `x`'s shape and a dict of
            per-example statistics (e.g. `zeroed_fraction`).
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `perturb(x, y, seed)`."
        )

    # ------------------------------------------------------------------
    # Train and test steps.
    # ------------------------------------------------------------------
    def _train_only_metrics(self):
        return [self.mean_abs_delta_tracker]

    def _logs(self, exclude):
        """Metric results, averaged across replicas under `tf.distribute`.

        Every replica then returns the global values, so any way Keras
        reduces the step's logs across replicas (first, mean) is exact.
        """
        names = {m.name for m in exclude}
        logs = {k: v for k, v in self.get_metrics_result().items() if k not in names}
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            logs = context.all_reduce(tf.distribute.ReduceOp.MEAN, logs)
            if isinstance(tf.distribute.get_strategy(),
                          tf.distribute.MultiWorkerMirroredStrategy):
                # Keras reduces step logs under this strategy with
                # strategy.reduce("MEAN", value, axis=0), which fails on
                # scalars (keras-team/keras#20585); a (1,) shape reduces back
                # to the same scalar.
                logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    def fit(self, x=None, y=None, *args, **kwargs):
        """Keras' `fit`, after a one-time check of the first batch's values.

        Inputs outside [0, 1] (0-255 images) or with NaN train without error
        but to a meaningless or NaN model; a warning says so before the
        first step. The check reads one batch of a `tf.data.Dataset` (or the
        whole array) once per call; generators and `PyDataset`s are not
        checked. Everything else is Keras' `fit`.
        """
        validation.warn_if_first_batch_outside_unit_range(x, "x")
        return super().fit(x, y, *args, **kwargs)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        validation.check_image_batch(x)
        if not self.built:
            # The attack runs the model statelessly before the update pass
            # would build it.
            self.build(x.shape)
        step = self._replica_function("train", self._adversarial_gradients)
        loss, y_pred, gradients, delta, info = step(x, y, sample_weight, self.step_seed())
        _keras_compat.update_loss_metric(self, loss, tf.shape(x)[0])
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        self.compute_metrics(x, y, y_pred, sample_weight)
        self.mean_abs_delta_tracker.update_state(_per_example_mean(tf.abs(delta)))
        self.update_attack_metrics(info)
        return self._logs(exclude=[self.pgd_accuracy_tracker])

    def _adversarial_gradients(self, x, y, sample_weight, seed):
        """One replica's work: the attack, then the loss and weight gradients.

        Returns:
            `(loss, y_pred, gradients, delta, info)`; `loss` as the compiled
            loss computes it (scaled for distribution), `gradients` of the
            optimizer-scaled loss.
        """
        delta, info = self.perturb(x, y, seed)
        delta = tf.stop_gradient(delta)
        x_adv = tf.clip_by_value(x + delta, 0.0, 1.0)
        with tf.GradientTape() as tape:
            y_pred = self(x_adv, training=True)
            loss = _keras_compat.compute_loss(self, x_adv, y, y_pred, sample_weight,
                                              training=True)
            penalty, penalty_info = self.regularization(x, y, seed)
            if penalty is not None:
                # Scaled like the compiled loss: the replicas' sum is the
                # global value.
                context = tf.distribute.get_replica_context()
                replicas = context.num_replicas_in_sync if context is not None else 1
                loss = loss + tf.cast(penalty, loss.dtype) / replicas
                info = {**info, **penalty_info}
            scaled_loss = loss
            if self.optimizer is not None:
                scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_weights)
        return loss, y_pred, gradients, delta, info

    def regularization(self, x, y, seed):
        """An extra training loss, computed inside the weight-gradient tape.

        Subclasses (e.g. `GradAlignModel`) return `(penalty, info)`: a
        scalar added to the compiled loss (and so to the `loss` metric) and
        a dict of per-example statistics for `update_attack_metrics`. The
        default adds nothing.

        Args:
            x: the clean inputs of the step.
            y: their targets.
            seed: the step's stateless seed.

        Returns:
            `(None, {})` here.
        """
        del x, y, seed
        return None, {}

    def update_attack_metrics(self, info):
        """Updates method-specific metrics from `perturb`'s info dict."""
        del info

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if not self.built:
            self.build(x.shape)
        evaluate = self._replica_function("test", self._evaluate_batch)
        loss, y_pred, pgd_correct = evaluate(x, y, sample_weight)
        _keras_compat.update_loss_metric(self, loss, tf.shape(x)[0])
        self.compute_metrics(x, y, y_pred, sample_weight)
        exclude = self._train_only_metrics()
        if pgd_correct is not None:
            self.pgd_accuracy_tracker.update_state(pgd_correct, sample_weight=sample_weight)
        else:
            exclude.append(self.pgd_accuracy_tracker)
        return self._logs(exclude=exclude)

    def _evaluate_batch(self, x, y, sample_weight):
        """One replica's evaluation: `(loss, y_pred, pgd_correct or None)`."""
        y_pred = self(x, training=False)
        loss = _keras_compat.compute_loss(self, x, y, y_pred, sample_weight,
                                          training=False)
        pgd_correct = self._pgd_correct(x, y) if self.validation_pgd_steps > 0 else None
        return loss, y_pred, pgd_correct

    def predict_step(self, data):
        return self._replica_function("predict", super().predict_step)(data)

    # ------------------------------------------------------------------
    # XLA per replica under tf.distribute.
    # ------------------------------------------------------------------
    def _wants_xla_per_replica(self):
        """`jit_compile=True` under a strategy with several replicas (not TPU,
        whose replica functions are always compiled)."""
        if not self.compiled or self.run_eagerly or not self.jit_compile:
            return False
        strategy = self.distribute_strategy
        return (strategy.num_replicas_in_sync > 1
                and not isinstance(strategy, tf.distribute.TPUStrategy))

    def _replica_function(self, name, fn):
        """`fn`, or `fn` compiled with XLA when each replica compiles its own
        work (see the module docstring)."""
        if not self._xla_per_replica:
            return fn
        if name not in self._replica_functions:
            self._replica_functions[name] = tf.function(
                fn, jit_compile=True, reduce_retracing=True)
        return self._replica_functions[name]

    def _make_step_function(self, name, make, force):
        existing = getattr(self, f"{name}_function")
        if existing is not None and not force:
            return existing
        self._xla_per_replica = self._wants_xla_per_replica()
        self._replica_functions.pop(name, None)
        if not self._xla_per_replica:
            return make(force=force)
        # Keras compiles its distributed step with XLA when `jit_compile` is
        # on; here only the replica functions are compiled.
        jit_compile = self.jit_compile
        _keras_compat.set_jit_compile(self, False)
        try:
            return make(force=force)
        finally:
            _keras_compat.set_jit_compile(self, jit_compile)

    def make_train_function(self, force=False):
        return self._make_step_function("train", super().make_train_function, force)

    def make_test_function(self, force=False):
        return self._make_step_function("test", super().make_test_function, force)

    def make_predict_function(self, force=False):
        return self._make_step_function("predict", super().make_predict_function, force)

    def _pgd_correct(self, x, y):
        # A fixed seed: the same data gets the same attack every epoch, so
        # validation curves are comparable and evaluating leaves the training
        # random stream untouched.
        seed = tf.constant([self.seed + 1, 0], tf.int64)
        alpha = self.validation_pgd_alpha
        if alpha is None:
            alpha = self._epsilon / 4
        delta, _ = attacks.pgd(
            self.attack_objective(training=False), x, y, self._epsilon, alpha,
            steps=self.validation_pgd_steps, restarts=self.validation_pgd_restarts,
            seed=seed,
        )
        y_adv = self(tf.clip_by_value(x + delta, 0.0, 1.0), training=False)
        correct = objectives_lib.predicted_labels(y_adv) == objectives_lib.class_labels(y)
        return tf.cast(correct, tf.float32)

    # ------------------------------------------------------------------
    # Serialisation.
    # ------------------------------------------------------------------
    def get_config(self):
        attack_loss = self.attack_loss
        if attack_loss is not None and not isinstance(attack_loss, str):
            attack_loss = keras.saving.serialize_keras_object(attack_loss)
        return {
            "name": self.name,
            "trainable": self.trainable,
            "model": keras.saving.serialize_keras_object(self.classifier),
            "epsilon": self.epsilon,
            "alpha": self.alpha,
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
        return cls(model=model, **config)
