"""The train and test steps of the adversarial models: `AdversarialTrainer`."""

import keras
import tensorflow as tf

from zerograd_tf import _keras_compat
from zerograd_tf import attacks
from zerograd_tf import objectives as objectives_lib
from zerograd_tf import validation
from zerograd_tf.attacks import ops


class AdversarialTrainer:
    """Mixin for `AdversarialModel`: its `train_step`, `test_step` and `fit`.

    As Keras separates its `Trainer` from `Model`, this holds the steps;
    `AdversarialModel` holds construction, the method's hooks (`perturb`,
    `regularization`, `update_attack_metrics`) and saving.

    `train_step` reads the hyperparameters (`read_hyperparameters()`), runs
    `perturb(x, y, step_seed(), hyperparameters)` (held constant), and
    updates the weights on the compiled loss at `clip(x + delta, 0, 1)`,
    plus `regularization`'s penalty, as Keras' own `train_step` does on `x`.
    `test_step` is Keras' own, plus `pgd_accuracy` with
    `validation_pgd_steps > 0`. Each replica's work runs through
    `replica_function` (see `replica_xla.ReplicaXLA`).

    Examples:
        >>> import keras, zerograd_tf as zg
        >>> from zerograd_tf.models.trainer import AdversarialTrainer
        >>> issubclass(zg.AdversarialModel, AdversarialTrainer)
        True
    """

    def step_seed(self):
        """The stateless seed of the current training step.

        It folds the optimizer's step counter into `seed`: each step draws
        fresh noise, a seeded run is reproducible, and a resumed run (whose
        checkpoint holds the optimizer state) continues the same sequence.
        The step reads the counter and never writes it, which keeps it valid
        under XLA and `tf.distribute`. Every replica gets the same seed: the
        random ops draw the noise of the global batch and keep their
        replica's slice (see `attacks.ops.replica_uniform`), so a distributed
        step perturbs each example exactly as a single-device step would.
        """
        step = tf.cast(self.optimizer.iterations, tf.int64)
        base = tf.constant([self.seed, 0], tf.int64)
        return tf.random.experimental.stateless_fold_in(base, step)

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
        """Keras' `fit`, after checks that change none of its arguments.

        - Inputs outside [0, 1] (0-255 images) or with NaN train without
          error but to a meaningless or NaN model; a warning says so before
          the first step. The check reads one batch of a `tf.data.Dataset`
          (or the whole array) once per call; generators and `PyDataset`s
          are not checked.
        - Subclasses check that `callbacks` holds what their settings need
          (`ZeroGradModel(quantile="auto")`: an `AutoQuantile`); `fit` adds
          no callback.

        Everything else is Keras' `fit`.
        """
        validation.warn_if_first_batch_outside_unit_range(x, "x")
        callbacks = kwargs.get("callbacks", args[3] if len(args) > 3 else None)
        self._check_callbacks(list(getattr(callbacks, "callbacks", callbacks) or []))
        return super().fit(x, y, *args, **kwargs)

    def _check_callbacks(self, callbacks):
        """Raises if `fit`'s `callbacks` lack one this model's settings need."""
        del callbacks

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        validation.check_image_batch(x)
        if not self.built:
            # The attack runs the model statelessly before the update pass
            # would build it.
            self.build(x.shape)
        step = self.replica_function("train", self._adversarial_gradients)
        loss, y_pred, gradients, delta, info = step(
            x, y, sample_weight, self.step_seed(), self.read_hyperparameters())
        _keras_compat.update_loss_metric(self, loss, tf.shape(x)[0])
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        self.compute_metrics(x, y, y_pred, sample_weight)
        self.mean_abs_delta_tracker.update_state(ops.per_example_mean(tf.abs(delta)))
        self.update_attack_metrics(info)
        return self._logs(exclude=[self.pgd_accuracy_tracker])

    def _adversarial_gradients(self, x, y, sample_weight, seed, hyperparameters):
        """One replica's work: the attack, then the loss and weight gradients.

        Returns:
            `(loss, y_pred, gradients, delta, info)`; `loss` as the compiled
            loss computes it (scaled for distribution), `gradients` of the
            optimizer-scaled loss.
        """
        delta, info = self.perturb(x, y, seed, hyperparameters)
        delta = tf.stop_gradient(delta)
        x_adv = tf.clip_by_value(x + delta, 0.0, 1.0)
        with tf.GradientTape() as tape:
            y_pred = self(x_adv, training=True)
            loss = _keras_compat.compute_loss(self, x_adv, y, y_pred, sample_weight,
                                              training=True)
            penalty, penalty_info = self.regularization(x, y, seed, hyperparameters)
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

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if not self.built:
            self.build(x.shape)
        evaluate = self.replica_function("test", self._evaluate_batch)
        loss, y_pred, pgd_correct = evaluate(x, y, sample_weight,
                                             self.read_hyperparameters())
        _keras_compat.update_loss_metric(self, loss, tf.shape(x)[0])
        self.compute_metrics(x, y, y_pred, sample_weight)
        exclude = self._train_only_metrics()
        if pgd_correct is not None:
            self.pgd_accuracy_tracker.update_state(pgd_correct, sample_weight=sample_weight)
        else:
            exclude.append(self.pgd_accuracy_tracker)
        return self._logs(exclude=exclude)

    def _evaluate_batch(self, x, y, sample_weight, hyperparameters):
        """One replica's evaluation: `(loss, y_pred, pgd_correct or None)`."""
        y_pred = self(x, training=False)
        loss = _keras_compat.compute_loss(self, x, y, y_pred, sample_weight,
                                          training=False)
        pgd_correct = None
        if self.validation_pgd_steps > 0:
            pgd_correct = self._pgd_correct(x, y, hyperparameters["epsilon"])
        return loss, y_pred, pgd_correct

    def _pgd_correct(self, x, y, epsilon):
        # A fixed seed: the same data gets the same attack every epoch, so
        # validation curves are comparable and evaluating leaves the training
        # random stream untouched.
        seed = tf.constant([self.seed + 1, 0], tf.int64)
        alpha = self.validation_pgd_alpha
        if alpha is None:
            alpha = epsilon / 4
        delta, _ = attacks.pgd(
            self.attack_objective(training=False), x, y, epsilon, alpha,
            steps=self.validation_pgd_steps, restarts=self.validation_pgd_restarts,
            seed=seed,
        )
        y_adv = self(tf.clip_by_value(x + delta, 0.0, 1.0), training=False)
        correct = objectives_lib.predicted_labels(y_adv) == objectives_lib.class_labels(y)
        return tf.cast(correct, tf.float32)
