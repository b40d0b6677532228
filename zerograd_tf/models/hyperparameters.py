"""Hyperparameters in variables, read when the step runs: `Hyperparameters`."""

import warnings

import keras
import numpy as np
import tensorflow as tf

from zerograd_tf import validation


# The key of the format mark among a model's saved variables, and the
# format: 2 since the step size is saved as `alpha_factor`; files of earlier
# versions have no mark and hold `alpha` in pixel units.
_FORMAT_KEY = "hyperparameters_format"
_FORMAT = 2


def read_variable(variable):
    """A variable's current value as a Python float, also while tracing."""
    with tf.init_scope():
        return float(variable.numpy())


class Hyperparameters:
    """Mixin for a `keras.Model`: hyperparameters as non-trainable variables.

    Each hyperparameter is a float32 variable, saved with the weights.
    `read_hyperparameters()` gives their tensors, which a traced step reads
    when it runs: assigning a new value (a callback, a schedule) takes
    effect at the next step without retracing. The Python-float properties
    (`epsilon`, `alpha`, `alpha_factor`) are for code outside the step.

    Every model has `epsilon` and the step size as a multiple of it,
    `alpha_factor`; `read_hyperparameters()` gives the step size in pixel
    units, `"alpha"`, so a change of epsilon (a warm-up) keeps their ratio.
    Call `_init_hyperparameters` in `__init__`, after `keras.Model`'s.

    Examples:
        >>> import keras, zerograd_tf as zg
        >>> inputs = keras.Input((4,))
        >>> model = zg.PGDModel(inputs, keras.layers.Dense(2)(inputs), epsilon=0.1,
        ...                     alpha_factor=0.5)
        >>> model.epsilon = 0.2
        >>> round(model.alpha, 3), sorted(model.read_hyperparameters())
        (0.1, ['alpha', 'epsilon'])
    """

    def _init_hyperparameters(self, epsilon, alpha, alpha_factor, default_alpha_factor):
        """Creates the `epsilon` and `alpha_factor` variables.

        The step size is `alpha` in pixel units at `epsilon`, or
        `alpha_factor`, or else `default_alpha_factor`.
        """
        epsilon = validation.check_epsilon(epsilon)
        if alpha is not None and alpha_factor is not None:
            raise ValueError("Pass the step size as `alpha` (pixel units) or as "
                             "`alpha_factor` (a multiple of epsilon), not both.")
        if alpha is not None:
            alpha_factor = validation.check_positive(alpha, "alpha") / epsilon
        elif alpha_factor is None:
            alpha_factor = default_alpha_factor
        alpha_factor = validation.check_positive(alpha_factor, "alpha_factor")
        # Plain Python state, out of Keras' tracking (`add_weight` tracks
        # the variables): name -> variable, in creation (and saving) order.
        object.__setattr__(self, "_hyperparameter_variables", {})
        self.add_hyperparameter("epsilon", epsilon)
        self.add_hyperparameter("alpha_factor", alpha_factor)

    def add_hyperparameter(self, name, value):
        """Adds a hyperparameter that `perturb` receives as a tensor.

        It is a non-trainable float32 variable, saved with the weights;
        assigning it during training takes effect at the next step without
        retracing. `read_hyperparameters()[name]` is its value when the step
        runs.

        Args:
            name: its key in `read_hyperparameters()`.
            value: its initial value (a number).

        Returns:
            The variable.
        """
        variable = self.add_weight(
            name=name, shape=(), dtype="float32",
            initializer=keras.initializers.Constant(value), trainable=False,
            aggregation="only_first_replica",
        )
        self._hyperparameter_variables[name] = variable
        return variable

    def read_hyperparameters(self):
        """The hyperparameters `perturb` receives: `{name: scalar tensor}`.

        `"epsilon"`, `"alpha"` (in pixel units: `alpha_factor * epsilon`)
        and those added with `add_hyperparameter`. In a traced step, the
        variables are read when the step runs.
        """
        # A read of the replica's copy under `tf.distribute` (a tensor, not
        # the distributed variable, so it can enter a replica function).
        values = {name: tf.identity(variable.value)
                  for name, variable in self._hyperparameter_variables.items()}
        values["alpha"] = values.pop("alpha_factor") * values["epsilon"]
        return values

    def _read_hyperparameter(self, name):
        """A hyperparameter as a Python float; warns inside a traced function."""
        if tf.inside_function():
            warnings.warn(
                f"`{type(self).__name__}.{name}` was read while a step was traced: "
                "its current value is frozen into the trace. Read the `hyperparameters` "
                "argument of `perturb` (tensors read when the step runs) instead.",
                stacklevel=3)
        return read_variable(self._hyperparameter_variables[name])

    def _assign_hyperparameter(self, name, value):
        self._hyperparameter_variables[name].assign(value)

    @property
    def epsilon(self):
        """The L-infinity radius (a float); settable, validated."""
        return self._read_hyperparameter("epsilon")

    @epsilon.setter
    def epsilon(self, value):
        self._assign_hyperparameter("epsilon", validation.check_epsilon(value))

    @property
    def alpha_factor(self):
        """The step size as a multiple of epsilon (a float); settable, validated."""
        return self._read_hyperparameter("alpha_factor")

    @alpha_factor.setter
    def alpha_factor(self, value):
        self._assign_hyperparameter("alpha_factor",
                                    validation.check_positive(value, "alpha_factor"))

    @property
    def alpha(self):
        """The step size in pixel units, `alpha_factor * epsilon` (a float).

        Setting it sets `alpha_factor` to `alpha / epsilon` at the current
        epsilon; a later change of epsilon scales it.
        """
        return self.alpha_factor * self.epsilon

    @alpha.setter
    def alpha(self, value):
        self.alpha_factor = validation.check_positive(value, "alpha") / self.epsilon

    def save_own_variables(self, store):
        """Saves the variables, and a mark of their format: `alpha_factor`
        (a multiple of epsilon) where earlier versions saved `alpha`."""
        super().save_own_variables(store)
        store[_FORMAT_KEY] = np.array(_FORMAT)

    def load_own_variables(self, store):
        """Loads the variables; a file of an earlier version (no format mark)
        holds the step size in pixel units, converted to `alpha_factor`.

        This covers every way weights load: `keras.models.load_model`,
        `load_weights` and the checkpoints that resume a run.
        """
        keys = [key for key in store.keys() if key != _FORMAT_KEY]
        own = self._trainable_variables + self._non_trainable_variables
        if len(keys) != len(own):
            raise ValueError(
                f"{type(self).__name__} {self.name!r} expected {len(own)} variables, but "
                f"the file holds {len(keys)}: it was saved from another model.")
        for index, variable in enumerate(own):
            variable.assign(store[f"{index}"])
        if _FORMAT_KEY not in store.keys():
            factor = self._hyperparameter_variables["alpha_factor"]
            factor.assign(factor / self._hyperparameter_variables["epsilon"])
