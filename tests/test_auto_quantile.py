"""`ZeroGradModel(quantile="auto")` and its monitor, `AutoQuantile`."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import zerograd_tf as zg
from zerograd_tf.callbacks import auto_quantile
from conftest import compile_kwargs, mlp, robustness_problem

HEALTHY = {"clean_accuracy": 0.9, "fgsm_accuracy": 0.4, "pgd_accuracy": 0.3}
COLLAPSED = {"clean_accuracy": 0.9, "fgsm_accuracy": 0.9, "pgd_accuracy": 0.02}


class CollapseAt:
    """A scripted measurement: CO at the given global steps, healthy otherwise.

    Keyed by the optimizer's step, so a resumed run sees the same script.
    It records the weights it measured, by global step.
    """

    def __init__(self, *steps):
        self.steps, self.weights = set(steps), {}

    def __call__(self, model):
        step = int(model.optimizer.iterations.numpy())
        self.weights[step] = [w.copy() for w in model.classifier.get_weights()]
        return COLLAPSED if step in self.steps else HEALTHY


class SlideScript:
    """A scripted slow slide, keyed by the optimizer's step (2 steps an
    epoch): PGD accuracy peaks at the end of epoch 1 and erodes while FGSM
    accuracy holds, a slide at the end of epoch 3 (step 6)."""

    PGD = {1: 0.15, 2: 0.18, 3: 0.17, 4: 0.17, 5: 0.15, 6: 0.13, 7: 0.16, 8: 0.16}

    def __init__(self):
        self.weights = {}

    def __call__(self, model):
        step = int(model.optimizer.iterations.numpy())
        self.weights[step] = [w.copy() for w in model.classifier.get_weights()]
        return {"clean_accuracy": 0.5, "fgsm_accuracy": 0.20 if step < 5 else 0.22,
                "pgd_accuracy": self.PGD[step]}


class WeightsAfterBatch(keras.callbacks.Callback):
    """Records the classifier's weights after each step's callbacks before it."""

    def __init__(self):
        super().__init__()
        self.weights = {}

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self.weights[step] = [w.copy() for w in self.model.classifier.get_weights()]


class StopAfter(keras.callbacks.Callback):
    """Simulates a kill: aborts `fit` after the given global step."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            raise KeyboardInterrupt


def _model(**kwargs):
    inputs, outputs = mlp()
    model = zg.ZeroGradModel(inputs, outputs, epsilon=0.1, seed=0, quantile="auto", **kwargs)
    model.compile(**compile_kwargs())
    return model


@pytest.mark.slow
def test_auto_starts_at_the_papers_quantile_and_saves_as_auto(tmp_path):
    model = _model()
    assert model.quantile_auto and model.quantile == pytest.approx(auto_quantile.START_QUANTILE)
    assert model.get_config()["quantile"] == "auto"
    x, y = robustness_problem(64)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0,
              callbacks=[zg.AutoQuantile(x[48:], y[48:], verbose=0)])
    model.quantile = 0.55  # as an adaptation leaves it
    path = str(tmp_path / "auto.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.quantile_auto and loaded.quantile == pytest.approx(0.55)


@pytest.mark.slow
def test_collapse_restores_the_healthy_weights_raises_q_and_continues():
    x, y = robustness_problem(128)
    script = CollapseAt(5)
    monitor = zg.AutoQuantile(measure=script, frequency=1, verbose=0)
    model = _model()
    after = WeightsAfterBatch()
    history = model.fit(x, y, batch_size=64, epochs=4, shuffle=False, verbose=0,
                        callbacks=[monitor, after])
    assert len(history.history["loss"]) == 4  # the run continued
    assert model.quantile == pytest.approx(
        auto_quantile.START_QUANTILE + auto_quantile.QUANTILE_STEP)
    (event,) = monitor.events
    assert (event["epoch"], event["step"], event["action"]) == (2, 1, "adapt")
    # After the collapse at step 5, the weights are those of step 4 again.
    for restored, healthy in zip(after.weights[5], script.weights[4]):
        np.testing.assert_array_equal(restored, healthy)
    assert any((a != b).any() for a, b in zip(script.weights[5], script.weights[4]))
    assert [c["co"] for c in monitor.checks] == [False] * 4 + [True] + [False] * 3


@pytest.mark.slow
def test_quantile_is_capped():
    x, y = robustness_problem(128)
    monitor = zg.AutoQuantile(measure=CollapseAt(2, 4, 6), frequency=1, quantile_step=0.3,
                              max_quantile=0.8, verbose=0)
    model = _model()
    history = model.fit(x, y, batch_size=64, epochs=4, verbose=0, callbacks=[monitor])
    # 0.35 -> 0.65 -> 0.8 (the cap); a collapse at the cap restores and stops.
    assert [e["action"] for e in monitor.events] == ["adapt", "adapt", "stop"]
    assert [e.get("quantile") for e in monitor.events] == pytest.approx([0.65, 0.8, None])
    assert model.quantile == pytest.approx(0.8)
    assert len(history.history["loss"]) == 3 and monitor.stopped


class CollapseThenSlide:
    """Healthy up to the end of epoch 1 (step 2, PGD accuracy's peak), a
    collapse at both checks of epoch 2 (so epoch 2 ends without a healthy
    check and its checkpoint holds step 2's restored weights), then a slow
    slide at the end of epoch 3 (step 6), judged against step 2. The slide
    rule goes back to the last healthy epoch end, step 2: also after a
    resume from epoch 2's checkpoint, where the last healthy check is
    step 5's (a routine one)."""

    PGD = {1: 0.15, 2: 0.20, 5: 0.18, 6: 0.14, 7: 0.16, 8: 0.16}

    def __init__(self):
        self.weights = {}

    def __call__(self, model):
        step = int(model.optimizer.iterations.numpy())
        self.weights[step] = [w.copy() for w in model.classifier.get_weights()]
        if step in (3, 4):
            return COLLAPSED
        return {"clean_accuracy": 0.5, "fgsm_accuracy": 0.22 if step == 6 else 0.20,
                "pgd_accuracy": self.PGD[step]}


SCRIPTS = {"collapse": lambda: CollapseAt(5), "slide": SlideScript,
           # Every check of epoch 1 collapses (no healthy check to restore),
           # and so does the first of epoch 2.
           "no_healthy_check": lambda: CollapseAt(1, 2, 3),
           "collapse_then_slide": CollapseThenSlide}


@pytest.mark.slow
@pytest.mark.parametrize("kill_after, slide_drop, script", [
    (4, None, "collapse"), (5, None, "collapse"), (5, 0.2, "slide"), (7, 0.2, "slide"),
    (3, None, "no_healthy_check"), (5, 0.2, "collapse_then_slide")])
def test_the_rule_survives_a_kill_and_resume(tmp_path, kill_after, slide_drop, script):
    """A run killed after step 4 (an epoch end) or 5 (the adaptation was
    saved, the checkpoint of epoch 3 was not) resumes to exactly the
    uninterrupted run: weights, quantile, checks and events; so does a run
    with the slide rule killed inside the slide or after acting on it; a
    run resumed before any healthy check has none to restore (as the
    uninterrupted run); and a slide after a resume goes back to the last
    healthy epoch end before it, also when that is older than the
    checkpoint."""
    x, y = robustness_problem(128)

    def run(folder, callbacks=(), epochs=4, restore=False):
        measure = SCRIPTS[script]()
        monitor = zg.AutoQuantile(measure=measure, frequency=1, verbose=0,
                                  slide_drop=slide_drop, state_path=str(folder / "auto.json"))
        checkpoint = zg.callbacks.EpochCheckpoint(str(folder / "checkpoint"))
        keras.utils.set_random_seed(0)
        model = _model()
        model.build((None, 4, 4, 1))
        initial = checkpoint.restore(model) if restore else 0
        model.fit(x, y, batch_size=64, epochs=epochs, initial_epoch=initial, shuffle=False,
                  verbose=0, callbacks=[monitor, checkpoint, *callbacks])
        return model, monitor

    whole, whole_monitor = run(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed", callbacks=[StopAfter(kill_after)])
    if slide_drop is not None:
        # What a kill during a restore point's write leaves (a real kill
        # skips the cleanup an exception runs).
        (tmp_path / "killed" / f"auto.epoch_end_{kill_after // 2}.tmp.npz").write_bytes(b"ha")
    resumed, resumed_monitor = run(tmp_path / "killed", restore=True)
    assert resumed.quantile == whole.quantile
    for a, b in zip(resumed.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert resumed_monitor.checks == whole_monitor.checks
    assert resumed_monitor.events == whole_monitor.events
    assert len(whole_monitor.events) == {"no_healthy_check": 3,
                                         "collapse_then_slide": 3}.get(script, 1)
    if script == "collapse_then_slide":
        assert [c.get("slide", False) for c in whole_monitor.checks if c["co"]] == [
            False, False, True]
    # The slide rule's saved restore points go once training has ended.
    assert not list((tmp_path / "killed").glob("*.npz"))
    if slide_drop is not None:
        assert sorted(p.name for p in (tmp_path / "whole").iterdir()) == [
            "auto.json", "checkpoint"]
    with open(tmp_path / "killed" / "auto.json") as f:
        assert json.load(f)["events"] == whole_monitor.events


def test_a_routine_signal_is_confirmed_on_all_held_out_examples():
    calls = []

    def measure(model):
        # Routine checks see a collapse from the third check on; the
        # confirmation measurement (called right after) does not.
        calls.append(int(model.optimizer.iterations.numpy()))
        routine = len(calls) < 3 or calls[-2] != calls[-1]
        return COLLAPSED if routine and len(calls) >= 3 else HEALTHY

    x, y = robustness_problem(128)
    monitor = zg.AutoQuantile(x[:64], y[:64], measure=measure, frequency=1, check_size=16,
                              verbose=0)
    model = _model()
    model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=[monitor])
    assert not monitor.events and model.quantile == pytest.approx(0.35)
    assert [c["size"] for c in monitor.checks] == [16, 16, 64, 64]
    assert calls == [1, 2, 3, 3, 4, 4]


@pytest.mark.slow
def test_real_checks_measure_the_first_examples_only():
    x, y = robustness_problem(256)
    monitor = zg.AutoQuantile(x[128:], y[128:], frequency=1, check_size=32, verbose=0)
    model = _model()
    model.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=0, callbacks=[monitor])
    assert [c["size"] for c in monitor.checks if not c["co"]][0] == 32
    assert all(0 <= c["pgd_accuracy"] <= c["clean_accuracy"] + 1e-9 for c in monitor.checks)
    assert monitor.checks[0]["epsilon"] == pytest.approx(0.1)


class Batches(keras.utils.PyDataset):
    """Held-out examples as a `keras.utils.PyDataset` of (x, y) batches."""

    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[part], self.y[part]


@pytest.mark.parametrize("held_out", ["arrays", "dataset", "py_dataset"])
def test_the_monitor_takes_the_first_held_out_examples_of_any_input(held_out):
    x, y = robustness_problem(600)
    given = {
        "arrays": (x, y),
        "dataset": (tf.data.Dataset.from_tensor_slices((x, y)).batch(100),),
        "py_dataset": (Batches(x, y, 100),),
    }[held_out]
    monitor = zg.AutoQuantile(*given, verbose=0)
    np.testing.assert_array_equal(monitor.x, x[:auto_quantile.CONFIRM_SIZE])
    np.testing.assert_array_equal(monitor.y, y[:auto_quantile.CONFIRM_SIZE])


def test_held_out_inputs_it_cannot_read_are_named_in_the_error():
    with pytest.raises(TypeError, match="AutoQuantile.*arrays.*tf.data.Dataset.*PyDataset.*got str"):
        zg.AutoQuantile("held_out.npz", verbose=0)


@pytest.mark.parametrize("fit_arguments", [
    {}, {"validation_split": 0.25},
    {"validation_data": Batches(*robustness_problem(64), 16)}])
def test_auto_without_the_monitor_says_how_to_add_it(fit_arguments):
    """`fit` adds no callback: training with q stuck at 0.35 would be a
    silent failure, so it refuses, naming the callback to pass."""
    x, y = robustness_problem(64)
    with pytest.raises(ValueError, match=r"callbacks=\[.*AutoQuantile\(x_held_out, y_held_out"):
        _model().fit(x, y, epochs=1, verbose=0, **fit_arguments)


@pytest.mark.slow
def test_a_given_monitor_is_used_as_it_is():
    x, y = robustness_problem(64)
    monitor = zg.AutoQuantile(measure=CollapseAt(), verbose=0)
    history = _model().fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[monitor])
    assert len(monitor.checks) == 1 and "co_monitor/pgd_accuracy" in history.history


def test_invalid_quantile_text_is_refused():
    with pytest.raises(ValueError, match="'auto'"):
        zg.ZeroGradModel(*mlp(), epsilon=0.1, quantile="autp")


@pytest.mark.slow
def test_a_large_fgsm_pgd_gap_adapts_even_without_a_collapse():
    """MNIST's failure mode: PGD accuracy never rises, FGSM accuracy soars."""
    def measure(model):
        step = int(model.optimizer.iterations.numpy())
        fgsm = 0.3 if step < 3 else 0.75
        return {"clean_accuracy": 0.9, "fgsm_accuracy": fgsm, "pgd_accuracy": 0.1}

    x, y = robustness_problem(128)
    auto = zg.AutoQuantile(measure=measure, frequency=1, verbose=0)
    model = _model()
    model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=[auto])
    assert [e["step"] for e in auto.events] == [1, 2]  # global steps 3 and 4
    assert model.quantile == pytest.approx(0.55)
    # The plain monitor applies the CO rule alone: no collapse, no action.
    plain = zg.CatastrophicOverfittingMonitor(measure=measure, frequency=1, action="adapt",
                                              verbose=0)
    model = zg.ZeroGradModel(*mlp(), epsilon=0.1, seed=0, quantile=0.35)
    model.compile(**compile_kwargs())
    model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=[plain])
    assert not plain.events and model.quantile == pytest.approx(0.35)


def test_a_slow_slide_goes_back_to_the_last_healthy_epoch_end_and_raises_q():
    """CIFAR-10's failure mode: PGD accuracy erodes over epochs, no collapse."""
    x, y = robustness_problem(128)
    for slide_drop, events in ((None, []), (0.2, [(2, 2, "adapt")])):
        script = SlideScript()
        auto = zg.AutoQuantile(measure=script, frequency=1, slide_drop=slide_drop, verbose=0)
        model = _model()
        starts = {}
        record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: starts.update(
            {epoch: [w.copy() for w in model.classifier.get_weights()]}))
        model.fit(x, y, batch_size=64, epochs=4, shuffle=False, verbose=0,
                  callbacks=[auto, record])
        assert [(e["epoch"], e["step"], e["action"]) for e in auto.events] == events
    assert model.quantile == pytest.approx(
        auto_quantile.START_QUANTILE + auto_quantile.QUANTILE_STEP)
    assert len([c for c in auto.checks if c.get("epoch_end")]) == 4
    # The 4th epoch starts from the end of the 2nd (step 4), not from step
    # 5's check, which passed the collapse test inside the slide.
    for restored, healthy in zip(starts[3], script.weights[4]):
        np.testing.assert_array_equal(restored, healthy)
    assert any((a != b).any() for a, b in zip(script.weights[5], script.weights[4]))


def test_slide_drop_is_checked():
    with pytest.raises(ValueError, match="slide_drop"):
        zg.AutoQuantile(measure=lambda model: None, slide_drop=1.5)
