import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import zerograd_tf as zg
from zerograd_tf import monitoring
from conftest import compile_kwargs, mlp, robustness_problem


class Script:
    """A test double of the measurement: scripted FGSM/PGD accuracies.

    It also records the classifier's weights at every check, so tests can
    compare restored weights with those of a given check.
    """

    def __init__(self, pgd, fgsm):
        self.pgd, self.fgsm, self.weights = pgd, fgsm, []

    def __call__(self, model):
        i = len(self.weights)
        self.weights.append([w.copy() for w in model.classifier.get_weights()])
        return {"clean_accuracy": 0.9, "fgsm_accuracy": self.fgsm[i],
                "pgd_accuracy": self.pgd[i]}


# Healthy, healthy (best 0.30), then collapse with FGSM high, then more epochs.
PGD = [0.20, 0.30, 0.05, 0.04, 0.03]
FGSM = [0.30, 0.45, 0.85, 0.90, 0.92]


class CaptureAfter(keras.callbacks.Callback):
    """Records the classifier's weights at each epoch end, after the monitor acted."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([w.copy() for w in self.model.classifier.get_weights()])


def _fit(monitor, epochs=5, cls=zg.ZeroGradModel, capture=None, **kwargs):
    x, y = robustness_problem(128)
    inputs, outputs = mlp()
    model = cls(inputs, outputs, epsilon=0.1, seed=0, **kwargs)
    model.compile(**compile_kwargs())
    callbacks = [monitor] + ([capture] if capture else [])
    history = model.fit(x, y, batch_size=64, epochs=epochs, verbose=0, callbacks=callbacks)
    return model, history.history


def test_warn_logs_and_continues(tmp_path, caplog):
    script = Script(PGD, FGSM)
    monitor = zg.CatastrophicOverfittingMonitor(measure=script, action="warn",
                                                logdir=str(tmp_path), verbose=0)
    with caplog.at_level(logging.WARNING, logger="zerograd_tf"):
        _, history = _fit(monitor)
    assert len(history["loss"]) == 5
    assert history["co_monitor/detected"] == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert history["co_monitor/pgd_accuracy"] == pytest.approx(PGD)
    assert "catastrophic overfitting at epoch 3" in caplog.text
    files = [os.path.join(r, f) for r, _, fs in os.walk(tmp_path / "co_monitor") for f in fs]
    tags = {v.tag for f in files for e in tf.compat.v1.train.summary_iterator(f)
            for v in e.summary.value}
    assert "catastrophic_overfitting" in tags


def test_stop_restores_the_last_healthy_weights_and_stops():
    script = Script(PGD, FGSM)
    monitor = zg.CatastrophicOverfittingMonitor(measure=script, action="stop", verbose=0)
    model, history = _fit(monitor)
    assert len(history["loss"]) == 3 and monitor.detected
    for restored, healthy in zip(model.classifier.get_weights(), script.weights[1]):
        np.testing.assert_array_equal(restored, healthy)
    assert any((a != b).any() for a, b in zip(script.weights[2], script.weights[1]))


def test_adapt_restores_raises_the_quantile_and_continues():
    # After adapting, the run recovers (PGD back at 0.28 with FGSM 0.35).
    script = Script([0.20, 0.30, 0.05, 0.28, 0.29], [0.30, 0.45, 0.85, 0.35, 0.36])
    monitor = zg.CatastrophicOverfittingMonitor(measure=script, action="adapt",
                                                quantile_step=0.15, verbose=0)
    capture = CaptureAfter()
    model, history = _fit(monitor, quantile=0.35, capture=capture)
    assert len(history["loss"]) == 5
    assert model.quantile == pytest.approx(0.5)
    (event,) = monitor.events
    assert (event["epoch"], event["step"], event["action"]) == (2, 2, "adapt")
    assert event["quantile"] == pytest.approx(0.5)
    assert history["co_monitor/detected"] == [0.0, 0.0, 1.0, 0.0, 0.0]
    # After the detection at epoch 3, the weights are those of check 2.
    for restored, healthy in zip(capture.weights[2], script.weights[1]):
        np.testing.assert_array_equal(restored, healthy)
    assert any((a != b).any() for a, b in zip(script.weights[2], script.weights[1]))


def test_adapt_needs_a_zerograd_model():
    monitor = zg.CatastrophicOverfittingMonitor(measure=Script(PGD, FGSM), action="adapt")
    with pytest.raises(ValueError, match="needs a ZeroGradModel"):
        _fit(monitor, cls=zg.FGSMModel)


@pytest.mark.slow
def test_state_survives_resume(tmp_path):
    state = str(tmp_path / "co.json")
    first = zg.CatastrophicOverfittingMonitor(measure=Script(PGD, FGSM), action="warn",
                                              state_path=state, verbose=0)
    _fit(first, epochs=2)
    assert [c["pgd_accuracy"] for c in first.checks] == [0.2, 0.3]
    # A resumed run (fit from initial_epoch=1, i.e. epoch 2 is run again):
    second = zg.CatastrophicOverfittingMonitor(measure=Script(PGD[1:], FGSM[1:]),
                                               action="warn", state_path=state, verbose=0)
    x, y = robustness_problem(128)
    inputs, outputs = mlp()
    model = zg.ZeroGradModel(inputs, outputs, epsilon=0.1, seed=0)
    model.compile(**compile_kwargs())
    model.fit(x, y, batch_size=64, epochs=3, initial_epoch=1, verbose=0, callbacks=[second])
    assert [c["epoch"] for c in second.checks] == [0, 1, 2]
    assert [c["pgd_accuracy"] for c in second.checks] == [0.2, 0.3, 0.05]
    assert second.detected and second.healthy_weights is not None


def test_step_frequency_checks_within_epochs():
    script = Script([0.2] * 10, [0.3] * 10)
    monitor = zg.CatastrophicOverfittingMonitor(measure=script, frequency=1, verbose=0)
    _fit(monitor, epochs=2)  # 128 examples / 64 = 2 steps per epoch
    assert [(c["epoch"], c["step"]) for c in monitor.checks] == [(0, 1), (0, 2), (1, 1), (1, 2)]


def test_real_measurement_runs():
    x, y = robustness_problem(64)
    monitor = zg.CatastrophicOverfittingMonitor(x, y, action="warn", verbose=0)
    _, history = _fit(monitor, epochs=1)
    assert 0 <= history["co_monitor/pgd_accuracy"][0] <= history["co_monitor/clean_accuracy"][0]


def test_argument_errors():
    with pytest.raises(ValueError, match="`action` must be one of"):
        zg.CatastrophicOverfittingMonitor(measure=Script(PGD, FGSM), action="panic")
    with pytest.raises(ValueError, match="held-out batch"):
        zg.CatastrophicOverfittingMonitor()
    with pytest.raises(ValueError, match="`frequency` must be an integer >= 1"):
        zg.CatastrophicOverfittingMonitor(measure=Script(PGD, FGSM), frequency=0)
    # Each range named in the message; no bare TypeError from a comparison.
    for name, value, interval in [("drop", None, r"\(0, 1\)"), ("drop", 1.0, r"\(0, 1\)"),
                                  ("min_best", 5, r"\[0, 1\)"), ("min_best", -1, r"\[0, 1\)"),
                                  ("quantile_step", 3.0, r"\(0, 1\)"),
                                  ("max_quantile", "0.9", r"\(0, 1\)"),
                                  ("max_gap", 0, r"\(0, 1\)")]:
        with pytest.raises(ValueError, match=f"`{name}` must be a number in {interval}"):
            zg.CatastrophicOverfittingMonitor(measure=Script(PGD, FGSM), **{name: value})
    with pytest.raises(ValueError, match="`verbose` must be one of"):
        zg.CatastrophicOverfittingMonitor(measure=Script(PGD, FGSM), verbose="yes")
    x, y = np.zeros((8, 4), np.float32), np.zeros(7, np.int64)
    with pytest.raises(ValueError, match="`x` and `y` must have the same length, got 8 and 7"):
        zg.CatastrophicOverfittingMonitor(x, y, 0.1)
    with pytest.raises(ValueError, match="`x` and `y` must have the same length"):
        zg.AdversarialDiagnostics(x, y, "logs")
    with pytest.raises(ValueError, match="`seed` must be an integer >= 0"):
        zg.AdversarialDiagnostics(x, y[:1].repeat(8), "logs", seed="a")


def test_inference_gradient_alignment_is_one_for_a_linear_model_and_less_otherwise():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.8, (64, 10)).astype(np.float32)
    y = rng.integers(0, 2, 64)
    inputs = keras.Input((10,))
    linear = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    alignment = monitoring.inference_gradient_alignment(linear, x, y, 0.1)
    assert alignment == pytest.approx(1.0, abs=1e-5)
    h = keras.layers.Dense(64, activation="relu")(inputs)
    h = keras.layers.Dense(64, activation="relu")(h)
    nonlinear = keras.Model(inputs, keras.layers.Dense(2)(h))
    assert monitoring.inference_gradient_alignment(nonlinear, x, y, 0.3) < 0.99


def test_diagnostics_write_the_documented_entries(tmp_path):
    from zerograd_tf.callbacks.diagnostics import DIAGNOSTIC_TAGS

    x, y = robustness_problem(64)
    diagnostics = zg.AdversarialDiagnostics(x, y, str(tmp_path))
    _, history = _fit(diagnostics, epochs=2)
    files = [os.path.join(r, f) for r, _, fs in os.walk(tmp_path / "diagnostics") for f in fs]
    tags = {v.tag for f in files for e in tf.compat.v1.train.summary_iterator(f)
            for v in e.summary.value}
    assert set(DIAGNOSTIC_TAGS) <= tags
    assert -1 <= history["diagnostics/inference_gradient_alignment"][-1] <= 1


def test_checks_measure_at_the_target_epsilon_during_a_warm_up():
    x, y = robustness_problem(128)
    inputs, outputs = mlp()
    model = zg.ZeroGradModel(inputs, outputs, epsilon=0.2, seed=0)
    model.compile(**compile_kwargs())
    monitor = zg.CatastrophicOverfittingMonitor(x[:64], y[:64], frequency=1, verbose=0)
    warmup = zg.callbacks.EpsilonWarmup(0.2, warmup_steps=4)
    history = model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=[warmup, monitor])
    assert [c["epsilon"] for c in monitor.checks] == pytest.approx([0.2] * 4)
    assert history.history["co_monitor/epsilon"] == pytest.approx([0.2, 0.2])
    # The last check equals a measurement at the target radius, not the ramp's.
    expected = monitoring.AttackMeter(model, 0.2)(x[:64], y[:64])
    assert monitor.checks[-1]["pgd_accuracy"] == pytest.approx(expected["pgd_accuracy"])


def test_steps_are_counted_since_the_last_check_and_every_epoch_ends_with_one():
    script = Script([0.2] * 10, [0.3] * 10)
    monitor = zg.CatastrophicOverfittingMonitor(measure=script, frequency=3, verbose=0)
    x, y = robustness_problem(128)
    inputs, outputs = mlp()
    model = zg.ZeroGradModel(inputs, outputs, epsilon=0.1, seed=0)
    model.compile(**compile_kwargs())
    model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[monitor])
    # 4 steps per epoch: global step 3, the epoch's end (4), then 3 steps
    # after that check (7, in the next epoch), and the end (8).
    assert [(c["epoch"], c["step"], c["global_step"]) for c in monitor.checks] == [
        (0, 3, 3), (0, 4, 4), (1, 3, 7), (1, 4, 8)]


@pytest.mark.slow
def test_a_second_fit_starts_from_a_clean_state():
    script = Script(PGD + PGD, FGSM + FGSM)
    monitor = zg.CatastrophicOverfittingMonitor(measure=script, action="warn", verbose=0)
    _fit(monitor, epochs=3)
    assert monitor.detected and len(monitor.checks) == 3
    _fit(monitor, epochs=2)  # another model, another run
    assert len(monitor.checks) == 2 and not monitor.detected


def test_stop_restores_the_optimizer_moments_of_the_healthy_check():
    class Snapshot(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.states = []

        def on_epoch_end(self, epoch, logs=None):
            optimizer = self.model.optimizer
            self.states.append([v.numpy().copy() for v in optimizer.variables
                                if v is not optimizer.iterations])

    script = Script(PGD, FGSM)
    monitor = zg.CatastrophicOverfittingMonitor(measure=script, action="stop", verbose=0)
    snapshot = Snapshot()
    x, y = robustness_problem(128)
    inputs, outputs = mlp()
    model = zg.ZeroGradModel(inputs, outputs, epsilon=0.1, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=5, verbose=0, callbacks=[monitor, snapshot])
    assert monitor.events == [{"epoch": 2, "step": 2, "action": "stop", "restored": True}]
    momenta = [v.numpy() for v in model.optimizer.variables
               if v is not model.optimizer.iterations]
    assert any(np.abs(m).max() > 0 for m in momenta)
    for restored, healthy in zip(momenta, snapshot.states[1]):
        np.testing.assert_array_equal(restored, healthy)
    for restored, healthy in zip(model.classifier.get_weights(), script.weights[1]):
        np.testing.assert_array_equal(restored, healthy)


@pytest.mark.parametrize("pgd, fgsm, slid", [
    ([0.18, 0.17, 0.15, 0.13], [0.20, 0.20, 0.21, 0.22], True),
    ([0.18, 0.17, 0.15, 0.13], [0.21, 0.20, 0.17, 0.14], False),  # both fall
    ([0.18, 0.12, 0.13], [0.20, 0.22, 0.22], False),               # no longer falling
    ([0.18, 0.17, 0.15], [0.20, 0.21, 0.22], False),               # within 20 % of the best
    ([0.04, 0.03, 0.01], [0.05, 0.06, 0.09], False),               # never robust
    ([0.18], [0.20], False),
])
def test_the_slow_slide_rule(pgd, fgsm, slid):
    assert zg.monitoring.slow_slide(pgd, fgsm) is slid


def test_the_epoch_ends_with_a_check_when_another_callback_stops_training():
    """A callback before the monitor (EarlyStopping, say) that stops training
    at an epoch's end: the monitor still checks that epoch, and the epoch's
    logs hold that check, not the previous epoch's."""
    class StopAfterSecond(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    script = Script(PGD, FGSM)
    monitor = zg.CatastrophicOverfittingMonitor(measure=script, action="warn", verbose=0)
    x, y = robustness_problem(128)
    inputs, outputs = mlp()
    model = zg.ZeroGradModel(inputs, outputs, epsilon=0.1, seed=0)
    model.compile(**compile_kwargs())
    history = model.fit(x, y, batch_size=64, epochs=5, verbose=0,
                        callbacks=[StopAfterSecond(), monitor]).history
    assert [c["epoch"] for c in monitor.checks] == [0, 1]
    assert history["co_monitor/pgd_accuracy"] == pytest.approx(PGD[:2])


@pytest.mark.parametrize("examples, steps_per_execution, checks", [
    # 8 steps per epoch: checks after steps 4 and 8 of each epoch, none added at its end.
    (128, 2, [(0, 4, 4), (0, 8, 8), (1, 4, 12), (1, 8, 16)]),
    # 10 steps per epoch, not a multiple of k = 4: Keras reports a step k - 1 past
    # the last one started; checks after steps 4 and 8, and at the epoch's end (step 10).
    (160, 4, [(0, 4, 4), (0, 8, 8), (0, 10, 10), (1, 4, 14), (1, 8, 18), (1, 10, 20)]),
])
def test_step_checks_count_training_steps_under_steps_per_execution(
        examples, steps_per_execution, checks):
    """With steps_per_execution = k, Keras calls the batch hooks once per k
    steps: `frequency` still counts the training steps that ran, the shorter
    last execution of an epoch included."""
    script = Script([0.3] * 40, [0.3] * 40)
    monitor = zg.CatastrophicOverfittingMonitor(measure=script, frequency=4, verbose=0)
    x, y = robustness_problem(examples)
    inputs, outputs = mlp()
    model = zg.ZeroGradModel(inputs, outputs, epsilon=0.1, seed=0)
    model.compile(**compile_kwargs(), steps_per_execution=steps_per_execution)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[monitor])
    assert int(model.optimizer.iterations.numpy()) == 2 * examples // 16
    assert [(c["epoch"], c["step"], c["global_step"]) for c in monitor.checks] == checks
