"""Every use of a private Keras or TensorFlow name, in one place.

A custom `train_step` in Keras 3 has to do what Keras' own `train_step`
does, and a few of those pieces have no public API. Each function below
wraps one such use, says why no public API serves, and is the only place in
the package that touches the private name, so that a Keras upgrade that
moves one breaks exactly one function (and the tests that call it).

One dependency on Keras' behaviour, not on a name, lives elsewhere:
`AdversarialModel.__dir__` leaves `classifier` out because Keras' saver
(`keras.src.saving.saving_lib`) stores each layer under the first
attribute name it meets in `dir()` order; that keeps the saved layout of
earlier versions, and `tests/test_models.py` checks the layout.

The tested version range is recorded in the README's development section.
"""

import tensorflow as tf


def compute_loss(model, x, y, y_pred, sample_weight, training):
    """The compiled loss of `model` on one batch, as Keras' `train_step` computes it.

    Private: `Model._compute_loss`. The public `Model.compute_loss` gained
    its `training` argument only in later Keras 3 releases; `_compute_loss`
    is Keras' own adapter that calls a user-overridden `compute_loss` with
    or without it, which a `train_step` must respect.
    """
    return model._compute_loss(x=x, y=y, y_pred=y_pred,
                               sample_weight=sample_weight, training=training)


def update_loss_metric(model, loss, batch_size):
    """Adds one batch's loss to the model's `loss` metric, unscaled.

    Private: `Model._loss_tracker` and
    `keras.src.losses.loss.unscale_loss_for_distribution`. Keras' `loss`
    metric is created by `compile` and has no public handle; a custom
    `train_step` must update it (Keras' own does) or the `loss` entry of the
    logs stays at zero. Under `tf.distribute` the compiled loss comes scaled
    by 1 / replicas; Keras' helper undoes that so the metric reports the
    global-batch loss.
    """
    from keras.src.losses import loss as loss_module

    model._loss_tracker.update_state(
        loss_module.unscale_loss_for_distribution(loss), sample_weight=batch_size)


def set_jit_compile(model, value):
    """Sets the model's XLA flag without Keras' check and warning.

    Private: `Model._jit_compile`. The public `jit_compile` setter refuses
    (with a warning) values that Keras thinks the model cannot compile;
    here the flag is switched off and back around the making of a step
    function whose replica functions we compile ourselves.
    """
    model._jit_compile = value


def clear_distribute_strategy(model):
    """Makes `fit` skip its cross-worker symbolic build of `model`.

    Private: `Model._distribute_strategy`. Keras 3's `fit` reduces a peeked
    data batch across workers before building the model, which fails under
    `MultiWorkerMirroredStrategy` (keras-team/keras#20585,
    tensorflow/tensorflow#72388); a model with no recorded strategy skips
    that step. The public `distribute_strategy` property is read-only.
    """
    model._distribute_strategy = None


def call_has_training_argument(model):
    """Whether `model.call` takes a `training` argument.

    Private: `Layer._call_has_training_arg`. `stateless_call` passes
    keyword arguments straight to `call`, so passing `training` to a model
    whose `call` lacks it would fail; Keras records the fact at construction
    and exposes it only privately.
    """
    return getattr(model, "_call_has_training_arg", True)


def is_probability_output(y_pred):
    """Whether Keras knows `y_pred` came out of a softmax or sigmoid activation.

    Private: the `_keras_logits` attribute Keras attaches to activation
    outputs, and `tf.__internal__.EagerTensor`. Keras' own losses use the
    same attribute to decide `from_logits`; no public API tells it. In graph
    mode the producing op's type says it.
    """
    if hasattr(y_pred, "_keras_logits"):
        return True
    op = getattr(y_pred, "op", None)
    return (
        op is not None
        and not isinstance(y_pred, tf.__internal__.EagerTensor)
        and op.type in ("Softmax", "Sigmoid")
    )


def softmax_logits(y_pred):
    """The logits under a Keras softmax output, or `None` when unknown.

    Private: `_keras_logits` (eager tensors) and, in a traced function, the
    input of the producing `Softmax` op, which is how Keras' own
    cross-entropy recovers the logits (`keras/src/backend/tensorflow/nn.py`).
    """
    logits = getattr(y_pred, "_keras_logits", None)
    if logits is not None:
        return logits
    op = getattr(y_pred, "op", None)
    if (op is not None and not isinstance(y_pred, tf.__internal__.EagerTensor)
            and op.type == "Softmax"):
        return op.inputs[0]
    return None


__all__ = [
    "call_has_training_argument",
    "clear_distribute_strategy",
    "compute_loss",
    "is_probability_output",
    "set_jit_compile",
    "softmax_logits",
    "update_loss_metric",
]


def is_graph_model(model):
    """Whether `model` is a functional or `Sequential` model (a graph of
    layers that `keras.models.clone_model` can rebuild layer by layer).

    Private: `keras.src.models.Functional`. Keras exports no public class
    or predicate for functional models (`keras.Model(inputs, outputs)`
    returns one); `keras.Sequential` is not a subclass of it.
    """
    import keras
    from keras.src.models import Functional

    return isinstance(model, (Functional, keras.Sequential))
