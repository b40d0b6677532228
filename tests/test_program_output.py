"""What the programs and the Python API print, and where: results on standard
output, progress and banners on standard error; `--help` and option errors
without TensorFlow; plain Python numbers in reports."""

import importlib
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import zerograd_tf as zg
from zerograd_tf._programs import PROGRAMS
from zerograd_tf.trainers import evaluate as eval_program
from zerograd_tf.trainers import train as train_program
from zerograd_tf.runs.config import RunConfig
from conftest import make_npz, small_cnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("tensorflow", "keras", "keras_tuner")


def _imported(stderr):
    """The top-level modules that `python -X importtime` reports."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_help_and_option_errors_answer_without_tensorflow(program):
    module = PROGRAMS[program]
    error_args = ["model.keras"] if program == "zerograd-eval" else []
    # TF_CPP_MIN_LOG_LEVEL=0: a program would otherwise mute standard error,
    # and -X importtime's lines with it, while TensorFlow is imported.
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "0"}
    for args, status in ((["--help"], 0), ([*error_args, "--epsilon", "-1"], 2),
                         ([*error_args, "--batch-size", "0"], 2)):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", module, *args],
                                capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == status, (args, result.stderr[-2000:])
        imported = _imported(result.stderr)
        assert "zerograd_tf.runs.options" in imported, result.stderr[-2000:]
        assert not [m for m in HEAVY if m in imported], (args, sorted(imported))
        if status == 0:
            assert f"usage: {program}" in result.stdout
        else:
            assert f"{program}: error:" in result.stderr and not result.stdout


def test_eval_defaults_to_the_final_evaluation_of_train():
    evaluated = eval_program.build_parser().parse_args(["model.keras"]).attack
    trained = train_program.build_parser().parse_args([]).eval_attack
    tune_program = importlib.import_module("zerograd_tf.tuning.search")
    tuned = tune_program.build_parser().parse_args([]).eval_attack
    assert evaluated == trained == tuned == RunConfig().eval_attack == "autoattack"
    assert "PGD-k-r" not in eval_program.build_parser().description


def _tiny_model(tmp_path):
    inputs, outputs = small_cnn((12, 12, 1), classes=3)
    model = zg.ZeroGradModel(inputs, outputs, epsilon=0.1)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"])
    path = str(tmp_path / "model.keras")
    model.save(path)
    return model, path


def _assert_python_numbers(value, where="report"):
    if isinstance(value, dict):
        for key, item in value.items():
            _assert_python_numbers(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _assert_python_numbers(item, f"{where}[{index}]")
    else:
        assert type(value) in (float, int, bool, str, type(None)), (where, type(value))


@pytest.mark.parametrize("attack", ["pgd", ["pgd", "apgd-ce"]])
def test_evaluate_robustness_reports_plain_python_numbers(tmp_path, attack):
    model, _ = _tiny_model(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(20, 12, 12, 1)).astype("float32")
    y = np.arange(20) % 3
    report = zg.evaluate_robustness(model, (x, y), 0.1, steps=2, restarts=1, apgd_steps=2,
                                    attack=attack, verbose=0)
    _assert_python_numbers(report)
    assert type(report["clean_accuracy"]) is float and type(report["num_examples"]) is int
    assert "np." not in repr(report)


@pytest.mark.parametrize("verbose", [1, 2])
def test_each_attack_shows_one_progress_bar_that_ends_once(tmp_path, capsys, verbose):
    """verbose=2 (a line per attack, for logs) printed each attack's final
    line twice: once when the bar reached its target, once when finalized."""
    model, _ = _tiny_model(tmp_path)
    x = np.random.default_rng(0).uniform(size=(20, 12, 12, 1)).astype("float32")
    y = np.arange(20) % 3
    zg.evaluate_robustness(model, (x, y), 0.1, steps=2, restarts=2, apgd_steps=2,
                           attack=["apgd-ce", "pgd"], verbose=verbose)
    out = capsys.readouterr().out.replace("\r", "\n").replace("\x08", "")
    finals = [line for line in out.splitlines() if "robust_acc" in line and "/step" in line]
    if verbose == 2:
        assert len(finals) == 2, out
    assert out.count("PGD-2-2") == 1 and out.count("APGD-CE-2") == 1


def test_attack_meter_reports_plain_python_numbers(tmp_path):
    from zerograd_tf import monitoring

    model, _ = _tiny_model(tmp_path)
    x = np.random.default_rng(0).uniform(size=(8, 12, 12, 1)).astype("float32")
    accuracies = monitoring.AttackMeter(model, 0.1, pgd_steps=2)(x, np.arange(8) % 3)
    _assert_python_numbers(accuracies)
    assert "np." not in repr(accuracies)


@pytest.mark.slow
def test_eval_json_to_standard_output_and_progress_to_standard_error(tmp_path, capsys,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = make_npz(tmp_path / "tiny.npz", n_test=20)
    _, path = _tiny_model(tmp_path)
    assert eval_program.main([path, "--dataset", data, "--attack", "pgd,apgd-ce",
                              "--steps", "2", "--restarts", "1", "--apgd-steps", "2",
                              "--json", "-", "--verbose", "1"]) == 0
    printed = capsys.readouterr()
    report = json.loads(printed.out)
    assert [e["label"] for e in report["attacks"]] == ["PGD-2-1", "APGD-CE-2"]
    # Each attack's progress bar is labelled, on standard error with the table.
    assert "PGD-2-1" in printed.err and "APGD-CE-2" in printed.err
    assert "robust accuracy" in printed.err
    assert not (tmp_path / "-").exists()


@pytest.mark.slow
def test_train_prints_only_its_report_on_standard_output(tmp_path, capsys):
    data = make_npz(tmp_path / "tiny.npz")
    out = tmp_path / "run"
    assert train_program.main(["--dataset", data, "--output", str(out), "--epochs", "1",
                               "--batch-size", "32", "--val-size", "32", "--val-pgd-steps",
                               "2", "--val-pgd-size", "32", "--eval-steps", "2",
                               "--eval-restarts", "1", "--eval-attack", "pgd",
                               "--verbose", "1"]) == 0
    printed = capsys.readouterr()
    assert printed.out.splitlines()[0].startswith("PGD-2-1 at epsilon=0.1 on 48 test examples")
    assert "━" not in printed.out and "step" not in printed.out
    assert "accuracy" in printed.err and "━" in printed.err  # fit's progress
    assert "final evaluation" in printed.err
    assert "PGD-2-1" in printed.err  # the evaluation's progress bar


def test_the_eval_table_gives_pgd_its_step_size_in_the_label():
    from zerograd_tf.trainers import evaluate as evaluate_program

    def entry(name, label):
        return {"name": name, "label": label, "robust_accuracy": 0.5, "num_attacked": 8,
                "num_broken": 2, "seconds": 1.0}

    report = {"model": "m.keras", "dataset": "d.npz", "split": "test", "num_examples": 10,
              "epsilon": 0.1, "alpha": 0.025, "precision": "float32", "clean_accuracy": 0.8,
              "robust_accuracy": 0.5, "clean_loss": 0.4, "robust_loss": 1.2, "seconds": 2.0,
              "attacks": [entry("pgd", "PGD-50-10"), entry("apgd-ce", "APGD-CE-100")]}
    rows = evaluate_program.format_table(report).splitlines()
    pgd = next(r for r in rows if r.startswith("after PGD"))
    apgd = next(r for r in rows if r.startswith("after APGD"))
    assert pgd.startswith("after PGD-50-10 (alpha 0.025)")
    assert pgd.endswith("broken, 1.0 s)") and apgd.endswith("broken, 1.0 s)")
    # The values line up: the same column for every row.
    assert pgd.index("0.5000") == apgd.index("0.5000")
