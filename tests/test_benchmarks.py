import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import make_npz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script, *args):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_co_study_runs_and_resumes(tmp_path):
    data = make_npz(tmp_path / "tiny.npz", n_train=120, n_test=32)
    results = tmp_path / "results"
    args = ["--settings", "custom", "--dataset", data, "--methods", "fgsm_rs",
            "zerograd_q0.35", "zerograd_auto", "--seeds", "1", "--monitor-size", "16", "--final-steps", "2",
            "--final-restarts", "1", "--final-apgd-steps", "5", "--final-square-queries", "20",
            "--results", str(results), "--", "--epochs", "2",
            "--val-size", "16"]
    out = _run("co_study.py", *args)
    assert "| zerograd_q0.35 | 1 | 0/1 |" in out or "| zerograd_q0.35 | 1 | 1/1 |" in out
    with open(results / "epochs.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["setting", "method", "seed", "epoch", "train_loss",
                             "train_accuracy", "clean_accuracy", "fgsm_accuracy",
                             "pgd_accuracy", "epoch_seconds"]
    assert len(rows) == 6 and {r["method"] for r in rows} == {"fgsm_rs", "zerograd_q0.35",
                                                              "zerograd_auto"}
    with open(results / "runs.csv") as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == 3 and "catastrophic_overfitting" in runs[0]
    auto = json.loads((results / "custom" / "zerograd_auto_seed0.json").read_text())
    # Its monitor checked the held-out split at every epoch end (2 epochs).
    assert auto["co_monitor"][0]["checks"] == 2 and auto["final_quantile"] >= 0.35 - 1e-6
    assert "zerograd_auto target (1 runs):" in out
    assert runs[0]["did_not_learn"] in ("True", "False")
    assert (results / "pgd_per_epoch_custom.png").stat().st_size > 0
    assert (results / "robustness_vs_cost_custom.png").stat().st_size > 0
    record_path = results / "custom" / "fgsm_rs_seed0.json"
    record = json.loads(record_path.read_text())
    assert record["config"]["method"] == "fgsm_rs" and len(record["epochs"]) == 2
    # The final evaluation: AutoAttack (3 classes: without APGD-T), then PGD.
    strongest = record["final_autoattack"]
    assert [e["name"] for e in strongest["attacks"]] == ["apgd-ce", "square", "pgd"]
    assert strongest["robust_accuracy"] <= record["final"]["robust_accuracy"]
    assert runs[0]["final_worst_case_accuracy"] == str(strongest["robust_accuracy"])
    assert (results / "custom" / "weights" / "fgsm_rs_seed0.weights.h5").stat().st_size > 0
    # Restarting skips finished runs (their files are left untouched).
    stamp = record_path.stat().st_mtime_ns
    _run("co_study.py", *args)
    assert record_path.stat().st_mtime_ns == stamp
    # --cost-only times the training of the same runs apart, and the
    # zerograd_auto target's cost comes from those runs from then on.
    cost_args = [a for a in args if a != "zerograd_q0.35"]
    out = _run("co_study.py", "--cost-only", *cost_args)
    cost = json.loads((results / "cost" / "custom" / "zerograd_auto_seed0.json").read_text())
    assert len(cost["epoch_seconds"]) == 2 and cost["mean_epoch_seconds"] > 0
    assert cost["co_monitor"][0]["checks"] == 2 and "cpus" in cost["machine"]
    assert "timed apart with --cost-only, 1 and 1 runs" in out
    assert record_path.stat().st_mtime_ns == stamp
    assert cost["config"]["method"] == "zerograd" and cost["config"]["epochs"] == 2
    # Timed again: the timings are kept, those without their config (written
    # before it was kept) too; a timing of another configuration is refused.
    cost_path = results / "cost" / "custom" / "fgsm_rs_seed0.json"
    legacy = json.loads(cost_path.read_text())
    del legacy["config"]
    cost_path.write_text(json.dumps(legacy))
    stamps = {p: p.stat().st_mtime_ns for p in (results / "cost" / "custom").iterdir()}
    _run("co_study.py", "--cost-only", *cost_args)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "co_study.py"),
                             "--cost-only", *cost_args, "--epochs", "3"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "another configuration" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_co_study_cost_only_can_time_the_first_epochs_of_a_run(tmp_path):
    # A run's epochs cost the same: on a slow network the first few (the
    # first traced, out of the mean) time its recipe at a fraction of the cost.
    data = make_npz(tmp_path / "tiny.npz", n_train=120, n_test=32)
    results = tmp_path / "results"
    args = ["--settings", "custom", "--dataset", data, "--methods", "fgsm_rs", "n_fgsm",
            "--seeds", "1", "--results", str(results), "--cost-only", "--cost-epochs", "2",
            "--", "--epochs", "4", "--val-size", "16"]
    _run("co_study.py", *args)
    cost = json.loads((results / "cost" / "custom" / "n_fgsm_seed0.json").read_text())
    assert cost["config"]["epochs"] == 4 and cost["epochs_timed"] == cost["cost_epochs"] == 2
    assert len(cost["epoch_seconds"]) == 2
    assert cost["mean_epoch_seconds"] == cost["epoch_seconds"][1]
    from zerograd_tf.benchmarking import study_records, study_tables

    costs = study_records.load_costs(str(results))
    ratio, source = study_tables.cost_ratio([], "n_fgsm", costs)
    assert ratio > 0 and source.startswith(
        "timed apart with --cost-only (the first 2 epochs), 1 and 1 runs, ")
    # Timings of whole runs say nothing more, also one that a CO monitor
    # stopped early, and those written before cost_epochs.
    whole = [{**c, "epochs_timed": 4, "cost_epochs": None} for c in costs]
    assert study_tables.cost_ratio([], "n_fgsm", whole)[1].startswith(
        "timed apart with --cost-only, 1 and 1 runs, ")
    for other in ([{**c, "cost_epochs": None} for c in costs],
                  [{k: v for k, v in c.items() if k != "cost_epochs"} for c in costs]):
        assert study_tables.cost_ratio([], "n_fgsm", other)[1] == study_tables.cost_ratio(
            [], "n_fgsm", whole)[1]
    mixed = [costs[0], {**costs[1], "cost_epochs": None}]
    assert "--cost-only (some over the first 2 epochs), 1 and 1 runs" in study_tables.cost_ratio(
        [], "n_fgsm", mixed)[1]
    # Timed again with another --cost-epochs (or none): timed anew, not mixed.
    path = results / "cost" / "custom" / "fgsm_rs_seed0.json"
    _run("co_study.py", *[a if a != "2" else "3" for a in args])
    assert json.loads(path.read_text())["epochs_timed"] == 3
    _run("co_study.py", *[a for a in args if a not in ("--cost-epochs", "2")])
    timed = json.loads(path.read_text())
    assert timed["epochs_timed"] == 4 and timed["cost_epochs"] is None
    for bad in ("1", "x"):
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "benchmarks", "co_study.py"),
             *[bad if a == "2" else a for a in args]],
            cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert result.returncode == 2 and "--cost-epochs" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_step_time_runs_and_merges_partial_runs(tmp_path):
    output = tmp_path / "step_time.json"
    common = ["--models", "small_cnn", "--methods", "clean", "fgsm_rs", "zerograd_bisect",
              "--batch-size", "8", "--steps", "2", "--warmup", "1", "--quantile-repeats", "2",
              "--quantile-shapes", "4x64", "--precisions", "float32", "--output", str(output)]
    _run("step_time.py", *common, "--jit", "off")
    first = json.loads(output.read_text())
    out = _run("step_time.py", *common, "--jit", "on", "--no-quantile", "--no-memory")
    report = json.loads(output.read_text())
    assert [(e["model"], e["jit"]) for e in report["steps"]] == [("small_cnn", False),
                                                                 ("small_cnn", True)]
    assert report["steps"][0] == first["steps"][0]  # kept, not re-measured
    assert report["quantile"] == first["quantile"]
    for entry in report["steps"]:
        assert set(entry["ms"]) == {"clean", "fgsm_rs", "zerograd_bisect"}
        assert all(v > 0 for v in entry["ms"].values())
    assert all(v and v > 0 for v in report["steps"][0]["peak_rss_mib"].values())
    assert {(r["method"], r["jit"]) for r in report["quantile"]} == {
        (m, j) for m in ("bisect", "sort", "top_k") for j in (False, True)}
    assert "| zerograd_bisect |" in out and "× FGSM-RS" in report["markdown"]
    # --memory-only refreshes the memory of the methods it is given, keeping every timing
    # and the other methods' memory.
    only_clean = [a for a in common if a not in ("fgsm_rs", "zerograd_bisect")]
    _run("step_time.py", *only_clean, "--jit", "off", "--memory-only", "--no-quantile")
    again = json.loads(output.read_text())
    assert [e["ms"] for e in again["steps"]] == [e["ms"] for e in report["steps"]]
    memory, before = again["steps"][0]["peak_rss_mib"], report["steps"][0]["peak_rss_mib"]
    assert set(memory) == {"clean", "fgsm_rs", "zerograd_bisect"} and memory["clean"] > 0
    assert {m: memory[m] for m in ("fgsm_rs", "zerograd_bisect")} == {
        m: before[m] for m in ("fgsm_rs", "zerograd_bisect")}
    # --replace re-measures the requested mode and keeps the other.
    _run("step_time.py", *common, "--jit", "off", "--replace", "--no-memory", "--no-quantile")
    replaced = json.loads(output.read_text())
    assert [(e["model"], e["jit"]) for e in replaced["steps"]] == [("small_cnn", False),
                                                                   ("small_cnn", True)]
    assert replaced["steps"][1] == again["steps"][1]
    assert replaced["steps"][0]["ms"] != again["steps"][0]["ms"]
    # ... also when the other entries were measured with other methods, and
    # it keeps the quantile and input-check sections.
    replaced["input_check"] = [{"shape": [8, 32, 32, 3], "ms_per_fit": 1.0}]
    output.write_text(json.dumps(replaced))
    fewer = [a for a in common if a != "zerograd_bisect"]
    _run("step_time.py", *fewer, "--jit", "on", "--replace", "--no-quantile", "--no-memory")
    last = json.loads(output.read_text())
    assert last["steps"][0] == replaced["steps"][0]
    assert set(last["steps"][1]["ms"]) == {"clean", "fgsm_rs"}
    assert last["quantile"] == replaced["quantile"]
    assert last["input_check"] == replaced["input_check"]


def test_step_time_interleaves_precisions_and_compares_them_to_float32(tmp_path):
    output = tmp_path / "step_time.json"
    common = ["--models", "small_cnn", "--methods", "clean", "fgsm_rs", "--jit", "off",
              "--batch-size", "4", "--steps", "1", "--warmup", "0", "--no-memory",
              "--no-quantile", "--output", str(output)]
    out = _run("step_time.py", *common, "--precisions", "float32", "mixed_bfloat16")
    report = json.loads(output.read_text())
    assert [(e["model"], e["jit"], e["precision"]) for e in report["steps"]] == [
        ("small_cnn", False, "float32"), ("small_cnn", False, "mixed_bfloat16")]
    for entry in report["steps"]:
        assert set(entry["ms"]) == {"clean", "fgsm_rs"} and all(
            v > 0 for v in entry["ms"].values())
        assert isinstance(entry["machine"]["bfloat16_units"], list)
    tables = report["markdown"].split("**small_cnn**")[1:]
    assert tables[0].startswith(", batch 4, jit_compile=False, float32")
    assert "× float32" not in tables[0]
    assert tables[1].startswith(", batch 4, jit_compile=False, mixed_bfloat16")
    f32, bf16 = (e["ms"]["fgsm_rs"] for e in report["steps"])
    row = next(line for line in tables[1].splitlines() if line.startswith("| fgsm_rs |"))
    assert "| × float32 |" in tables[1] and row.split(" | ")[4] == f"{bf16 / f32:.2f}"
    assert "mixed_bfloat16" in out and "× float32" in out


def test_step_time_times_every_precision_of_a_group_together(tmp_path):
    # An entry without a precision is float32; a group missing a precision
    # is measured again whole, so that "× float32" compares one session.
    output = tmp_path / "step_time.json"
    old = {"model": "small_cnn", "jit": False, "machine": {"cpus": 2},
           "ms": {"clean": 1000.0, "fgsm_rs": 2000.0}}
    output.write_text(json.dumps({"batch_size": 4, "timed_steps": 1, "steps": [old],
                                  "quantile": []}))
    _run("step_time.py", "--models", "small_cnn", "--methods", "clean", "fgsm_rs", "--jit",
         "off", "--batch-size", "4", "--steps", "1", "--warmup", "0", "--no-memory",
         "--no-quantile", "--precisions", "float32", "mixed_bfloat16", "--output", str(output))
    report = json.loads(output.read_text())
    float32, new = report["steps"]
    assert float32["precision"] == "float32" and float32["ms"]["clean"] != 1000.0
    assert float32["machine"] == new["machine"]
    assert new["precision"] == "mixed_bfloat16" and set(new["ms"]) == {"clean", "fgsm_rs"}
    row = next(line for line in report["markdown"].split("mixed_bfloat16")[1].splitlines()
               if line.startswith("| clean |"))
    assert row.split(" | ")[4] == f"{new['ms']['clean'] / float32['ms']['clean']:.2f}"


def test_step_time_renders_results_written_before_precisions_as_float32():
    sys.path.insert(0, ROOT)
    from benchmarks import step_time

    with open(os.path.join(ROOT, "benchmarks", "results", "step_time.json")) as f:
        committed = json.load(f)
    assert all("precision" not in e for e in committed["steps"])
    text = step_time.markdown(committed)
    # The same tables, titled float32.
    assert text.replace(", float32\n", "\n") == committed["markdown"]
    assert step_time.entry_key(committed["steps"][0]) == ("small_cnn", False, "float32")


def test_step_time_measures_peak_memory_in_a_precision():
    sys.path.insert(0, ROOT)
    from benchmarks import step_time

    assert step_time.peak_memory_mib("clean", "small_cnn", False, 4, steps=1,
                                     precision="mixed_bfloat16") > 0


def test_profile_step_attributes_ops_to_the_package_scopes():
    sys.path.insert(0, ROOT)
    from benchmarks import profile_step

    import keras
    import tensorflow as tf

    import zerograd_tf as zg

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])

    def scopes(mask_jit):
        @tf.function
        def attack(x, y):
            return zg.attacks.zerograd(model, x, y, 0.1, seed=(0, 1), mask_jit=mask_jit)

        graph = attack.get_concrete_function(tf.TensorSpec((2, 4, 4, 1)),
                                             tf.TensorSpec((2,), tf.int32)).graph
        return {profile_step.category(op.name) for op in graph.get_operations()}

    assert {"per_example_quantile", "zerograd_mask", "random_start",
            "input_gradient"} <= scopes(mask_jit=False)
    # Compiled, the whole mask is one XLA call in the mask's scope.
    found = scopes(mask_jit=True)
    assert {"zerograd_mask", "random_start", "input_gradient"} <= found
    assert "per_example_quantile" not in found
    rows = [{"type": "Less", "operation": "a/zerograd_mask/per_example_quantile/Less",
             "total_self_time": 3000.0},
            {"type": "Abs", "operation": "a/zerograd_mask/Abs", "total_self_time": 1000.0},
            {"type": "Conv2D", "operation": "a/gradient_tape/conv/Conv2D",
             "total_self_time": 4000.0},
            {"type": "IDLE", "operation": "IDLE", "total_self_time": 9e9}]
    summary = profile_step.aggregate(rows, steps=2)
    assert summary["total_ms"] == 4.0 and summary["by_type_ms"]["Conv2D"] == 2.0
    table = profile_step.summarise({"step_ms": 3.5, **summary})
    assert "median step (wall, without the profiler): 3.50 ms" in table
    assert "| per_example_quantile | 1.50 | 38 % |" in table
    assert "| zerograd_mask | 0.50 | 12 % |" in table
    assert "| weight_gradient | 2.00 | 50 % |" in table
    assert "IDLE" not in table
    # Every convolution op counts, not only those among the top types.
    many = rows + [{"type": f"Op{i}", "operation": f"b/Op{i}", "total_self_time": 5000.0}
                   for i in range(12)]
    few = profile_step.aggregate(many, steps=2, top=12)
    assert "Conv2D" not in few["by_type_ms"] and few["convolution_ms"] == 2.0
    args = profile_step.parse_args(["--method", "fgsm_rs", "--model", "conv3",
                                    "--precision", "mixed_bfloat16"])
    assert profile_step.result_name(args) == "fgsm_rs_conv3_jit-off_mixed_bfloat16.json"
    assert profile_step.result_name(profile_step.parse_args([])) == (
        "zerograd_bisect_small_cnn_jit-off.json")


def test_the_precision_profile_table_compares_the_convolutions(tmp_path):
    from zerograd_tf.benchmarking import profile_report

    machine = {"cpus": 2, "tensorflow": "2.21.0", "keras": "3.15.1", "date": "2026-12-04"}
    for (name, _), conv in zip(profile_report.PRECISION, (300.0, 200.0)):
        (tmp_path / name).write_text(json.dumps({
            "step_ms": conv + 50, "total_ms": conv + 60, "convolution_ms": conv,
            "by_scope_ms": {"other": conv + 60}, "by_type_ms": {"Conv2D": conv - 100},
            "machine": machine}))
    text = profile_report.precision_profile_table(str(tmp_path))
    assert "| FGSM-RS, conv3, float32 | 350.0 | 360.0 |" in text
    assert text.endswith("300.0 ms per step in float32, 200.0 ms in bfloat16 (1.50× faster).")
    # Without the bfloat16 profile: the table alone, no comparison.
    (tmp_path / profile_report.PRECISION[1][0]).unlink()
    assert "faster" not in profile_report.precision_profile_table(str(tmp_path))


@pytest.mark.slow
def test_diagnostics_figure_runs(tmp_path):
    output = tmp_path / "diagnostics"
    _run("diagnostics_figure.py", "--data-dir", str(tmp_path / "absent"), "--size", "16",
         "--train-size", "128", "--plan", os.path.join(ROOT, "benchmarks", "studies",
                                                        "co_study_v3.json"),
         "--methods", "fgsm_rs", "zerograd_q0.7", "n_fgsm",
         "--output", str(output), "--", "--epochs", "2")
    report = json.loads((tmp_path / "diagnostics.json").read_text())
    assert (report["plan"], report["setting"], report["seed"]) == ("co_study_v3.json", "mnist", 0)
    assert "tensorflow" in report["machine"]
    results = report["methods"]
    assert set(results) == {"fgsm_rs", "zerograd_q0.7", "n_fgsm"}
    for rows in results.values():
        assert [r["epoch"] for r in rows] == [1, 2]
        for r in rows:
            assert -1 <= r["alignment"] <= 1 and 0 <= r["small_fraction"] <= 1
            assert 0 <= r["pgd_accuracy"] <= 1 and 0 <= r["fgsm_accuracy"] <= 1
    epsilon = 0.25  # the setting's
    for method in ("fgsm_rs", "zerograd_q0.7"):
        assert all(0 < r["mean_abs_delta"] <= epsilon for r in results[method])
    # N-FGSM does not project: noise of 2 eps plus a step of eps.
    assert all(0 < r["mean_abs_delta"] <= 3 * epsilon for r in results["n_fgsm"])
    assert all(r["zeroed_fraction"] > 0.6 for r in results["zerograd_q0.7"])
    assert (tmp_path / "diagnostics.png").stat().st_size > 0


@pytest.mark.parametrize("args, flag", [(["--methods", "nope"], "--methods"),
                                        (["--setting", "svhn"], "--setting"),
                                        (["--plan", "missing.json"], "--plan")])
def test_diagnostics_figure_refuses_bad_input_in_one_line(args, flag, capsys):
    sys.path.insert(0, ROOT)
    from benchmarks import diagnostics_figure

    with pytest.raises(SystemExit) as exit_info:
        diagnostics_figure.main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0]


@pytest.mark.slow
def test_vs_pytorch_times_our_steps_and_reports_targets(tmp_path):
    import importlib.util

    output = tmp_path / "vs.json"
    frameworks = ["tf", "torch"] if importlib.util.find_spec("torch") else ["tf"]
    methods = ("clean", "attack", "zerograd")
    out = _run("vs_pytorch.py", "--networks", "cnn3", "--methods", *methods,
               "--frameworks", *frameworks, "--rounds", "1", "--steps", "1",
               "--warmup", "1", "--output", str(output))
    report = json.loads(output.read_text())
    (entry,) = report["entries"]
    assert entry["network"] == "cnn3" and entry["machine"]["tensorflow"]
    assert isinstance(entry["machine"]["bfloat16_units"], list)
    assert report["precisions"] == ["float32", "mixed_bfloat16"]
    settings = {"tf": ["", "@mixed_bfloat16"],
                "torch": ["", "@bfloat16", "@bfloat16_channels_last"]}
    assert {f"{f}/{m}{s}" for f in frameworks for m in methods for s in settings[f]} == set(
        entry["ms"])
    assert all(v > 0 for v in entry["ms"].values())
    assert "| cnn3 | zerograd | float32 |" in out and report["markdown"] in out
    assert "| cnn3 | zerograd | mixed_bfloat16 |" in out
    texts = [t["target"] for t in report["targets"]]
    assert any(t.startswith("cnn3 zerograd: mixed_bfloat16 step") for t in texts)
    if "torch" in frameworks:
        assert any("zerograd" in t and "target 1.20×" in t for t in texts)
        assert entry["torch_best_bf16"]["zerograd"] in ("bfloat16", "bfloat16_channels_last")
        assert any(t.startswith("cnn3 zerograd: mixed_bfloat16") and "best bfloat16" in t
                   for t in texts)
    assert _run("vs_pytorch.py", "--table", "--output", str(output)).strip() == \
        report["markdown"]


def test_vs_pytorch_runs_ours_alone_in_float32(tmp_path):
    output = tmp_path / "vs.json"
    _run("vs_pytorch.py", "--networks", "cnn3", "--methods", "clean", "--frameworks", "tf",
         "--precisions", "float32", "--rounds", "1", "--steps", "1", "--warmup", "0",
         "--output", str(output))
    report = json.loads(output.read_text())
    ms = report["entries"][0]["ms"]
    assert set(ms) == {"tf/clean"}
    assert report["markdown"].splitlines()[2] == \
        f"| cnn3 | clean | float32 | {ms['tf/clean']:.1f} | – | – | – | – |"


def test_vs_pytorch_table_and_targets_of_each_precision():
    sys.path.insert(0, ROOT)
    from benchmarks import vs_pytorch

    ms = {"tf/fgsm_rs": 90.0, "torch/fgsm_rs": 180.0, "tf/zerograd": 96.0,
          "torch/zerograd": 100.0,
          "tf/fgsm_rs@mixed_bfloat16": 30.0, "torch/fgsm_rs@bfloat16": 70.0,
          "torch/fgsm_rs@bfloat16_channels_last": 50.0,
          "tf/zerograd@mixed_bfloat16": 40.0, "torch/zerograd@bfloat16": 90.0,
          "torch/zerograd@bfloat16_channels_last": 95.0}
    assert vs_pytorch.torch_best_bf16(ms) == {"fgsm_rs": "bfloat16_channels_last",
                                              "zerograd": "bfloat16"}
    report = {"entries": [{"network": "cnn3", "ms": ms}]}
    lines = vs_pytorch.table(report).splitlines()
    assert lines[0].startswith("| network | method | precision | this package (ms) | "
                               "× float32 | PyTorch (ms) | PyTorch setting |")
    assert "| cnn3 | fgsm_rs | float32 | 90.0 | – | 180.0 | float32 | 2.00× |" in lines
    assert ("| cnn3 | fgsm_rs | mixed_bfloat16 | 30.0 | 0.33 | 50.0 | "
            "bf16 autocast, channels_last | 1.67× |") in lines
    assert ("| cnn3 | zerograd | mixed_bfloat16 | 40.0 | 0.42 | 90.0 | "
            "bf16 autocast, NCHW | 2.25× |") in lines
    found = dict(vs_pytorch.targets(report))
    assert found == {
        "cnn3 fgsm_rs: 2.00× faster than PyTorch (target 1.20×)": True,
        "cnn3 zerograd: 1.04× faster than PyTorch (target 1.20×)": False,
        "cnn3 fgsm_rs: mixed_bfloat16 step 3.00× faster than float32 (target 3.00×)": True,
        "cnn3 zerograd: mixed_bfloat16 step 2.40× faster than float32 (target 3.00×)": False,
        "cnn3 fgsm_rs: mixed_bfloat16 1.67× faster than PyTorch's best bfloat16 "
        "(bf16 autocast, channels_last) (target 2.00×)": False,
        "cnn3 zerograd: mixed_bfloat16 2.25× faster than PyTorch's best bfloat16 "
        "(bf16 autocast, NCHW) (target 2.00×)": True,
        "cnn3: ZeroGrad step 1.33× the FGSM-RS step in mixed_bfloat16 "
        "(target at most 1.05×)": False}
    # A result written before there were precisions: float32 rows, float32 targets.
    with open(os.path.join(ROOT, "benchmarks", "results", "vs_pytorch.json")) as f:
        committed = json.load(f)
    lines = vs_pytorch.table(committed).splitlines()
    assert len(lines) == 2 + sum(len(e["ms"]) // 2 for e in committed["entries"])
    assert all(line.split(" | ")[2] == "float32" for line in lines[2:])
    assert [{"target": t, "met": m} for t, m in vs_pytorch.targets(committed)] == \
        committed["targets"]


def test_timings_writes_each_part_with_its_machine_and_keeps_the_others(tmp_path, monkeypatch):
    sys.path.insert(0, ROOT)
    from benchmarks import timings

    output = tmp_path / "timings.json"
    output.write_text(json.dumps({"test_suite": {"seconds": 900.0, "kept": True}}))
    monkeypatch.setattr(timings, "quick_start", lambda: {"seconds": 5.0,
                                                         "evaluation_seconds": 2.0})
    assert timings.main(["--only", "quick_start", "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert report["test_suite"] == {"seconds": 900.0, "kept": True}
    assert report["quick_start"]["seconds"] == 5.0
    assert {"cpus", "date", "tensorflow", "keras"} <= set(report["quick_start"]["machine"])


def test_timings_runs_both_test_tiers_and_the_readme_names_both(monkeypatch, tmp_path):
    sys.path.insert(0, ROOT)
    from benchmarks import readme_tables, timings

    commands = []

    def run(command, **kwargs):
        commands.append(command[1:])
        # The fast tier runs without -q: its last line has pytest's banner.
        last = "12 passed in 3.0s" if "-x" in command else "===== 12 passed in 3.0s ====="
        return subprocess.CompletedProcess(command, 0, stdout=last + "\n", stderr="")

    monkeypatch.setattr(timings.subprocess, "run", run)
    output = tmp_path / "timings.json"
    assert timings.main(["--only", "test_suite", "fast_tests", "--output", str(output)]) == 0
    assert commands == [["-m", "pytest", "-x", "-q", "-n", "auto", "--dist", "loadfile"],
                        ["-m", "pytest", "-m", "not slow", "-n", "auto", "--dist", "loadfile"]]
    monkeypatch.setattr(readme_tables, "RESULTS", str(tmp_path))
    lines = readme_tables.timings_lines().splitlines()
    assert [line.split("`")[1] for line in lines[:2]] == [
        "python -m pytest -x -q -n auto --dist loadfile",
        'python -m pytest -m "not slow" -n auto --dist loadfile']
    assert all(line.endswith("(12 passed).") for line in lines[:2])
    assert lines[-1].startswith("Each on ")


def test_the_timings_name_a_shared_machine_once_and_differing_ones_per_line(tmp_path,
                                                                            monkeypatch):
    sys.path.insert(0, ROOT)
    from benchmarks import readme_tables

    machine = {"cpus": 2, "tensorflow": "2.21.0", "keras": "3.15.1", "date": "2026-12-06"}
    suite = {"seconds": 600.0, "passed": True, "summary": "12 passed in 590.0s",
             "command": "python -m pytest -x -q", "machine": machine}
    report = {"quick_start": {"seconds": 80.0, "evaluation_seconds": 50.0, "machine": machine},
              "test_suite": suite}
    (tmp_path / "timings.json").write_text(json.dumps(report))
    monkeypatch.setattr(readme_tables, "RESULTS", str(tmp_path))
    lines = readme_tables.timings_lines().splitlines()
    text = "2 CPUs, TensorFlow 2.21.0, Keras 3.15.1, 2026-12-06"
    assert lines == ["- `zerograd-train`: 80 s in all, of which the final evaluation 50 s.",
                     "- `python -m pytest -x -q`: 10 minutes (12 passed).",
                     "", f"Each on {text}."]
    # Timed on another day: each line names its own machine and date.
    report["test_suite"] = dict(suite, machine=dict(machine, date="2026-12-05"))
    (tmp_path / "timings.json").write_text(json.dumps(report))
    lines = readme_tables.timings_lines().splitlines()
    assert lines[0].endswith(f"({text}).")
    assert lines[1].endswith("(12 passed; 2 CPUs, TensorFlow 2.21.0, Keras 3.15.1, 2026-12-05).")
    assert len(lines) == 2
