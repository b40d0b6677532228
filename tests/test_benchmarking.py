import json
import os
import subprocess
import sys

import numpy as np
import pytest

from zerograd_tf.benchmarking import study_records, study_tables
from zerograd_tf.benchmarking.machine import machine_record
from zerograd_tf.benchmarking.study_plan import StudyPlan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDIES = os.path.join(ROOT, "benchmarks", "studies")
RESULTS = os.path.join(ROOT, "benchmarks", "results")


@pytest.mark.parametrize("plan_file, results, at_least", [
    ("co_study_v2.json", "co_study_v2", 90), ("co_study_v1.json", "co_study", 90),
    ("co_study_v3.json", "co_study_v3", 70), ("co_study_v3_dev.json", "co_study_v3_dev", 14),
    ("precision_parity.json", "precision_parity", 13)])
def test_the_plan_files_reproduce_every_committed_run_configuration(plan_file, results,
                                                                    at_least):
    # The settings moved from code into data: every committed run's
    # configuration must still be what its plan says (so that later studies
    # can reuse these runs).
    plan = StudyPlan.from_file(os.path.join(STUDIES, plan_file))
    records = study_records.load_records(os.path.join(RESULTS, results))
    assert len(records) >= at_least
    for r in records:
        fields = plan.fields(r["setting"], r["method"], r["seed"])
        assert {k: r["config"][k] for k in fields} == fields, (r["setting"], r["method"])
    planned = {(r["setting"], r["method"], r["seed"]) for r in records}
    assert planned <= set(plan.runs())


def test_the_parity_plan_is_the_co_study_in_bfloat16():
    # The float32 rows of the parity table are study v3's runs (which hold
    # v2's runs of the methods whose recipe did not change): every parity run
    # must be a v3 run with only the precision changed, and zerograd-train's
    # default recipe must be one of them.
    sys.path.insert(0, ROOT)
    from benchmarks import readme_tables

    v3 = StudyPlan.from_file(os.path.join(STUDIES, "co_study_v3.json"))
    parity = StudyPlan.from_file(os.path.join(STUDIES, "precision_parity.json"))
    assert set(parity.methods) <= set(v3.methods) and parity.seeds == v3.seeds
    assert readme_tables.DEFAULT_METHOD in parity.methods
    assert set(parity.settings) <= set(v3.settings)
    for setting, method, seed in parity.runs():
        assert parity.fields(setting, method, seed) == {
            **v3.fields(setting, method, seed), "precision": "mixed_bfloat16"}


def test_the_committed_summary_is_what_the_library_writes():
    plan = StudyPlan.from_file(os.path.join(STUDIES, "co_study_v2.json"))
    folder = os.path.join(RESULTS, "co_study_v2")
    text = study_tables.summary(study_records.load_records(folder),
                                study_records.load_costs(folder), list(plan.methods))
    with open(os.path.join(folder, "summary.md")) as f:
        assert text == f.read()


def test_a_plan_runs_seed_major_and_layers_the_fields():
    plan = StudyPlan(
        settings={"a": {"dataset": "x.npz", "fields": {"epsilon": 0.1, "epochs": 3},
                        "method_fields": {"g": {"gradalign_lambda": 2.0}}},
                  "b": {"dataset": "y.npz", "fields": {"epsilon": 0.2}}},
        methods={"f": {"method": "fgsm_rs", "epochs": 5}, "g": {"method": "gradalign"}},
        seeds=2)
    assert plan.runs() == [("a", "f", 0), ("a", "g", 0), ("a", "f", 1), ("a", "g", 1),
                           ("b", "f", 0), ("b", "g", 0), ("b", "f", 1), ("b", "g", 1)]
    assert plan.runs(["b"], ["g"], seeds=1) == [("b", "g", 0)]
    # setting < method < the setting's fields for that method < seed < overrides
    assert plan.fields("a", "f", 1)["epochs"] == 5
    assert plan.fields("a", "g", 0)["gradalign_lambda"] == 2.0
    assert "gradalign_lambda" not in plan.fields("b", "g", 0)
    assert plan.fields("a", "f", 1, {"epochs": 7, "seed": 9})["epochs"] == 7


@pytest.mark.parametrize("settings, methods, seeds, message", [
    ({"a": {"dataset": "x", "fields": {}, "feilds": {}}}, {}, 5, "unknown keys"),
    ({"a": {"dataset": "x", "fields": {}, "monitor_split": "train"}}, {}, 5, "monitor_split"),
    ({}, {}, 0, "seeds"),
    ({"a": {"dataset": "x", "fields": {}, "seeds": 0}}, {}, 5, "'a': seeds"),
    ({"a": {"dataset": "x", "fields": {}, "first_seed": -1}}, {}, 5, "first_seed"),
    ({"a": {"dataset": "x", "fields": {}, "final_split": "train"}}, {}, 5, "final_split"),
    ({"a": {"dataset": "x", "fields": {}, "methods": ["g"]}}, {"f": {}}, 5, r"\['g'\]"),
])
def test_a_bad_plan_is_refused_naming_what_is_wrong(settings, methods, seeds, message):
    with pytest.raises(ValueError, match=message):
        StudyPlan(settings, methods, seeds)


def test_a_setting_may_run_fewer_seeds_and_methods():
    plan = StudyPlan({"a": {"dataset": "x", "fields": {}},
                      "b": {"dataset": "y", "fields": {}, "seeds": 1, "methods": ["g"]}},
                     {"f": {"method": "fgsm_rs"}, "g": {"method": "n_fgsm"}}, seeds=2)
    assert plan.runs() == [("a", "f", 0), ("a", "g", 0), ("a", "f", 1), ("a", "g", 1),
                           ("b", "g", 0)]
    assert plan.runs(["b"], ["f"]) == []
    # An explicit count of seeds is the caller's choice, for every setting.
    assert plan.runs(["b"], seeds=2) == [("b", "g", 0), ("b", "g", 1)]
    plan.settings["b"]["first_seed"] = 100
    assert plan.runs(["b"]) == [("b", "g", 100)]


def test_v3_takes_over_exactly_the_v2_runs_whose_fields_are_unchanged():
    v2 = StudyPlan.from_file(os.path.join(STUDIES, "co_study_v2.json"))
    v3 = StudyPlan.from_file(os.path.join(STUDIES, "co_study_v3.json"))
    assert (v3.name, v3.reuse[0].name) == ("co_study_v3", "co_study_v2")
    taken = {(s, m, k) for s, m, k in v3.runs() if v3.reused_from(s, m, k) is not None}
    assert taken == {(s, m, k) for s, m, k in v2.runs(["mnist", "cifar10"])
                     if m in v3.reuse[1]}
    for s, m, k in taken:
        assert v3.fields(s, m, k) == v2.fields(s, m, k)
    # Another step size, the new setting or a changed field: trained anew.
    assert v3.reused_from("mnist", "fgsm_rs_a1.25", 0) is None
    assert v3.reused_from("cifar10_resnet", "fgsm_rs", 0) is None
    assert v3.reused_from("mnist", "fgsm_rs", 0, {"epochs": 3}) is None
    assert len(v3.runs(["cifar10_resnet"], ["fgsm_rs"])) == 3


def test_co_study_copies_a_reused_run_and_the_summary_says_so(tmp_path):
    import types

    sys.path.insert(0, ROOT)
    from benchmarks import co_study

    v3 = StudyPlan.from_file(os.path.join(STUDIES, "co_study_v3.json"))
    # The v2 results folder lies beside the v3 one.
    args = types.SimpleNamespace(results=os.path.join(RESULTS, "co_study_v3"), overrides={})
    path = tmp_path / "mnist" / "fgsm_rs_seed1.json"
    assert co_study.take_over(v3, "mnist", "fgsm_rs", 1, args, str(path))
    with open(path) as f:
        copy = json.load(f)
    with open(os.path.join(RESULTS, "co_study_v2", "mnist", "fgsm_rs_seed1.json")) as f:
        original = json.load(f)
    assert copy == {**original, "reused_from": "co_study_v2"}
    assert not co_study.take_over(v3, "mnist", "fgsm_rs_a1.25", 1, args,
                                  str(tmp_path / "other.json"))
    assert not (tmp_path / "other.json").exists()
    text = study_tables.summary([copy])
    assert "taken over from co_study_v2" in text and "fgsm_rs (1)" in text


def test_unknown_settings_and_methods_name_the_valid_ones():
    plan = StudyPlan({"a": {"dataset": "x", "fields": {}}}, {"f": {"method": "fgsm_rs"}})
    with pytest.raises(ValueError, match=r"method must be one of \['f'\]"):
        plan.fields("a", "nope", 0)
    with pytest.raises(ValueError, match=r"setting must be one of \['a'\]"):
        plan.fields("nope", "f", 0)


def test_data_without_a_test_split_takes_its_test_examples_from_the_held_out_split(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "no_test.npz"
    np.savez(path, x_train=rng.integers(0, 256, (60, 8, 8, 1), dtype=np.uint8),
             y_train=rng.integers(0, 3, 60))
    plan = StudyPlan({"s": {"dataset": "no_test.npz", "test_from_held_out": 10,
                            "fields": {"val_size": 30}}}, {"f": {"method": "fgsm_rs"}})
    data = plan.load_data("s", plan.dataset_path("s", str(tmp_path)), train_size=20)
    assert (len(data.x_train), len(data.x_test), len(data.x_val)) == (20, 10, 20)
    (x_mon, y_mon), (x_eval, y_eval) = plan.monitor_and_evaluation("s", data, monitor_size=4)
    assert x_mon.dtype == np.float32 and 0.0 <= x_mon.min() and x_mon.max() <= 1.0
    assert len(x_mon) == 4 and len(x_eval) == 10
    np.testing.assert_array_equal(x_eval, data.x_test.astype(np.float32) / 255)
    config = plan.run_config("s", "f", 3, data)
    assert (config.seed, config.method, config.num_classes) == (3, "fgsm_rs", 3)
    # A development setting evaluates on the held-out split, never on the test split.
    plan.settings["s"]["final_split"] = "validation"
    _, (x_dev, _) = plan.monitor_and_evaluation("s", data)
    np.testing.assert_array_equal(x_dev, data.x_val.astype(np.float32) / 255)


def test_mnist_falls_back_to_the_digits_shipped_with_the_package(tmp_path):
    plan = StudyPlan({"m": {"dataset": "mnist10k.npz", "fields": {}}}, {})
    assert plan.dataset_path("m", str(tmp_path)).endswith(os.path.join("resources",
                                                                       "mnist10k.npz"))


def test_the_machine_record_names_the_versions():
    record = machine_record(("keras", "no-such-distribution"))
    assert record["keras"] and record["no-such-distribution"] is None
    assert record["cpus"] >= 1 and len(record["date"]) == 10


def test_the_machine_record_names_the_cpu_and_its_bfloat16_units():
    # Machines of the same size differ in what bfloat16 gains (AMX tiles or
    # AVX512-BF16 dot products): a step time must say which it ran on.
    from zerograd_tf.benchmarking.study_docs import machine_text

    zen4 = ("processor\t: 0\nmodel name\t: AMD EPYC 9R14 96-Core Processor\n"
            "flags\t\t: fpu avx512f avx512_bf16\nprocessor\t: 1\n"
            "model name\t: AMD EPYC 9R14 96-Core Processor\nflags\t\t: fpu avx512f avx512_bf16\n")
    record = machine_record(("keras",), cpuinfo=zen4)
    assert record["cpu"] == "AMD EPYC 9R14 96-Core Processor"
    assert record["bfloat16_units"] == ["avx512_bf16"]
    versions = {"cpus": 2, "tensorflow": "2.21.0", "keras": "3.15.1", "date": "2026-12-04"}
    assert machine_text({**versions, "cpu": record["cpu"], "bfloat16_units": ["avx512_bf16"]}) == (
        "2 CPUs (AMD EPYC 9R14 96-Core Processor; bfloat16: avx512_bf16), TensorFlow 2.21.0, "
        "Keras 3.15.1, 2026-12-04")
    assert machine_text({**versions, "cpu": "", "bfloat16_units": []}) == (
        "2 CPUs (an unnamed CPU; bfloat16: none), TensorFlow 2.21.0, Keras 3.15.1, 2026-12-04")
    # Records written before the CPU was recorded read as they did (step-time
    # entries stored a bool there).
    assert machine_text(versions) == "2 CPUs, TensorFlow 2.21.0, Keras 3.15.1, 2026-12-04"
    assert machine_text({**versions, "bfloat16_units": True}) == machine_text(versions)
    # Without /proc/cpuinfo (macOS, Windows) nothing is known: not "none".
    unknown = machine_record(("keras",), cpuinfo="")
    assert unknown["cpu"] == "" and unknown["bfloat16_units"] is None
    assert machine_text({**versions, "cpu": "", "bfloat16_units": None}) == (
        "2 CPUs (an unnamed CPU; bfloat16: unknown), TensorFlow 2.21.0, Keras 3.15.1, 2026-12-04")
    # An Arm cpuinfo names no model.
    arm = machine_record(("keras",), cpuinfo="processor\t: 0\nFeatures\t: fp asimd bf16\n")
    assert arm["cpu"] == "" and arm["bfloat16_units"] == ["bf16"]


def test_no_benchmark_imports_another():
    # Benchmarks import the library, not each other (by package or by name).
    import ast

    folder = os.path.join(ROOT, "benchmarks")
    programs = {name[:-3] for name in os.listdir(folder) if name.endswith(".py")}
    for name in programs - {"__init__"}:
        with open(os.path.join(folder, name + ".py")) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top != "benchmarks" and top not in programs, (name, module)


@pytest.mark.parametrize("args, flag", [(["--methods", "nope"], "--methods"),
                                        (["--settings", "custom"], "--settings"),
                                        (["--plan", "missing.json"], "--plan"),
                                        (["--seeds", "0"], "--seeds")])
def test_co_study_refuses_bad_input_in_one_line(args, flag, capsys):
    sys.path.insert(0, ROOT)
    from benchmarks import co_study

    with pytest.raises(SystemExit) as exit_info:
        co_study.parse(args)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err.strip().splitlines()[-1]


def test_co_study_exits_2_without_a_traceback_or_a_results_folder(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "co_study.py"),
                             "--methods", "nope", "--results", str(tmp_path / "r")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--methods: nope not in" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "r").exists()


def test_auto_target_is_reported_met_or_missed():
    def record(method, seed, worst, seconds=1.0, co=False, quantile=None):
        pgd = [0.3, 0.01] if co else [0.3, 0.3]
        return {"setting": "s", "method": method, "seed": seed, "config": {"num_classes": 10},
                "epochs": [{"pgd_accuracy": p, "fgsm_accuracy": 0.9 if co else 0.35}
                           for p in pgd],
                "final": {"clean_accuracy": 0.8, "robust_accuracy": worst + 0.01},
                "final_autoattack": {"robust_accuracy": worst, "attacks": [
                    {"name": "apgd-ce", "robust_accuracy": worst}]},
                "mean_epoch_seconds": seconds, "final_quantile": quantile}

    fixed = [record("zerograd_q0.5", i, w) for i, w in enumerate([0.30, 0.32, 0.34])]
    base = [record("fgsm_rs", i, 0.0) for i in range(3)]
    good = [record("zerograd_auto", i, 0.31, seconds=1.2, quantile=0.45) for i in range(3)]
    lines = study_tables.auto_target(fixed + base + good)
    assert [line.rsplit(": ", 1)[-1] for line in lines[1:4]] == ["met", "met", "met"]
    bad = [record("zerograd_auto", 0, 0.2, seconds=1.5, co=True)] + [
        record("zerograd_auto", i, 0.31, seconds=1.5) for i in (1, 2)]
    lines = study_tables.auto_target(fixed + base + bad)
    assert [line.rsplit(": ", 1)[-1] for line in lines[1:4]] == ["missed", "missed", "missed"]
    # Quiet-machine timings (--cost-only) replace the study's epoch times.
    machine = {"date": "2026-11-28"}
    costs = [{"method": "fgsm_rs", "mean_epoch_seconds": 1.0, "machine": machine},
             {"method": "zerograd_auto", "mean_epoch_seconds": 1.25, "machine": machine}]
    lines = study_tables.auto_target(fixed + base + bad, costs)
    assert "cost 1.25 x FGSM-RS" in lines[3] and lines[3].endswith(": met")


def test_did_not_learn_is_clean_accuracy_below_one_and_a_half_times_chance():
    def record(clean, classes):
        return {"config": {"num_classes": classes}, "final": {"clean_accuracy": clean}}

    assert study_records.did_not_learn(record(0.108, 10))      # a constant predictor
    assert not study_records.did_not_learn(record(0.16, 10))
    assert study_records.did_not_learn(record(0.49, 2))
    assert not study_records.did_not_learn(record(0.8, 2))


def test_tie_statistics_count_thresholds_that_fall_on_equal_values():
    sys.path.insert(0, ROOT)
    from benchmarks import precision_ties

    g = np.array([[1.0, -1.0, 1.0, 2.0], [1.0, 2.0, -3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    stats = precision_ties.tie_statistics(g, 0.5)
    # Row 0: threshold 1.0 (three elements), row 1: 2.5 (none), row 2: 0 (all four).
    assert stats["tied_examples"] == pytest.approx(2 / 3)
    assert stats["at_threshold_fraction"] == pytest.approx(7 / 12)
    assert stats["zeroed_fraction"] == pytest.approx(2 / 12)
    assert stats["distinct_fraction"] == pytest.approx((2 / 4 + 1 + 1 / 4) / 3)
    assert stats["zero_fraction"] == pytest.approx(4 / 12)


def test_precision_ties_measures_every_method_that_ranks_the_gradient(tmp_path):
    # ZeroGrad on N-FGSM (the default) masks by the same quantile as ZeroGrad;
    # N-FGSM ranks nothing. Entries of runs without weights on this machine
    # are kept only for the runs the program measures.
    sys.path.insert(0, ROOT)
    from benchmarks import precision_ties

    folder = tmp_path / "results" / "mnist"
    folder.mkdir(parents=True)
    runs = {"zerograd_n_fgsm_q0.35": {"method": "zerograd_n_fgsm", "quantile": 0.35},
            "zerograd_q0.7": {"method": "zerograd", "quantile": 0.7},
            "n_fgsm": {"method": "n_fgsm", "quantile": 0.35}}
    entries = []
    for name, config in runs.items():
        (folder / f"{name}_seed0.json").write_text(json.dumps(
            {"setting": "mnist", "method": name, "seed": 0, "config": config}))
        entries.append({"setting": "mnist", "method": name, "seed": 0,
                        "quantile": config["quantile"], "num_examples": 500,
                        "machine": {"cpus": 2}})
    output = tmp_path / "ties.json"
    output.write_text(json.dumps({"entries": entries, "machine": {"cpus": 2}}))
    assert precision_ties.main(["--results", str(tmp_path / "results"),
                                "--output", str(output)]) == 0
    kept = [e["method"] for e in json.loads(output.read_text())["entries"]]
    assert sorted(kept) == ["zerograd_n_fgsm_q0.35", "zerograd_q0.7"]


def test_precision_ties_keeps_the_entries_of_runs_whose_weights_are_gone(tmp_path):
    """The weights stay on the machine that trained them: a later measurement
    (the CIFAR-10 runs, elsewhere) must not drop the MNIST entries."""
    sys.path.insert(0, ROOT)
    from benchmarks import precision_ties

    for setting, seed in (("mnist", 0), ("mnist", 1)):
        folder = tmp_path / "results" / setting
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"zerograd_q0.5_seed{seed}.json").write_text(json.dumps(
            {"setting": setting, "method": "zerograd_q0.5", "seed": seed,
             "config": {"method": "zerograd", "quantile": 0.5}}))
    old_machine = {"cpus": 2, "tensorflow": "2.21.0", "keras": "3.15.1", "date": "2026-12-03"}
    kept = {"setting": "mnist", "method": "zerograd_q0.5", "seed": 0, "quantile": 0.5,
            "num_examples": 500, "float32": {"zeroed_fraction": 0.5},
            "mixed_bfloat16": {"zeroed_fraction": 0.49}}
    gone = {**kept, "method": "zerograd_q0.7"}            # no record any more: dropped
    output = tmp_path / "ties.json"
    output.write_text(json.dumps({"entries": [kept, gone], "machine": old_machine}))
    assert precision_ties.main(["--results", str(tmp_path / "results"),
                                "--output", str(output)]) == 0
    entries = json.loads(output.read_text())["entries"]
    assert entries == [{**kept, "machine": old_machine}]
    # The table names every machine its entries were measured on.
    stats = {"zeroed_fraction": 0.5, "tied_examples": 0.5, "at_threshold_fraction": 0.01,
             "distinct_fraction": 0.9}
    new_machine = {**old_machine, "date": "2026-12-05"}
    output.write_text(json.dumps({"machine": new_machine, "entries": [
        {**kept, "float32": stats, "mixed_bfloat16": stats},
        {**kept, "seed": 1, "float32": stats, "mixed_bfloat16": stats,
         "machine": old_machine}]}))
    from zerograd_tf.benchmarking import study_docs
    text = study_docs.ties_table(str(output))
    assert text.endswith("measured on 2 CPUs, TensorFlow 2.21.0, Keras 3.15.1, 2026-12-05; "
                         "2 CPUs, TensorFlow 2.21.0, Keras 3.15.1, 2026-12-03.")


def test_co_study_keeps_each_plan_apart_and_refuses_another_plans_runs(tmp_path, capsys):
    sys.path.insert(0, ROOT)
    from benchmarks import co_study

    args, plan = co_study.parse(["--plan", os.path.join(STUDIES, "precision_parity.json")])
    assert args.results.endswith(os.path.join("results", "precision_parity"))
    # A float32 run of the CO study where this plan's bfloat16 run would go.
    v2 = os.path.join(RESULTS, "co_study_v2", "mnist", "fgsm_rs_seed0.json")
    with pytest.raises(SystemExit) as exit_info:
        co_study.finished(v2, plan, "mnist", "fgsm_rs", 0, args)
    assert exit_info.value.code == 2
    assert "differs in: precision" in capsys.readouterr().err
    args, plan = co_study.parse([])
    assert co_study.finished(v2, plan, "mnist", "fgsm_rs", 0, args)
    assert not co_study.finished(str(tmp_path / "none.json"), plan, "mnist", "fgsm_rs", 0, args)


def test_the_step_size_figure_has_a_panel_per_method_run_at_two_step_sizes(tmp_path):
    from zerograd_tf.benchmarking import study_plots

    def run(method, alpha, seed, quantile=0.35):
        return {"config": {"method": method, "alpha": alpha, "quantile": quantile},
                "seed": seed, "epochs": [{"pgd_accuracy": a} for a in (0.2, 0.3 * seed)]}

    records = [run("fgsm_rs", 2.0, 0), run("fgsm_rs", 2.0, 1), run("fgsm_rs", 1.25, 0),
               run("zerograd", 2.0, 0, 0.5), run("zerograd", 2.0, 0, 0.7),
               run("n_fgsm", None, 0)]
    groups = study_plots.step_size_groups(records)
    assert list(groups) == [("fgsm_rs", None)] and sorted(groups[("fgsm_rs", None)]) == [1.25, 2.0]
    path = tmp_path / "step_size.png"
    assert study_plots.write_step_size_plot(records, str(path), "mnist")
    assert path.stat().st_size > 0
    assert not study_plots.write_step_size_plot(records[3:], str(tmp_path / "none.png"), "x")
    assert not (tmp_path / "none.png").exists()


def test_the_study_figures_keep_their_titles_and_labels_inside(tmp_path, monkeypatch):
    # A setting with a single method (a setting that has only begun) once cut
    # off its title and axis label.
    import matplotlib.figure

    from zerograd_tf.benchmarking import study_plots

    saved = matplotlib.figure.Figure.savefig

    def savefig(fig, path, **kwargs):
        renderer = fig.canvas.get_renderer()
        texts = [*fig.texts, *(t for ax in fig.axes
                                for t in (ax.title, ax.yaxis.label) if ax.get_visible())]
        assert texts[0].get_text().endswith("every seed") or "robustness" in texts[0].get_text()
        for text in texts:
            if text.get_text():
                box = text.get_window_extent(renderer)
                assert (box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.width
                        and box.y1 <= fig.bbox.height), (os.path.basename(path), text.get_text())
        return saved(fig, path, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    run = {"setting": "cifar10_resnet", "method": "zerograd_n_fgsm_q0.35", "seed": 0,
           "config": {"method": "zerograd_n_fgsm", "quantile": 0.35, "num_classes": 10},
           "epochs": [{"epoch": e, "pgd_accuracy": 0.1 * e, "fgsm_accuracy": 0.1 * e}
                      for e in (1, 2)],
           "final": {"clean_accuracy": 0.4, "robust_accuracy": 0.3},
           "final_autoattack": {"robust_accuracy": 0.25, "attacks": [
               {"name": "apgd-ce", "robust_accuracy": 0.25}]},
           "mean_epoch_seconds": 100.0}
    paths = study_plots.write_plots([run], str(tmp_path))
    assert any(p.endswith("pgd_per_epoch_cifar10_resnet.png") for p in paths)


def test_co_study_compares_runs_trained_again_with_their_records(tmp_path):
    sys.path.insert(0, ROOT)
    from benchmarks import co_study

    with open(os.path.join(RESULTS, "co_study_v2", "mnist", "fgsm_rs_seed0.json")) as f:
        record = json.load(f)
    again = json.loads(json.dumps(record))
    again["epochs"][3]["pgd_accuracy"] += 0.002
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "fgsm_rs_seed0.json").write_text(json.dumps(again))
    report = co_study.compare(str(tmp_path), os.path.join(RESULTS, "co_study_v2"))
    (run,) = report["runs"]
    assert run["run"] == ["mnist", "fgsm_rs", 0] and not run["epochs_identical"]
    assert run["config_differences"] == {} and "cpus" in report["machine"]
    (tmp_path / "mnist" / "fgsm_rs_seed0.json").write_text(json.dumps(record))
    assert co_study.compare(str(tmp_path), os.path.join(RESULTS, "co_study_v2"))[
        "runs"][0]["epochs_identical"]


def _masked_record(method, seed, square_attacked, square_broken, flag=None):
    final_aa = {"robust_accuracy": 0.3, "attacks": [
        {"name": "apgd-ce", "robust_accuracy": 0.4},
        {"name": "square", "robust_accuracy": 0.3, "num_attacked": square_attacked,
         "num_broken": square_broken}]}
    if flag is not None:
        final_aa["gradient_masking"] = flag
    return {"setting": "s", "method": method, "seed": seed, "config": {"num_classes": 10},
            "epochs": [{"pgd_accuracy": 0.3, "fgsm_accuracy": 0.35}],
            "final": {"clean_accuracy": 0.8, "robust_accuracy": 0.3},
            "final_autoattack": final_aa, "mean_epoch_seconds": 1.0}


def test_the_summary_names_the_runs_with_a_sign_of_gradient_masking():
    # Square's breaks after every gradient attack decide it, by the rule the
    # evaluation applies (also for records written before it stored a flag).
    records = [_masked_record("a", 0, 800, 36, flag=True), _masked_record("a", 1, 800, 30),
               _masked_record("b", 0, 800, 1), _masked_record("b", 1, 800, 2)]
    rows = [study_records.run_row(r) for r in records]
    assert [r["gradient_masking"] for r in rows] == [True, True, False, False]
    text = study_tables.summary(records)
    assert "Signs of gradient masking" in text and "a (2 of 2 runs)" in text
    assert "b (" not in text
    assert "Signs of gradient masking" not in study_tables.summary(records[2:])
    without_square = dict(records[0], final_autoattack=None)
    assert study_records.run_row(without_square)["gradient_masking"] is None


def test_the_computed_masking_sign_is_the_flag_the_evaluation_stored():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    stored = [r for study in ("co_study_v3", "co_study_v3_dev", "precision_parity")
              for r in study_records.load_records(os.path.join(root, "benchmarks", "results",
                                                               study))
              if "gradient_masking" in (r.get("final_autoattack") or {})]
    assert any(r["final_autoattack"]["gradient_masking"] for r in stored)
    for r in stored:
        assert (study_records.gradient_masking(r)
                == r["final_autoattack"]["gradient_masking"]), (r["method"], r["seed"])


def test_the_parity_table_keeps_each_setting_a_block_of_its_own():
    def run(setting, seed, worst=0.3):
        return {"setting": setting, "method": "m", "seed": seed, "config": {"num_classes": 10},
                "epochs": [{"pgd_accuracy": 0.3, "fgsm_accuracy": 0.35}],
                "final": {"clean_accuracy": 0.8, "robust_accuracy": worst},
                "final_autoattack": {"robust_accuracy": worst, "attacks": [
                    {"name": "apgd-ce", "robust_accuracy": worst}]},
                "mean_epoch_seconds": 1.0}

    runs = [run("s", 0), run("t", 0), run("t", 1)]
    text = study_tables.parity(runs, runs)
    # Markdown needs an empty line before the next setting's heading.
    assert "judged.\n\n**Setting: t**" in text


def test_the_readme_precision_claim_follows_the_step_times_and_the_parity_rows(
        monkeypatch, tmp_path):
    # The README's precision paragraph: the measured bfloat16 speed of the
    # ZeroGrad step, what "auto" trains in, and the rows that decided it.
    sys.path.insert(0, ROOT)
    from benchmarks import readme_tables

    def run(method, seed, worst):
        return {"setting": "s", "method": method, "seed": seed, "config": {"num_classes": 10},
                "epochs": [{"pgd_accuracy": 0.3, "fgsm_accuracy": 0.35}],
                "final": {"clean_accuracy": 0.8, "robust_accuracy": worst},
                "final_autoattack": {"robust_accuracy": worst, "attacks": [
                    {"name": "apgd-ce", "robust_accuracy": worst}]},
                "mean_epoch_seconds": 1.0}

    def write(folder, runs):
        (tmp_path / folder / "s").mkdir(parents=True, exist_ok=True)
        for r in runs:
            (tmp_path / folder / "s" / f"{r['method']}_seed{r['seed']}.json").write_text(
                json.dumps(r))

    (tmp_path / "precision_parity.json").write_text(json.dumps(
        {"seeds": 2, "settings": {"s": {"fields": {}}},
         "methods": {"a": {"method": "fgsm_rs"}, "b": {"method": "n_fgsm"}}}))
    machine = {"cpus": 2, "tensorflow": "2.21.0", "keras": "3.15.1", "date": "2026-12-04"}

    def entry(model, precision, ms, jit=False):
        return {"model": model, "jit": jit, "precision": precision, "machine": machine,
                "ms": {"zerograd_bisect": ms}}

    (tmp_path / "step_time_precision.json").write_text(json.dumps({"batch_size": 64, "steps": [
        entry("conv3", "float32", 300.0), entry("conv3", "mixed_bfloat16", 100.0),
        entry("conv3", "mixed_bfloat16", 10.0, jit=True), entry("small_cnn", "float32", 20.0),
        entry("small_cnn", "mixed_bfloat16", 25.0),
        entry("preact_resnet18", "float32", 900.0)]}))
    monkeypatch.setattr(readme_tables, "RESULTS", str(tmp_path))
    monkeypatch.setattr(readme_tables, "STUDIES", str(tmp_path))
    write("co_study_v3", [run("a", 0, 0.30), run("a", 1, 0.34), run("b", 0, 0.30),
                          run("b", 1, 0.30)])
    write("precision_parity", [run("a", 0, 0.31)])
    text = readme_tables.precision_claim()
    # Graph-mode steps only; a network measured in one precision is left out;
    # a slower bfloat16 step is said as it is.
    assert ("(batch 64), a ZeroGrad train step in mixed_bfloat16 ran 3.0× as fast as in "
            "float32 on the 3-conv CNN and 0.8× on the 2-conv MNIST CNN.") in text
    assert "PreAct" not in text
    assert "trains in **float32**" in text and "(1 of 4 runs" in text
    assert "no target is judged" in text
    write("precision_parity", [run("a", 1, 0.33), run("b", 0, 0.30), run("b", 1, 0.10)])
    text = readme_tables.precision_claim()
    assert "1 of 2 method-and-setting rows misses the target" in text and ": s b." in text
    write("precision_parity", [run("b", 1, 0.30)])
    assert "the 2 method-and-setting rows judged so far all meet" in readme_tables.precision_claim()
    (tmp_path / "step_time_precision.json").unlink()
    assert "Measured" not in readme_tables.precision_claim()
