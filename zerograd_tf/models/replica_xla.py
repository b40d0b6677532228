"""XLA per replica under `tf.distribute`: `ReplicaXLA`.

Keras compiles the whole distributed step as one XLA cluster when
`jit_compile=True`, which cannot address the variables of several devices
("Trying to access resource ... located in device ..."), so Keras turns
`"auto"` off under strategies. A model with this mixin compiles each
replica's work with XLA and runs the cross-replica reduction and the update
outside it, as `evaluate_robustness` does.
"""

import tensorflow as tf

from zerograd_tf import _keras_compat


class ReplicaXLA:
    """Mixin for a `keras.Model`: XLA for each replica's work under a strategy.

    With `compile(jit_compile=True)` under a `tf.distribute` strategy with
    several replicas (TPUs excepted: their replica functions are always
    compiled), `make_train_function` and its siblings build Keras' step
    without XLA, and the functions the step passes through
    `replica_function` (the attack, the forward and backward pass, the
    validation attack) are compiled with XLA instead. Otherwise it changes
    nothing: `replica_function` returns the function as it is.

    Put it before `keras.Model` in the bases; it keeps its state in an
    attribute it creates on first use. `predict_step` runs Keras' own
    through `replica_function`; a model's `train_step` and `test_step` call
    `replica_function` on their replica work themselves.

    Examples:
        >>> import keras, numpy as np
        >>> from zerograd_tf.models.replica_xla import ReplicaXLA
        >>> class Model(ReplicaXLA, keras.Model):
        ...     pass
        >>> inputs = keras.Input((3,))
        >>> model = Model(inputs, keras.layers.Dense(2)(inputs))
        >>> model.compile(jit_compile=True)
        >>> model.predict(np.ones((4, 3)), verbose=0).shape
        (4, 2)
        >>> model.compiled_replica_functions  # one device: Keras' own XLA step
        ()
    """

    def _replica_state(self):
        state = self.__dict__.get("_replica_xla_state")
        if state is None:
            # Kept out of Keras' attribute tracking: plain Python state.
            state = {"enabled": False, "functions": {}}
            object.__setattr__(self, "_replica_xla_state", state)
        return state

    def wants_xla_per_replica(self):
        """Whether each replica compiles its own work: `jit_compile=True`
        under a strategy with several replicas that is not a TPU strategy."""
        if not self.compiled or self.run_eagerly or not self.jit_compile:
            return False
        strategy = self.distribute_strategy
        return (strategy.num_replicas_in_sync > 1
                and not isinstance(strategy, tf.distribute.TPUStrategy))

    def replica_function(self, name, fn):
        """`fn`, or `fn` compiled with XLA when each replica compiles its own
        work.

        Args:
            name: the key of the compiled function (one per step kind:
                `"train"`, `"test"`, `"predict"`).
            fn: the replica's work, a function of tensors.

        Returns:
            `fn`, or its `tf.function(jit_compile=True)`.
        """
        state = self._replica_state()
        if not state["enabled"]:
            return fn
        if name not in state["functions"]:
            state["functions"][name] = tf.function(fn, jit_compile=True,
                                                   reduce_retracing=True)
        return state["functions"][name]

    @property
    def compiled_replica_functions(self):
        """The names of the replica functions compiled with XLA so far."""
        return tuple(sorted(self._replica_state()["functions"]))

    def predict_step(self, data):
        return self.replica_function("predict", super().predict_step)(data)

    def _make_step_function(self, name, make, force):
        existing = getattr(self, f"{name}_function")
        if existing is not None and not force:
            return existing
        state = self._replica_state()
        state["enabled"] = self.wants_xla_per_replica()
        state["functions"].pop(name, None)
        if not state["enabled"]:
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
