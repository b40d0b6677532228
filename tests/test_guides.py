"""Every guide under docs/guides/ runs as written: its ```python blocks,
concatenated in order, in one fresh Python process (a guide may configure
devices before TensorFlow starts), with the working directory in tmp_path."""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUIDES = ROOT / "docs" / "guides"
GUIDE_NAMES = ["robust_training.md", "choosing_a_method.md", "evaluating_robustness.md",
               "tuning.md", "several_devices.md"]
RESULT = "GUIDE-RESULT "


def guide_code(name):
    """The guide's ```python blocks, concatenated in order."""
    blocks = re.findall(r"```python\n(.*?)```", (GUIDES / name).read_text(), flags=re.S)
    assert blocks, f"{name} has no python blocks"
    return "\n".join(blocks)


def run_guide(name, tmp_path, *expressions):
    """Runs a guide; returns the values of `expressions` evaluated after it."""
    epilogue = (f"\nimport json as _json\nprint({RESULT!r} + _json.dumps("
                f"{{_e: eval(_e) for _e in {list(expressions)!r}}}, default=float))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "tensorflow",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", guide_code(name) + epilogue], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(RESULT)]
    return json.loads(line[len(RESULT):])


def test_every_guide_is_tested_and_in_the_nav():
    assert sorted(p.name for p in GUIDES.glob("*.md")) == sorted(GUIDE_NAMES)
    nav = (ROOT / "mkdocs.yml").read_text()
    assert all(f"guides/{name}" in nav for name in GUIDE_NAMES)


def _check_report(report):
    assert 0 <= report["robust_accuracy"] <= report["clean_accuracy"] <= 1


@pytest.mark.slow  # 20-45 s on 2 busy CPUs
def test_robust_training_guide(tmp_path):
    values = run_guide("robust_training.md", tmp_path, "report")
    _check_report(values["report"])
    assert (tmp_path / "zerograd.keras").exists()


@pytest.mark.slow  # 20-45 s on 2 busy CPUs
def test_choosing_a_method_guide(tmp_path):
    values = run_guide("choosing_a_method.md", tmp_path, "history.history['co_monitor/detected']",
                       "float(auto.quantile)")
    assert len(values["history.history['co_monitor/detected']"]) >= 1
    assert 0.349 <= values["float(auto.quantile)"] <= 0.851
    assert any((tmp_path / "logs" / "diagnostics").iterdir())


@pytest.mark.slow
def test_evaluating_robustness_guide(tmp_path):
    values = run_guide("evaluating_robustness.md", tmp_path, "report")
    report = values["report"]
    _check_report(report)
    assert [a["name"] for a in report["attacks"]] == ["pgd", "apgd-ce", "apgd-t", "square"]
    assert report["square_only_broken"] >= 0


@pytest.mark.slow  # 20-45 s on 2 busy CPUs
def test_tuning_guide(tmp_path):
    values = run_guide("tuning.md", tmp_path, "best.values")
    assert 0.2 <= values["best.values"]["quantile"] <= 0.9
    assert (tmp_path / "tuning_runs" / "guide" / "best_hyperparameters.json").exists()


@pytest.mark.slow  # 20-45 s on 2 busy CPUs
def test_several_devices_guide(tmp_path):
    values = run_guide("several_devices.md", tmp_path, "strategy.num_replicas_in_sync",
                       "report", "history.history['loss']")
    assert values["strategy.num_replicas_in_sync"] >= 2
    _check_report(values["report"])
    assert np.isfinite(values["history.history['loss']"]).all()


def test_the_precision_pages_example_runs():
    """docs/precision.md's example (the only page outside the guides with
    Python) builds what it says: bfloat16 layers, float32 logits."""
    (block,) = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "precision.md").read_text(),
                          flags=re.S)
    namespace = {}
    exec(compile(block, "docs/precision.md", "exec"), namespace)
    policies = {layer.name: layer.dtype_policy.name
                for layer in namespace["classifier"].layers if layer.weights}
    assert policies.pop("logits") == "float32"
    assert set(policies.values()) == {"mixed_bfloat16"}
    assert namespace["model"].dtype_policy.name == "mixed_bfloat16"
