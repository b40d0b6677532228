"""The study's decisions: the development choice and the default's target."""

import json
import os

import pytest

from zerograd_tf.benchmarking import study_docs
from zerograd_tf.benchmarking.study_choices import default_target, development_choice
from zerograd_tf.benchmarking.study_plan import StudyPlan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def record(method, worst, seed=0, setting="s", seconds=1.0, co=False):
    pgd = [0.3, 0.01] if co else [0.3, 0.3]
    return {"setting": setting, "method": method, "seed": seed,
            "config": {"num_classes": 10},
            "epochs": [{"pgd_accuracy": p, "fgsm_accuracy": 0.9 if co else 0.35}
                       for p in pgd],
            "final": {"clean_accuracy": 0.8, "robust_accuracy": worst + 0.01},
            "final_autoattack": {"robust_accuracy": worst, "attacks": [
                {"name": "apgd-ce", "robust_accuracy": worst}]},
            "mean_epoch_seconds": seconds}


def runs(methods, settings=("s",), seeds=(0, 1)):
    return [(s, m, k) for s in settings for m in methods for k in seeds]


def test_the_development_choice_waits_for_every_run_and_skips_candidates_that_overfit():
    expected = runs(["a", "b", "c"])
    records = [record("a", 0.30, 0), record("a", 0.30, 1), record("b", 0.40, 0),
               record("b", 0.40, 1, co=True), record("c", 0.35, 0)]
    chosen, lines = development_choice(records, "q", ["a", "b", "c"], expected)
    assert chosen is None and "5 of 6" in lines[0]
    chosen, lines = development_choice(records + [record("c", 0.35, 1)], "q",
                                       ["a", "b", "c"], expected)
    assert chosen == "c"                     # b is higher but overfit once
    assert "b 0.400 (failed in 1 of 2 runs: out)" in lines[0]


def test_a_tie_goes_to_the_earlier_candidate_and_settings_weigh_equally():
    expected = runs(["a", "b"], settings=("x", "y"), seeds=(0,))
    records = [record("a", 0.30, setting="x"), record("a", 0.30, setting="y"),
               record("b", 0.31, setting="x"), record("b", 0.305, setting="y")]
    assert development_choice(records, "q", ["a", "b"], expected)[0] == "a"
    assert development_choice(records, "q", ["b", "a"], expected)[0] == "b"
    # Strong in one setting, weak in the other: the mean over settings decides.
    records[2] = record("b", 0.60, setting="x")
    records[3] = record("b", 0.05, setting="y")
    assert development_choice(records, "q", ["a", "b"], expected)[0] == "b"
    assert development_choice(records, "q", ["a", "b"], expected, tie=0.1)[0] == "a"


def test_no_candidate_is_chosen_when_every_one_overfits():
    expected = runs(["a"], seeds=(0,))
    chosen, lines = development_choice([record("a", 0.3, co=True)], "q", ["a"], expected)
    assert chosen is None and "no candidate" in lines[0]


def test_the_default_target_needs_no_failure_the_bar_and_the_cost_in_every_setting():
    steps = ["fgsm_rs", "n_fgsm", "z"]
    expected = runs(steps, settings=("x", "y"))

    def setting(name, z_worst=0.295, z_seconds=1.2, z_co=False):
        return ([record("fgsm_rs", 0.0, k, name) for k in (0, 1)]
                + [record("n_fgsm", 0.30, k, name) for k in (0, 1)]
                + [record("z", z_worst, 0, name, z_seconds, z_co),
                   record("z", z_worst, 1, name, z_seconds)])

    decided, lines = default_target(setting("x") + setting("y"), ["z"], steps, expected)
    assert decided == {"z": True} and "**met**" in lines[0]
    for bad in ({"z_worst": 0.28}, {"z_seconds": 1.4}, {"z_co": True}):
        decided, lines = default_target(setting("x") + setting("y", **bad), ["z"], steps,
                                         expected)
        assert decided == {"z": False}, bad
        assert "x: 0 of 2 runs failed" in lines[0] and lines[0].count("→ met") == 1
    # One setting missed decides; an unfinished one alone leaves it open.
    decided, _ = default_target(setting("x", z_co=True) + setting("y")[:-1], ["z"], steps,
                                expected)
    assert decided == {"z": False}
    decided, lines = default_target(setting("x") + setting("y")[:-1], ["z"], steps, expected)
    assert decided == {"z": None} and "y: waiting for 1 of 6 runs" in lines[0]


def test_quiet_machine_costs_replace_the_study_epoch_times():
    steps = ["fgsm_rs", "z"]
    expected = runs(steps)
    records = ([record("fgsm_rs", 0.0, k) for k in (0, 1)]
               + [record("z", 0.3, k, seconds=2.0) for k in (0, 1)])
    assert default_target(records, ["z"], steps, expected)[0] == {"z": False}
    machine = {"date": "2026-12-03"}
    costs = [{"setting": "s", "method": "fgsm_rs", "mean_epoch_seconds": 1.0,
              "machine": machine},
             {"setting": "s", "method": "z", "mean_epoch_seconds": 1.1, "machine": machine}]
    decided, lines = default_target(records, ["z"], steps, expected, costs)
    assert decided == {"z": True} and "1.10 × FGSM-RS (timed apart" in lines[0]


def test_a_plan_refuses_choices_among_methods_it_does_not_have():
    settings = {"m": {"dataset": "mnist10k.npz", "fields": {}}}
    with pytest.raises(ValueError, match="choices: 'q' must list methods of the plan"):
        StudyPlan(settings, {"a": {"method": "fgsm_rs"}}, choices={"q": ["a", "b"]})


def test_the_committed_plans_state_their_choices_and_the_default_target():
    plan = StudyPlan.from_file(f"{ROOT}/benchmarks/studies/co_study_v3_dev.json")
    assert plan.choices["zerograd_n_fgsm quantile"] == [
        "zerograd_n_fgsm_q0.35", "zerograd_n_fgsm_q0.5", "zerograd_n_fgsm_q0.7"]
    text = study_docs.default_summary(f"{ROOT}/benchmarks/studies/co_study_v3.json",
                                      f"{ROOT}/benchmarks/results/co_study_v3")
    assert "- zerograd_q0.35: missed" in text   # 3 of 5 MNIST runs overfit


def test_the_readme_claim_follows_the_records(tmp_path):
    plan = {"seeds": 2, "settings": {"mnist": {"dataset": "mnist10k.npz", "fields": {}}},
            "methods": {"fgsm_rs": {"method": "fgsm_rs"},
                        "zerograd_q0.35": {"method": "zerograd", "quantile": 0.35},
                        "pgd10": {"method": "pgd"}}}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "r" / "mnist").mkdir(parents=True)

    def write(z_co):
        for method, worst, co in [("fgsm_rs", 0.0, True), ("zerograd_q0.35", 0.3, z_co),
                                  ("pgd10", 0.8, False)]:
            for seed in (0, 1):
                path = tmp_path / "r" / "mnist" / f"{method}_seed{seed}.json"
                path.write_text(json.dumps(record(method, worst, seed, "mnist",
                                                  co=co and seed == 0)))
        return study_docs.default_claim(tmp_path / "plan.json", tmp_path / "r",
                                        "zerograd_q0.35", "ZeroGrad q = 0.35")

    text = write(z_co=True)
    assert text.startswith("**Not safe by default yet.**")
    assert "overfitted catastrophically in 1 of 2 MNIST runs" in text
    text = write(z_co=False)
    assert "Not safe" not in text and "meet the target for a safe default: zerograd_q0.35" in text


def test_the_readme_names_the_study_method_that_is_zerograd_trains_default():
    import sys

    import zerograd_tf as zg
    from zerograd_tf.runs.config import RunConfig

    sys.path.insert(0, ROOT)
    from benchmarks import readme_tables

    fields = StudyPlan.from_file(
        f"{ROOT}/benchmarks/studies/co_study_v3.json").methods[readme_tables.DEFAULT_METHOD]
    config = RunConfig()
    alpha = zg.ZeroGradModel.default_alpha_factor
    assert (config.method, config.quantile, config.alpha or alpha) == (
        fields["method"], fields["quantile"], fields["alpha"])


def test_the_guide_table_takes_each_method_from_the_newest_study(tmp_path):
    settings = {"mnist": {"dataset": "mnist10k.npz", "fields": {}},
                "cifar10": {"dataset": "cifar10_5k.npz", "fields": {}}}
    sources = []
    for name, methods in [("new", {"fgsm_rs": {"method": "fgsm_rs"}, "z": {"method": "zerograd"}}),
                          ("old", {"z": {"method": "zerograd"}, "m": {"method": "multigrad"}})]:
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"seeds": 1, "settings": settings, "methods": methods}))
        for method in methods:
            worst = {"new": 0.3, "old": 0.1}[name]
            for setting in ("mnist", "cifar10") if name == "new" or method == "m" else ("mnist",):
                path = tmp_path / name / setting / f"{method}_seed0.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                run = record(method, worst, 0, setting, seconds=2.0 if method == "m" else 1.0,
                             co=method == "fgsm_rs")
                if method == "m" and setting == "mnist":
                    run["final"]["clean_accuracy"] = 0.1          # did not learn
                path.write_text(json.dumps(run))
        sources.append((tmp_path / f"{name}.json", tmp_path / name))
    rows = {line.split(" | ")[0].strip("| "): line.strip("| ").split(" | ")
            for line in study_docs.guide_table(sources).splitlines()[2:]}
    assert rows["z"] == ["z", "0/1", "0.300 ± 0.000", "0/1", "0.300 ± 0.000", "1.00"]
    assert rows["fgsm_rs"][1] == "1/1"
    # The old study's method, with its runs that did not learn; no FGSM-RS there: no cost.
    assert rows["m"] == ["m", "0/1 (1 not learned)", "0.100 ± 0.000", "0/1", "0.100 ± 0.000",
                         "–"]
