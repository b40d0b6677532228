"""benchmarks/co_study.py: a killed run resumes to the record the uninterrupted run
writes; its documented command lines parse."""

import glob
import importlib.util
import json
import os
import re

import pytest

import zerograd_tf
from conftest import make_npz
from zerograd_tf.benchmarking.epoch_monitor import EpochMonitor
from zerograd_tf.benchmarking import partial_run
from zerograd_tf.benchmarking.partial_run import PartialRun
from zerograd_tf.callbacks.co_monitor import CatastrophicOverfittingMonitor
from zerograd_tf.evaluation.backup import EvaluationBackup
from zerograd_tf.runs.options import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What may differ between a resumed run and the uninterrupted one.
TIMINGS = {"epoch_seconds", "mean_epoch_seconds", "seconds", "date", "machine", "processes"}


class Killed(Exception):
    """Stands for the process being killed."""


@pytest.fixture(scope="module")
def co_study():
    spec = importlib.util.spec_from_file_location(
        "co_study_program", os.path.join(ROOT, "benchmarks", "co_study.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(data, results, method, *extra):
    return ["--settings", "custom", "--dataset", data, "--methods", method, "--seeds", "1",
            "--monitor-size", "16", "--final-steps", "2", "--final-restarts", "1",
            "--final-apgd-steps", "3", "--final-square-queries", "10", "--no-plots",
            "--results", str(results), *extra, "--", "--epochs", "3", "--val-size", "16"]


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


@pytest.fixture
def collapse_at_second_check(monkeypatch):
    """Every CO callback judges its second check a collapse (keyed by the
    checks it keeps, so a resumed run sees the same): a CO event in a tiny run."""
    judge = CatastrophicOverfittingMonitor._judge
    monkeypatch.setattr(CatastrophicOverfittingMonitor, "_judge",
                        lambda self, check: len(self.checks) == 1 or judge(self, check))


@pytest.mark.slow
@pytest.mark.parametrize("recipe", [
    [], ["--precision", "mixed_bfloat16"],
    # The PreAct ResNet-18 setting's recipe: SGD, a cyclic rate, augmentation.
    ["--optimizer", "sgd", "--lr-schedule", "cyclic", "--lr-max", "0.1", "--weight-decay",
     "5e-4", "--augment"]], ids=["float32", "mixed_bfloat16", "sgd_cyclic_augment"])
def test_run_killed_in_training_resumes_to_the_uninterrupted_record(
        tmp_path, co_study, monkeypatch, collapse_at_second_check, recipe):
    data = make_npz(tmp_path / "tiny.npz", n_train=96, n_test=48)
    # zerograd_auto: its CO callback keeps state (checks, the quantile) too,
    # and adapts at the end of epoch 2 (restoring epoch 1's weights).
    method = "zerograd_auto"

    def args(results):
        return _args(data, results, method) + recipe

    assert co_study.main(args(tmp_path / "whole")) == 0
    whole = _record(tmp_path / "whole", method)
    assert [e["epoch"] for e in whole["co_monitor"][0]["events"]] == [1]
    assert whole["final_quantile"] == pytest.approx(0.45)

    measured = EpochMonitor.on_epoch_end

    def killed_in_epoch_2(self, epoch, logs=None):
        measured(self, epoch, logs)
        if epoch == 1:  # after epoch 2's row is written, before its checkpoint
            raise Killed

    results = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        patch.setattr(EpochMonitor, "on_epoch_end", killed_in_epoch_2)
        with pytest.raises(Killed):
            co_study.main(args(results))
    partial = results / "custom" / "partial" / f"{method}_seed0"
    assert json.loads((partial / "epochs.json").read_text())[-1]["epoch"] == 2
    assert not (results / "custom" / f"{method}_seed0.json").exists()

    assert co_study.main(args(results)) == 0
    resumed = _record(results, method)
    assert resumed["config"]["precision"] == ("mixed_bfloat16" if "--precision" in recipe
                                              else "float32")
    assert resumed["config"]["augment"] == ("--augment" in recipe)
    # Epoch 2 was trained and measured again from epoch 1's checkpoint.
    assert [p["from_epoch"] for p in resumed["processes"]] == [0, 1]
    assert "processes" not in whole
    assert [r["epoch"] for r in resumed["epochs"]] == [1, 2, 3]
    assert resumed["co_monitor"][0]["checks"] == 3
    assert _differences(resumed, whole) == []
    assert not partial.exists() and not list(partial.parent.iterdir())


@pytest.mark.slow
def test_run_killed_in_evaluation_keeps_its_training_and_finished_evaluations(
        tmp_path, co_study, monkeypatch, collapse_at_second_check):
    data = make_npz(tmp_path / "tiny.npz", n_train=96, n_test=48)
    # Early stopping stops this run at the end of epoch 2: its resume must
    # not train epoch 3.
    method = "fgsm_rs_early_stop"
    assert co_study.main(_args(data, tmp_path / "whole", method)) == 0
    whole = _record(tmp_path / "whole", method)
    assert len(whole["epochs"]) == 2 and whole["co_monitor"][0]["events"][0]["action"] == "stop"

    evaluate = zerograd_tf.evaluation.evaluate_robustness
    calls = []

    def killed_in_autoattack(*args, **kwargs):
        calls.append(kwargs.get("attack", "pgd"))
        if "autoattack" in kwargs.get("attack", ()):
            raise Killed
        return evaluate(*args, **kwargs)

    results = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        patch.setattr(zerograd_tf.evaluation, "evaluate_robustness", killed_in_autoattack)
        with pytest.raises(Killed):
            co_study.main(_args(data, results, method))
    calls.clear()
    with monkeypatch.context() as patch:
        patch.setattr(EpochMonitor, "on_epoch_end", lambda *a, **k: pytest.fail("trained"))
        patch.setattr(zerograd_tf.evaluation, "evaluate_robustness",
                      lambda *a, **k: (calls.append(k.get("attack", "pgd")), evaluate(*a, **k))[1])
        assert co_study.main(_args(data, results, method)) == 0
    # No epoch trained again; only AutoAttack (the PGD evaluation was kept).
    assert calls == [["autoattack", "pgd"]]
    resumed = _record(results, method)
    assert [p["from_epoch"] for p in resumed["processes"]] == [0, 2]
    assert _differences(resumed, whole) == []


@pytest.mark.slow
def test_run_killed_within_autoattack_continues_after_its_last_finished_stage(
        tmp_path, co_study, monkeypatch):
    data = make_npz(tmp_path / "tiny.npz", n_train=96, n_test=48)
    method = "fgsm_rs"
    assert co_study.main(_args(data, tmp_path / "whole", method)) == 0
    whole = _record(tmp_path / "whole", method)

    save = EvaluationBackup.save
    saves, kills = [], []

    def killed_after_apgd_ce(self, **progress):
        save(self, **progress)
        saves.append((os.path.basename(self.path), progress["member"], progress["stage"]))
        # Once, when APGD-CE (AutoAttack's first member) has finished.
        if "autoattack" in self.path and progress["member"] == 1 and not kills:
            kills.append(progress)
            raise Killed

    results = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        patch.setattr(EvaluationBackup, "save", killed_after_apgd_ce)
        with pytest.raises(Killed):
            co_study.main(_args(data, results, method))
        partial = results / "custom" / "partial" / f"{method}_seed0"
        (backup,) = partial.glob("evaluation_autoattack.*.progress.json")
        saves.clear()
        assert co_study.main(_args(data, results, method)) == 0
    # The PGD evaluation was kept, and AutoAttack went on from APGD-T.
    assert saves[0] == (backup.name, 1, 1)
    resumed = _record(results, method)
    assert _differences(resumed, whole) == []
    assert not partial.exists()


@pytest.mark.slow
def test_an_unfinished_run_of_another_configuration_is_refused_and_kept(
        tmp_path, co_study, monkeypatch, capsys):
    data = make_npz(tmp_path / "tiny.npz", n_train=96, n_test=48)
    results = tmp_path / "results"
    with monkeypatch.context() as patch:
        patch.setattr(EpochMonitor, "on_epoch_end", lambda *a, **k: (_ for _ in ()).throw(Killed))
        with pytest.raises(Killed):
            co_study.main(_args(data, results, "fgsm_rs"))
    partial = results / "custom" / "partial" / "fgsm_rs_seed0"
    before = sorted(p.name for p in partial.iterdir())
    capsys.readouterr()
    # Other training (the epochs) is refused in one line, the folder kept;
    # another final evaluation is not another run.
    other = _args(data, results, "fgsm_rs")[:-4] + ["--epochs", "2", "--val-size", "16"]
    assert co_study.main(other) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "differs in: config.epochs" in error
    assert sorted(p.name for p in partial.iterdir()) == before
    assert co_study.main(_args(data, results, "fgsm_rs", "--final-steps", "3")) == 0
    assert _record(results, "fgsm_rs")["final"]["steps"] == 3
    assert not partial.exists()
    # Progress on standard error (each epoch, each final evaluation), the
    # tables alone on standard output.
    out, err = capsys.readouterr()
    assert out.startswith("**Setting: custom**") and "seed 0" not in out
    assert "custom fgsm_rs seed 0: epoch 3/3: clean " in err
    assert "custom fgsm_rs seed 0: final evaluation (autoattack)" in err


def test_partial_run_keeps_evaluations_per_options_and_refuses_foreign_folders(tmp_path):
    folder = tmp_path / "partial" / "run"
    with partial_run.lock(str(folder)):
        # Locked while in use, against this process too.
        with pytest.raises(UsageError, match="in use"):
            partial_run.lock(str(folder))
        first = PartialRun(str(folder), {"config": {"seed": 0}})
        assert first.evaluation("final", {"steps": 2}, lambda: {"robust_accuracy": 0.25}) == {
            "robust_accuracy": 0.25}
    again = PartialRun(str(folder), {"config": {"seed": 0}})
    assert again.evaluation("final", {"steps": 2}, lambda: 1 / 0) == {"robust_accuracy": 0.25}
    assert again.evaluation("final", {"steps": 3}, lambda: {"robust_accuracy": 0.5}) == {
        "robust_accuracy": 0.5}
    with pytest.raises(UsageError, match=r"another configuration \(differs in: config.seed\)"):
        PartialRun(str(folder), {"config": {"seed": 1}})
    (folder / "identity.json").unlink()
    with pytest.raises(UsageError, match="without identity.json"):
        PartialRun(str(folder), {"config": {"seed": 0}})
    assert (folder / "evaluation_final.json").exists() and partial_run.unfinished(str(folder))
    # What a kill leaves of an interrupted removal is cleared by the next one.
    (tmp_path / "partial" / ".removing-x" / "run").mkdir(parents=True)
    partial_run.remove(str(folder))
    assert os.listdir(tmp_path / "partial") == []


def test_a_folder_left_by_a_killed_first_write_is_a_fresh_run(tmp_path):
    """A real kill during the first write of identity.json leaves only its
    temporary file (an exception would have removed it)."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "identity.tmp.json").write_text('{"conf')
    assert not partial_run.unfinished(str(folder))
    run = PartialRun(str(folder), {"config": {"seed": 0}})
    assert os.listdir(folder) == ["identity.json"] and run.processes == []


@pytest.mark.slow
def test_a_run_another_process_works_on_is_refused_in_one_line(tmp_path, co_study, capsys):
    data = make_npz(tmp_path / "tiny.npz", n_train=96, n_test=48)
    results = tmp_path / "results"
    folder = results / "custom" / "partial" / "fgsm_rs_seed0"
    with partial_run.lock(str(folder)):  # as another process would hold it
        assert co_study.main(_args(data, results, "fgsm_rs")) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "in use by another co_study run" in error[0], error
    assert not (results / "custom" / "fgsm_rs_seed0.json").exists()


def _documented_commands(text):
    """The `python benchmarks/co_study.py ...` command lines of a text: in
    code blocks (continuation lines joined, comments dropped) and inline
    (between backticks, possibly over several lines)."""
    inline = [" ".join(c.split()) for c in
              re.findall(r"`(python benchmarks/co_study\.py[^`]*)`", text)]
    commands, current = inline, None
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

    docs = glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)
    texts = [co_study.__doc__, *(open(path).read() for path in docs),
             open(os.path.join(ROOT, "README.md")).read()]
    commands = [c for text in texts for c in _documented_commands(text)]
    assert any("preact_resnet18" in c for c in commands) and len(commands) >= 8
    for command in commands:
        words = [w for w in shlex.split(command)[2:] if w != "..."]
        if "my_study.json" in words:  # the reader's own plan file
            continue
        try:
            co_study.parse(words)
        except SystemExit as error:
            pytest.fail(f"{command!r} does not parse (exit {error.code})")
