import csv
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny_npz(path):
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (120, 12, 12, 1), dtype=np.uint8),
             y_train=rng.integers(0, 3, 120),
             x_test=rng.integers(0, 256, (32, 12, 12, 1), dtype=np.uint8),
             y_test=rng.integers(0, 3, 32))
    return str(path)


def _run(script, *args):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_co_study_runs_and_resumes(tmp_path):
    data = _tiny_npz(tmp_path / "tiny.npz")
    results = tmp_path / "results"
    args = ["--settings", "custom", "--dataset", data, "--methods", "fgsm_rs",
            "zerograd_q0.35", "--seeds", "1", "--monitor-size", "16", "--final-steps", "2",
            "--final-restarts", "1", "--results", str(results), "--", "--epochs", "2",
            "--val-size", "16"]
    out = _run("co_study.py", *args)
    assert "| zerograd_q0.35 | 1 | 0/1 |" in out or "| zerograd_q0.35 | 1 | 1/1 |" in out
    with open(results / "epochs.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["setting", "method", "seed", "epoch", "train_loss",
                             "train_accuracy", "clean_accuracy", "fgsm_accuracy",
                             "pgd_accuracy", "epoch_seconds"]
    assert len(rows) == 4 and {r["method"] for r in rows} == {"fgsm_rs", "zerograd_q0.35"}
    with open(results / "runs.csv") as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == 2 and "catastrophic_overfitting" in runs[0]
    assert (results / "pgd_per_epoch_custom.png").stat().st_size > 0
    assert (results / "robustness_vs_cost_custom.png").stat().st_size > 0
    record_path = results / "custom" / "fgsm_rs_seed0.json"
    record = json.loads(record_path.read_text())
    assert record["config"]["method"] == "fgsm_rs" and len(record["epochs"]) == 2
    # Restarting skips finished runs (their files are left untouched).
    stamp = record_path.stat().st_mtime_ns
    _run("co_study.py", *args)
    assert record_path.stat().st_mtime_ns == stamp


def test_step_time_runs(tmp_path):
    output = tmp_path / "step_time.json"
    out = _run("step_time.py", "--models", "small_cnn", "--methods", "clean", "fgsm_rs",
               "zerograd_bisect", "--jit", "both", "--batch-size", "8", "--steps", "2",
               "--warmup", "1", "--quantile-repeats", "2", "--quantile-shapes", "4x64",
               "--output", str(output))
    report = json.loads(output.read_text())
    assert [(e["model"], e["jit"]) for e in report["steps"]] == [("small_cnn", False),
                                                                 ("small_cnn", True)]
    for entry in report["steps"]:
        assert set(entry["ms"]) == {"clean", "fgsm_rs", "zerograd_bisect"}
        assert all(v > 0 for v in entry["ms"].values())
        if not entry["jit"]:
            assert all(v and v > 0 for v in entry["peak_rss_mib"].values())
    assert {(r["method"], r["jit"]) for r in report["quantile"]} == {
        (m, j) for m in ("bisect", "sort", "top_k") for j in (False, True)}
    assert "| zerograd_bisect |" in out and "× FGSM-RS" in report["markdown"]
