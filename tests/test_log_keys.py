"""Callback log keys: never a model metric's name, never an overwrite (issue 25, item 2)."""

import keras
import numpy as np
import pytest

import zerograd_tf as zg
from zerograd_tf import callbacks, models
from conftest import compile_kwargs, mlp, robustness_problem

# Every model class, with the arguments of a tiny run.
MODELS = {
    "CleanModel": {},
    "FGSMModel": {"random_init": True},
    "GradAlignModel": {"gradalign_lambda": 0.5},
    "MultiGradModel": {"samples": 2},
    "NFGSMModel": {},
    "PGDModel": {"steps": 2},
    "ZeroGradModel": {},
    "ZeroGradNFGSMModel": {},
}


def _callbacks(x, y, folder):
    """One of every callback in `zerograd_tf.callbacks`, set to write all it can."""
    return {
        "AdversarialDiagnostics": zg.AdversarialDiagnostics(x, y, str(folder / "logs"),
                                                            pgd_steps=1),
        "AutoQuantile": callbacks.AutoQuantile(x, y, frequency=1, check_size=8, pgd_steps=1,
                                               verbose=0),
        "CatastrophicOverfittingMonitor": zg.CatastrophicOverfittingMonitor(
            x, y, frequency=1, pgd_steps=1, verbose=0),
        "EpochCheckpoint": callbacks.EpochCheckpoint(str(folder / "checkpoint")),
        "EpsilonWarmup": callbacks.EpsilonWarmup(0.1, warmup_steps=2),
        "HistoryWriter": callbacks.HistoryWriter(str(folder / "history.json")),
        "NonFiniteLossGuard": callbacks.NonFiniteLossGuard(),
    }


class _Snapshot(keras.callbacks.Callback):
    """Placed before a callback: remembers the logs as the callback receives them."""

    def __init__(self):
        super().__init__()
        self.seen = {}

    def on_train_batch_end(self, batch, logs=None):
        self.seen = dict(logs or {})

    def on_epoch_end(self, epoch, logs=None):
        self.seen = dict(logs or {})


class _Written(keras.callbacks.Callback):
    """Placed after it: collects the keys it added or changed."""

    def __init__(self, before):
        super().__init__()
        self.before, self.keys = before, set()

    def _collect(self, logs):
        for key, value in (logs or {}).items():
            if key not in self.before.seen or self.before.seen[key] is not value:
                self.keys.add(key)

    def on_train_batch_end(self, batch, logs=None):
        self._collect(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._collect(logs)


def _model(name, **kwargs):
    inputs, outputs = mlp()
    model = getattr(models, name)(inputs, outputs, epsilon=0.1, seed=0,
                                  **{**MODELS[name], **kwargs})
    model.compile(**compile_kwargs())
    return model


def _metric_names(name, x, y):
    """The keys a model logs itself (training and validation), and its metrics' names."""
    model = _model(name)
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0,
                        validation_data=(x[:32], y[:32]))
    return set(history.history) | {m.name for m in model.metrics}


def _written_keys(callback, x, y):
    """The keys `callback` adds to (or changes in) the batch and epoch logs of a fit."""
    model = _model("ZeroGradModel")
    before = _Snapshot()
    written = _Written(before)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0,
              callbacks=[before, callback, written])
    return written.keys


@pytest.mark.slow
def test_no_callback_key_equals_a_model_metric(tmp_path):
    x, y = robustness_problem(64)
    found = _callbacks(x[:32], y[:32], tmp_path)
    assert set(found) == set(callbacks.__all__)
    assert set(MODELS) == set(models.__all__) - {"AdversarialModel"}
    metrics = {name: _metric_names(name, x, y) for name in MODELS}
    assert "gradient_alignment" in metrics["GradAlignModel"]
    written = {name: _written_keys(callback, x, y) for name, callback in found.items()}
    assert written["CatastrophicOverfittingMonitor"] and written["AdversarialDiagnostics"]
    for callback, keys in written.items():
        for model, names in metrics.items():
            assert not keys & names, f"{callback} writes {model}'s {sorted(keys & names)}"
        # Each writes under its own prefix, which no Keras metric name has.
        assert all("/" in key for key in keys), (callback, keys)


def _gradalign_history(diagnostics, initial_weights):
    x, y = robustness_problem(128)
    model = _model("GradAlignModel")
    model.set_weights(initial_weights)
    extra = [zg.AdversarialDiagnostics(x[:32], y[:32], diagnostics, pgd_steps=1)
             ] if diagnostics else []
    return model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=extra).history


def test_diagnostics_leave_gradalign_s_own_metric_alone(tmp_path):
    weights = _model("GradAlignModel").get_weights()
    alone = _gradalign_history(None, weights)
    watched = _gradalign_history(str(tmp_path), weights)
    assert watched["gradient_alignment"] == pytest.approx(alone["gradient_alignment"],
                                                          abs=1e-6)
    # The diagnostics' own measurement is there too, under its own name.
    assert len(watched["diagnostics/inference_gradient_alignment"]) == 2


class _Occupy(keras.callbacks.Callback):
    """Puts `key` in the epoch logs, as a model metric of that name would."""

    def __init__(self, key):
        super().__init__()
        self.key = key

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = -1.0


@pytest.mark.parametrize("key", ["co_monitor/pgd_accuracy",
                                 "diagnostics/inference_gradient_alignment"])
def test_a_callback_refuses_to_overwrite_a_key_already_in_the_logs(tmp_path, key):
    x, y = robustness_problem(64)
    found = _callbacks(x[:32], y[:32], tmp_path)
    callback = found[("CatastrophicOverfittingMonitor" if key.startswith("co_")
                      else "AdversarialDiagnostics")]
    model = _model("FGSMModel")
    with pytest.raises(ValueError, match=f"'{key}' is in the logs already"):
        model.fit(x, y, batch_size=32, epochs=1, verbose=0,
                  callbacks=[_Occupy(key), callback])


def test_prefixed_keys_reach_history_csv_history_json_and_tensorboard(tmp_path):
    import csv
    import json
    import os

    import tensorflow as tf

    x, y = robustness_problem(64)
    measured = {"clean_accuracy": 0.9, "fgsm_accuracy": 0.5, "pgd_accuracy": 0.25}
    monitor = zg.CatastrophicOverfittingMonitor(measure=lambda model: measured, verbose=0)
    model = _model("FGSMModel")
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0, validation_data=(x, y),
                        callbacks=[monitor,
                                   callbacks.HistoryWriter(str(tmp_path / "history.json")),
                                   keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
                                   keras.callbacks.TensorBoard(str(tmp_path / "tb"))])
    key = "co_monitor/pgd_accuracy"
    assert history.history[key] == [0.25, 0.25]
    assert json.loads((tmp_path / "history.json").read_text())[key] == [0.25, 0.25]
    with open(tmp_path / "log.csv") as f:
        assert [float(row[key]) for row in csv.DictReader(f)] == [0.25, 0.25]
    # With the training scalars (not mistaken for validation ones), as `epoch_<key>`.
    tags = {}
    for run in ("train", "validation"):
        folder = tmp_path / "tb" / run
        tags[run] = {v.tag for name in os.listdir(folder)
                     for e in tf.compat.v1.train.summary_iterator(str(folder / name))
                     for v in e.summary.value}
    assert "epoch_co_monitor/pgd_accuracy" in tags["train"]
    assert not any("co_monitor" in tag for tag in tags["validation"])
