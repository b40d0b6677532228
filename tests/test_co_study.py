"""benchmarks/co_study.py: a killed run resumes to the record the uninterrupted run
writes; its documented command lines parse."""

import importlib.util
import json
import os

import pytest

import zerograd_tf
from conftest import make_npz
from zerograd_tf.benchmarking.epoch_monitor import EpochMonitor
from zerograd_tf.benchmarking.partial_run import PartialRun

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What may differ between a resumed run and the uninterrupted one.
TIMINGS = {"epoch_seconds", "mean_epoch_seconds", "seconds", "date", "machine",
           "resumed_after_epochs"}


class Killed(Exception):
    """Stands for the process being killed."""


@pytest.fixture(scope="module")
def co_study():
    spec = importlib.util.spec_from_file_location(
        "co_study_program", os.path.join(ROOT, "benchmarks", "co_study.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(data, results, method):
    return ["--settings", "custom", "--dataset", data, "--methods", method, "--seeds", "1",
            "--monitor-size", "16", "--final-steps", "2", "--final-restarts", "1",
            "--final-apgd-steps", "3", "--final-square-queries", "10", "--no-plots",
            "--results", str(results), "--", "--epochs", "3", "--val-size", "16"]


def _record(results, method):
    with open(results / "custom" / f"{method}_seed0.json") as f:
        return json.load(f)


def _differences(a, b, path=""):
    """The paths at which two JSON values differ (timings ignored)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (set(a) | set(b)) - TIMINGS
        return [d for k in sorted(keys) for d in _differences(a.get(k), b.get(k), f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}/{i}")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"[:300]]


@pytest.mark.slow
def test_run_killed_in_training_resumes_to_the_uninterrupted_record(tmp_path, co_study,
                                                                    monkeypatch):
    data = make_npz(tmp_path / "tiny.npz", n_train=96, n_test=48)
    # zerograd_auto: its CO callback keeps state (checks, the quantile) too.
    method = "zerograd_auto"
    assert co_study.main(_args(data, tmp_path / "whole", method)) == 0
    whole = _record(tmp_path / "whole", method)

    measured = EpochMonitor.on_epoch_end

    def killed_in_epoch_2(self, epoch, logs=None):
        measured(self, epoch, logs)
        if epoch == 1:  # after epoch 2's row is written, before its checkpoint
            raise Killed

    results = tmp_path / "resumed"
    monkeypatch.setattr(EpochMonitor, "on_epoch_end", killed_in_epoch_2)
    with pytest.raises(Killed):
        co_study.main(_args(data, results, method))
    partial = results / "custom" / "partial" / f"{method}_seed0"
    assert json.loads((partial / "epochs.json").read_text())[-1]["epoch"] == 2
    assert not (results / "custom" / f"{method}_seed0.json").exists()
    monkeypatch.undo()

    assert co_study.main(_args(data, results, method)) == 0
    resumed = _record(results, method)
    # Epoch 2 was trained and measured again from epoch 1's checkpoint.
    assert resumed["resumed_after_epochs"] == [1] and "resumed_after_epochs" not in whole
    assert [r["epoch"] for r in resumed["epochs"]] == [1, 2, 3]
    assert resumed["co_monitor"][0]["checks"] == 3
    assert _differences(resumed, whole) == []
    assert not partial.exists()


@pytest.mark.slow
def test_run_killed_in_evaluation_keeps_its_training_and_finished_evaluations(
        tmp_path, co_study, monkeypatch):
    data = make_npz(tmp_path / "tiny.npz", n_train=96, n_test=48)
    method = "fgsm_rs"
    assert co_study.main(_args(data, tmp_path / "whole", method)) == 0
    whole = _record(tmp_path / "whole", method)

    evaluate = zerograd_tf.evaluate_robustness
    calls = []

    def killed_in_autoattack(*args, **kwargs):
        calls.append(kwargs.get("attack", "pgd"))
        if "autoattack" in kwargs.get("attack", ()):
            raise Killed
        return evaluate(*args, **kwargs)

    results = tmp_path / "resumed"
    monkeypatch.setattr(zerograd_tf, "evaluate_robustness", killed_in_autoattack)
    with pytest.raises(Killed):
        co_study.main(_args(data, results, method))
    calls.clear()
    monkeypatch.setattr(EpochMonitor, "on_epoch_end", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.setattr(zerograd_tf, "evaluate_robustness",
                        lambda *a, **k: (calls.append(k.get("attack", "pgd")),
                                         evaluate(*a, **k))[1])
    assert co_study.main(_args(data, results, method)) == 0
    # No epoch trained again; only AutoAttack (the PGD evaluation was kept).
    assert calls == [["autoattack", "pgd"]]
    resumed = _record(results, method)
    assert resumed["resumed_after_epochs"] == [3]
    assert _differences(resumed, whole) == []


def test_partial_run_of_another_configuration_starts_afresh(tmp_path, capsys):
    folder = tmp_path / "run"
    first = PartialRun(str(folder), {"config": {"seed": 0}})
    first.evaluation("final", lambda: {"robust_accuracy": 0.25})
    (folder / "epochs.json").write_text(json.dumps([{"epoch": 1}, {"epoch": 2}]))
    again = PartialRun(str(folder), {"config": {"seed": 0}})
    assert again.rows(1) == [{"epoch": 1}] and again.rows(5) == [{"epoch": 1}, {"epoch": 2}]
    other = PartialRun(str(folder), {"config": {"seed": 1}})
    assert "another configuration" in capsys.readouterr().err
    assert other.rows(5) == [] and other.resumes == []
    assert other.evaluation("final", lambda: {"robust_accuracy": 0.5}) == {
        "robust_accuracy": 0.5}
    other.finish()
    assert not folder.exists()


def _documented_commands(text):
    """The `python benchmarks/co_study.py ...` command lines of a text
    (continuation lines joined, comments dropped)."""
    commands, current = [], None
    for line in text.splitlines():
        line = line.split("  #")[0].strip()
        if current is None and line.startswith("python benchmarks/co_study.py"):
            current = line
        elif current is not None:
            current += " " + line
        if current is not None and not current.endswith("\\"):
            commands.append(current.replace("\\ ", " "))
            current = None
        elif current is not None:
            current = current[:-1]
    return commands


def test_the_documented_study_commands_parse(co_study):
    import shlex

    texts = [co_study.__doc__, open(os.path.join(ROOT, "docs", "study.md")).read()]
    commands = [c for text in texts for c in _documented_commands(text)]
    assert any("preact_resnet18" in c for c in commands) and len(commands) >= 6
    for command in commands:
        words = shlex.split(command)[2:]
        if "my_study.json" in words:  # the reader's own plan file
            continue
        try:
            co_study.parse(words)
        except SystemExit as error:
            pytest.fail(f"{command!r} does not parse (exit {error.code})")
