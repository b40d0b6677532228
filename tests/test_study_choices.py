"""The study's decisions: the development choice and the default's target."""

import json
import os

import pytest

from zerograd_tf.benchmarking import study_default, study_docs, study_records
from zerograd_tf.benchmarking.study_choices import (default_target, development_choice,
                                                     safest_method)
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


def cost(method, seconds, setting="s"):
    return {"setting": setting, "method": method, "mean_epoch_seconds": seconds,
            "machine": {"date": "2026-12-03"}}


def test_the_development_choice_waits_for_every_run_and_skips_candidates_that_overfit():
    expected = runs(["a", "b", "c"])
    records = [record("a", 0.30, 0), record("a", 0.30, 1), record("b", 0.40, 0),
               record("b", 0.40, 1, co=True), record("c", 0.35, 0)]
    chosen, lines = development_choice(records, "q", ["a", "b", "c"], expected)
    assert chosen is None and "5 of 6" in lines[0]
    chosen, lines = development_choice(records + [record("c", 0.35, 1)], "q",
                                       ["a", "b", "c"], expected)
    assert chosen == "c"                     # b is higher but overfit once
    assert "b 0.400 (CO in 1 of 2 runs: out)" in lines[0]


def test_the_development_choice_follows_the_written_rule_only():
    expected = runs(["a", "b"], seeds=(0,))
    dead = record("a", 0.30)
    dead["final"]["clean_accuracy"] = 0.1    # did not learn: not a rule of the plan
    chosen, _ = development_choice([dead, record("b", 0.20)], "q", ["a", "b"], expected)
    assert chosen == "a"
    # Runs the plan does not name (another seed), or without AutoAttack, are ignored.
    extra = record("b", 0.9, seed=7)
    unevaluated = record("a", 0.5, seed=0)
    unevaluated["final_autoattack"] = None
    chosen, lines = development_choice([record("a", 0.30), record("b", 0.20), extra], "q",
                                       ["a", "b"], expected)
    assert chosen == "a"
    chosen, lines = development_choice([unevaluated, record("b", 0.20)], "q", ["a", "b"],
                                       expected)
    assert chosen is None and "1 of 2" in lines[0]


def test_a_tie_goes_to_the_earlier_candidate_and_settings_weigh_equally():
    expected = runs(["a", "b"], settings=("x", "y"), seeds=(0,))
    records = [record("a", 0.30, setting="x"), record("a", 0.30, setting="y"),
               record("b", 0.31, setting="x"), record("b", 0.31, setting="y")]
    assert development_choice(records, "q", ["a", "b"], expected)[0] == "a"   # exactly 0.01
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


STEPS = ["fgsm_rs", "n_fgsm", "z"]


def setting_runs(name, z_worst=0.29, z_co=False, seeds=(0, 1)):
    return ([record("fgsm_rs", 0.0, k, name) for k in seeds]
            + [record("n_fgsm", 0.30, k, name) for k in seeds]
            + [record("z", z_worst, k, name, co=z_co and k == seeds[0]) for k in seeds])


def quiet(z_seconds=1.2, settings=("x", "y")):
    return [c for s in settings for c in (cost("fgsm_rs", 1.0, s), cost("z", z_seconds, s))]


def test_the_default_target_needs_no_failure_the_bar_and_the_cost_in_every_setting():
    expected = runs(STEPS, settings=("x", "y"))
    records = setting_runs("x") + setting_runs("y")
    decided, lines = default_target(records, ["z"], STEPS, expected, quiet())
    assert decided == {"z": True} and "**met**" in lines[0]     # exactly one point below
    for bad, text in [({"z_worst": 0.285}, "worst case 0.015 below n_fgsm's"),
                      ({"z_co": True}, "1 of 2 runs overfitted or did not learn")]:
        decided, lines = default_target(setting_runs("x") + setting_runs("y", **bad), ["z"],
                                        STEPS, expected, quiet())
        assert decided == {"z": False} and text in lines[0], bad
        assert lines[0].count("→ met") == 1
    decided, lines = default_target(records, ["z"], STEPS, expected, quiet(z_seconds=1.4))
    assert decided == {"z": False} and "cost above 1.3 × FGSM-RS" in lines[0]


def test_one_missed_setting_decides_and_an_open_one_leaves_it_undecided():
    expected = runs(STEPS, settings=("x", "y"))
    decided, _ = default_target(setting_runs("x", z_co=True) + setting_runs("y")[:-1], ["z"],
                                STEPS, expected, quiet())
    assert decided == {"z": False}
    decided, lines = default_target(setting_runs("x") + setting_runs("y")[:-1], ["z"], STEPS,
                                    expected, quiet())
    assert decided == {"z": None} and "y: waiting for 1 of 6 runs" in lines[0]
    # A setting of the study that does not run the candidate: never met.
    planned = runs(STEPS, settings=("x",)) + runs(["fgsm_rs", "n_fgsm"], settings=("y",))
    decided, lines = default_target(setting_runs("x") + setting_runs("y"), ["z"], STEPS,
                                    planned, quiet())
    assert decided == {"z": None} and "y: not run in this setting" in lines[0]
    assert default_target([], ["z"], STEPS, [], quiet())[0] == {"z": None}


def test_a_failure_or_a_finished_method_ahead_misses_before_the_other_methods_finish():
    # The last n_fgsm run of setting x is missing: the bar may still rise,
    # but the candidate's own finished runs can already miss it.
    expected = runs(STEPS, settings=("x",))
    missing_n = [r for r in setting_runs("x", z_co=True)
                 if (r["method"], r["seed"]) != ("n_fgsm", 1)]
    decided, lines = default_target(missing_n, ["z"], STEPS, expected, quiet(settings=("x",)))
    assert decided == {"z": False} and "1 of 2 runs overfitted" in lines[0]
    missing_f = [r for r in setting_runs("x", z_worst=0.1)
                 if (r["method"], r["seed"]) != ("fgsm_rs", 1)]
    decided, lines = default_target(missing_f, ["z"], STEPS, expected, quiet(settings=("x",)))
    assert decided == {"z": False} and "worst case 0.200 below n_fgsm's" in lines[0]
    # Only finished methods set the bar: without n_fgsm's runs, z is its own.
    missing_n = [r for r in setting_runs("x", z_worst=0.1)
                 if (r["method"], r["seed"]) != ("n_fgsm", 1)]
    decided, lines = default_target(missing_n, ["z"], STEPS, expected, quiet(settings=("x",)))
    assert decided == {"z": None} and "vs z 0.100" in lines[0]
    decided, lines = default_target(
        [r for r in setting_runs("x") if (r["method"], r["seed"]) != ("n_fgsm", 1)],
        ["z"], STEPS, expected, quiet(settings=("x",)))
    assert decided == {"z": None} and "waiting for 1 of 6 runs" in lines[0]
    # ... unless its quiet cost is already above the bound.
    decided, lines = default_target(
        [r for r in setting_runs("x") if (r["method"], r["seed"]) != ("n_fgsm", 1)],
        ["z"], STEPS, expected, quiet(z_seconds=1.4, settings=("x",)))
    assert decided == {"z": False} and "cost above 1.3 × FGSM-RS" in lines[0]
    # The candidate's own runs missing: nothing is decided.
    decided, _ = default_target(setting_runs("x", z_co=True)[:-1], ["z"], STEPS, expected,
                                quiet(settings=("x",)))
    assert decided == {"z": None}


def test_only_quiet_machine_timings_decide_the_cost():
    expected = runs(["fgsm_rs", "z"])
    records = ([record("fgsm_rs", 0.0, k, seconds=1.0) for k in (0, 1)]
               + [record("z", 0.3, k, seconds=2.0) for k in (0, 1)])
    decided, lines = default_target(records, ["z"], ["fgsm_rs", "z"], expected)
    assert decided == {"z": None}
    assert "2.00 × FGSM-RS (the study's epoch times, provisional)" in lines[0]
    assert "waiting for --cost-only timings" in lines[0]
    decided, lines = default_target(records, ["z"], ["fgsm_rs", "z"], expected,
                                    [cost("fgsm_rs", 1.0), cost("z", 1.1)])
    assert decided == {"z": True} and "1.10 × FGSM-RS (timed apart" in lines[0]
    # No FGSM-RS timing at all: undecided, not missed.
    decided, _ = default_target(records[2:], ["z"], ["z"], runs(["z"]), [cost("z", 1.1)])
    assert decided == {"z": None}
    # The candidate is its own bar when no single-step method is named.
    decided, lines = default_target(records, ["z"], [], expected)
    assert decided == {"z": None} and "vs z 0.300" in lines[0]


def test_a_plan_refuses_choices_among_methods_it_does_not_have():
    settings = {"m": {"dataset": "mnist10k.npz", "fields": {}}}
    with pytest.raises(ValueError, match="choices: 'q' must list methods of the plan"):
        StudyPlan(settings, {"a": {"method": "fgsm_rs"}}, choices={"q": ["a", "b"]})


def test_the_committed_plans_state_their_choices_and_the_default_target():
    plan = StudyPlan.from_file(f"{ROOT}/benchmarks/studies/co_study_v3_dev.json")
    assert plan.choices["zerograd_n_fgsm quantile"] == [
        "zerograd_n_fgsm_q0.35", "zerograd_n_fgsm_q0.5", "zerograd_n_fgsm_q0.7"]
    text = study_default.default_summary(f"{ROOT}/benchmarks/studies/co_study_v3.json",
                                         f"{ROOT}/benchmarks/results/co_study_v3")
    assert "- zerograd_q0.35: missed" in text   # 3 of 5 MNIST runs overfit


def test_the_readme_claim_follows_the_records(tmp_path):
    plan = {"seeds": 2, "settings": {"mnist": {"dataset": "mnist10k.npz", "fields": {}}},
            "methods": {"fgsm_rs": {"method": "fgsm_rs"},
                        "zerograd_q0.35": {"method": "zerograd", "quantile": 0.35,
                                           "alpha": 2.0},
                        "zerograd_n_fgsm_q0.5": {"method": "zerograd_n_fgsm", "quantile": 0.5},
                        "pgd10": {"method": "pgd"}}}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "r" / "mnist").mkdir(parents=True)
    (tmp_path / "r" / "cost" / "mnist").mkdir(parents=True)
    for method in ("fgsm_rs", "zerograd_q0.35", "zerograd_n_fgsm_q0.5"):
        (tmp_path / "r" / "cost" / "mnist" / f"{method}_seed0.json").write_text(
            json.dumps(cost(method, 1.0, "mnist")))

    def claim(default_co, other_co):
        for method, worst, co in [("fgsm_rs", 0.0, False), ("zerograd_q0.35", 0.3, default_co),
                                  ("zerograd_n_fgsm_q0.5", 0.3, other_co),
                                  ("pgd10", 0.8, False)]:
            for seed in (0, 1):
                path = tmp_path / "r" / "mnist" / f"{method}_seed{seed}.json"
                path.write_text(json.dumps(record(method, worst, seed, "mnist",
                                                  co=co and seed == 0)))
        return study_default.default_claim(tmp_path / "plan.json", tmp_path / "r",
                                           "zerograd_q0.35")

    text = claim(default_co=True, other_co=True)
    assert text.startswith("**Not safe by default yet.**")
    assert ("default, ZeroGrad with q = 0.35 and α = 2ε, overfitted catastrophically in "
            "1 of 2 MNIST runs") in text
    assert "None of the 2 ZeroGrad-family recipes studied so far meets" in text
    assert "The safest single-step method in the study is FGSM-RS (`fgsm_rs`)." in text
    # Another recipe meets the target, the default does not: the warning stays.
    text = claim(default_co=True, other_co=False)
    assert text.startswith("**Not safe by default yet.**")
    assert "zerograd_n_fgsm_q0.5 meets the target" in text and "not been switched" in text
    text = claim(default_co=False, other_co=True)
    assert "Not safe" not in text and "default, ZeroGrad with q = 0.35 and α = 2ε, meets" in text


def test_the_readme_names_the_study_method_that_is_zerograd_trains_default():
    """zerograd-train's default recipe builds the model of the plan's
    DEFAULT_METHOD (and `--method zerograd` the paper's recipe that the
    README names): the same class with the same hyperparameters."""
    import sys

    import keras

    from zerograd_tf.runs.config import RunConfig
    from zerograd_tf.runs.pipeline import adversarial_model_class, method_arguments

    sys.path.insert(0, ROOT)
    from benchmarks import readme_tables

    def built(config):
        inputs = keras.Input((4, 4, 1))
        outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        model = adversarial_model_class(config.method)(inputs, outputs,
                                                       **method_arguments(config))
        skip = {"name", "model", "seed", "dtype"}
        return type(model), {k: v for k, v in model.get_config().items() if k not in skip}

    plan = StudyPlan.from_file(f"{ROOT}/benchmarks/studies/co_study_v3.json")
    for name, config in [(readme_tables.DEFAULT_METHOD, RunConfig(epsilon=0.1)),
                         (readme_tables.PAPER_METHOD, RunConfig(epsilon=0.1, method="zerograd"))]:
        assert built(config) == built(RunConfig(epsilon=0.1, **plan.methods[name])), name


def test_the_guide_table_takes_each_method_from_the_newest_study(tmp_path):
    settings = {"mnist": {"dataset": "mnist10k.npz", "fields": {}},
                "cifar10": {"dataset": "cifar10_5k.npz", "fields": {}}}
    sources = []
    z, m = {"method": "zerograd"}, {"method": "multigrad"}
    for name, methods in [("new", {"fgsm_rs": {"method": "fgsm_rs"}, "z": z, "m": m}),
                          ("old", {"z": z, "m": m})]:
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"seeds": 1, "settings": settings, "methods": methods}))
        for method in methods:
            if (name, method) == ("new", "m"):
                continue                      # planned in the new study, not run yet
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
    table = study_docs.guide_table(sources)
    rows = {line.split(" | ")[0].strip("| "): line.strip("| ").split(" | ")
            for line in table.splitlines()[2:]}
    assert rows["z"] == ["z", "0/1", "0.300", "0/1", "0.300", "1.00"]   # one run: no spread
    assert rows["fgsm_rs"][1] == "1/1"
    # Not run in the new study yet: the old study's runs, with one that did not learn; no
    # FGSM-RS there: no cost.
    assert rows["m"] == ["m", "0/1 (1 not learned)", "0.100", "0/1", "0.100",
                         "–"]
    assert "--cost-only" not in table
    # Timed apart (--cost-only) for z and FGSM-RS: z's cost comes from there, and a
    # line under the table says which costs are which.
    for method, seconds in (("z", 1.5), ("fgsm_rs", 1.0)):
        path = tmp_path / "new" / "cost" / "cifar10" / f"{method}_seed0.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cost(method, seconds, "cifar10")))
    table, note = study_docs.guide_table(sources).split("\n\n")
    assert [line for line in table.splitlines() if line.startswith("| z |")] == [
        "| z | 0/1 | 0.300 | 0/1 | 0.300 | 1.50 |"]
    assert note == ("Cost: seconds per epoch on CIFAR-10 against FGSM-RS's, timed apart with "
                    "`co_study.py --cost-only` for z; for the others with a cost, the medians of "
                    "the study runs' own epoch times.")


def test_the_study_carries_each_development_choice_unchanged():
    # The development records choose; the study's plan must hold exactly the
    # chosen method (same name, same fields), and nothing of a variant whose
    # rule chose none.
    dev = StudyPlan.from_file(f"{ROOT}/benchmarks/studies/co_study_v3_dev.json")
    study = StudyPlan.from_file(f"{ROOT}/benchmarks/studies/co_study_v3.json")
    records = study_records.load_records(f"{ROOT}/benchmarks/results/co_study_v3_dev")
    for what, candidates in dev.choices.items():
        chosen, _ = development_choice(records, what, candidates, dev.runs(methods=candidates))
        for method in candidates:
            if method == chosen:
                assert study.methods[method] == dev.methods[method], what
            else:
                assert method not in study.methods, what


def test_the_safest_method_has_the_fewest_failed_runs_in_the_finished_settings():
    expected = runs(["a", "b", "c", "d"], settings=("s", "t"))
    records = [record(m, worst, k, s, co=(m, s, k) == ("a", "t", 1))
               for m, worst in [("a", 0.5), ("b", 0.2), ("c", 0.3), ("d", 0.1)]
               for s in ("s", "t") for k in (0, 1)]
    dead = record("b", 0.4, 1, "s")
    dead["final"]["clean_accuracy"] = 0.05       # did not learn: a failure too
    records = [dead if (r["method"], r["setting"], r["seed"]) == ("b", "s", 1) else r
               for r in records]
    chosen, failures, counted = safest_method(records, ["a", "b", "c", "d"], expected)
    # a overfitted once, b failed to learn once; c and d never failed, c is more robust.
    assert (chosen, counted) == ("c", ["s", "t"])
    assert failures == {"a": (1, 4), "b": (1, 4), "c": (0, 4), "d": (0, 4)}
    # A setting counts once all its single-step runs are in: with one of d's runs in t
    # missing, only s is judged, where a has not failed and is the most robust.
    unfinished = [r for r in records if (r["method"], r["setting"], r["seed"]) != ("d", "t", 1)]
    chosen, failures, counted = safest_method(unfinished, ["a", "b", "c", "d"], expected)
    assert (chosen, counted, failures["a"]) == ("a", ["s"], (0, 2))
    # A third setting that has only begun changes nothing; PGD training is not compared.
    more = expected + runs(["a", "b", "c", "d", "pgd"], settings=("u",))
    started = records + [record("c", 0.9, 0, "u"), record("pgd", 0.9, 0, "s")]
    assert safest_method(started, ["a", "b", "c", "d"], more)[::2] == ("c", ["s", "t"])
    # A method that is not planned in a counted setting is not compared.
    only_s = [run for run in expected if run[1] != "c" or run[0] == "s"]
    assert "c" not in safest_method(records, ["a", "b", "c", "d"], only_s)[1]
    assert safest_method([], ["a"], expected) == (None, {}, [])


def test_a_default_that_misses_the_target_is_called_the_safest_method_only_if_it_is(tmp_path):
    settings = {name: {"dataset": "mnist10k.npz", "fields": {}} for name in ("mnist", "cifar10")}
    plan = {"seeds": 2, "settings": settings,
            "methods": {"fgsm_rs": {"method": "fgsm_rs"},
                        "zerograd_q0.35": {"method": "zerograd", "quantile": 0.35,
                                           "alpha": 2.0},
                        "zerograd_n_fgsm_q0.35": {"method": "zerograd_n_fgsm",
                                                  "quantile": 0.35},
                        "n_fgsm": {"method": "n_fgsm"}, "pgd10": {"method": "pgd"}}}
    (tmp_path / "plan.json").write_text(json.dumps(plan))

    def claim(n_fgsm_mnist_co, paper_co=True, fgsm_rs_co=True):
        worst = {"fgsm_rs": 0.0, "zerograd_q0.35": 0.1, "zerograd_n_fgsm_q0.35": 0.3,
                 "n_fgsm": 0.35, "pgd10": 0.8}
        for setting in settings:
            (tmp_path / "r" / setting).mkdir(parents=True, exist_ok=True)
            for method, value in worst.items():
                for seed in (0, 1):
                    co = (method == "fgsm_rs" and fgsm_rs_co and seed == 0
                          or method == "zerograd_q0.35" and paper_co and seed == 0
                          or method == "n_fgsm" and n_fgsm_mnist_co and setting == "mnist"
                          and seed == 1)
                    path = tmp_path / "r" / setting / f"{method}_seed{seed}.json"
                    path.write_text(json.dumps(record(method, value, seed, setting, co=co)))
        return study_default.default_claim(tmp_path / "plan.json", tmp_path / "r",
                                           "zerograd_n_fgsm_q0.35",
                                           paper_method="zerograd_q0.35")

    # N-FGSM is 5 points ahead but overfitted once: the default is the safest method.
    text = claim(n_fgsm_mnist_co=True)
    assert text.startswith("**No ZeroGrad-family recipe, the default included, meets the target "
                           "for a safe default yet**")
    assert ("`zerograd-train`'s default is the single-step method with the fewest failed "
            "runs (of the 4 compared in CIFAR-10 and MNIST, the settings whose runs have all "
            "finished): ZeroGrad's mask on N-FGSM's step (q = 0.35)") in text
    assert "0 of 2 MNIST runs and 0 of 2 CIFAR-10 runs" in text
    assert "worst case 0.300 ± 0.000 on MNIST (N-FGSM 0.350, 5.0 points higher)" in text
    assert ("The paper's recipe, ZeroGrad with q = 0.35 and α = 2ε (`--method zerograd`), "
            "overfitted catastrophically in 1 of 2 MNIST runs and 1 of 2 CIFAR-10 runs") in text
    assert "as few failed runs" not in text
    # A method as safe but less robust: the claim names it and the tie-break.
    tied = claim(n_fgsm_mnist_co=True, paper_co=False)
    assert ("ZeroGrad with q = 0.35 and α = 2ε had as few failed runs; between the two the rule "
            "takes the higher worst case averaged over the settings.") in tied
    assert "`zerograd-train`'s default is the single-step method with the fewest" in tied
    tied = claim(n_fgsm_mnist_co=True, paper_co=False, fgsm_rs_co=False)
    assert ("2 other methods had as few failed runs (FGSM-RS; ZeroGrad with q = 0.35 and "
            "α = 2ε); among the 3 the rule takes the highest worst case averaged over the "
            "settings.") in tied
    # A setting with a run still to come is not compared yet.
    (tmp_path / "r" / "cifar10" / "n_fgsm_seed1.json").unlink()
    text = study_default.default_claim(tmp_path / "plan.json", tmp_path / "r",
                                       "zerograd_n_fgsm_q0.35", paper_method="zerograd_q0.35")
    assert "(of the 4 compared in MNIST, the one setting whose runs have all finished)" in text
    # A third setting where only the default has begun: its count and worst case say how
    # many of its planned runs they rest on (no spread of one run), the settings are listed.
    (tmp_path / "r" / "cifar10" / "n_fgsm_seed1.json").write_text(json.dumps(
        record("n_fgsm", 0.35, 1, "cifar10")))
    plan["settings"]["cifar10_resnet"] = {"dataset": "cifar10_5k.npz", "seeds": 3,
                                          "fields": {}}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "r" / "cifar10_resnet").mkdir()
    (tmp_path / "r" / "cifar10_resnet" / "zerograd_n_fgsm_q0.35_seed0.json").write_text(
        json.dumps(record("zerograd_n_fgsm_q0.35", 0.25, 0, "cifar10_resnet")))
    text = study_default.default_claim(tmp_path / "plan.json", tmp_path / "r",
                                       "zerograd_n_fgsm_q0.35", paper_method="zerograd_q0.35")
    assert ("0 of 2 MNIST runs, 0 of 2 CIFAR-10 runs and 0 of 1 CIFAR-10 PreAct ResNet-18 "
            "runs so far (3 planned) overfitting") in text
    assert "; 0.250 on CIFAR-10 PreAct ResNet-18 (1 of 3 runs so far)." in text
    assert "± 0.000 on CIFAR-10 PreAct" not in text
    # The other single-step methods all in there: the default's gap to the best beside it.
    for method, worst in [("fgsm_rs", 0.0), ("zerograd_q0.35", 0.1), ("n_fgsm", 0.35)]:
        for seed in (0, 1, 2):
            (tmp_path / "r" / "cifar10_resnet" / f"{method}_seed{seed}.json").write_text(
                json.dumps(record(method, worst, seed, "cifar10_resnet")))
    text = study_default.default_claim(tmp_path / "plan.json", tmp_path / "r",
                                       "zerograd_n_fgsm_q0.35", paper_method="zerograd_q0.35")
    assert ("; 0.250 on CIFAR-10 PreAct ResNet-18 (N-FGSM 0.350, 10.0 points higher; 1 of 3 "
            "runs so far).") in text
    for path in (tmp_path / "r" / "cifar10_resnet").glob("*_seed[12].json"):
        path.unlink()
    # Without that failure N-FGSM is as safe and more robust: the claim says so.
    plan["settings"].pop("cifar10_resnet")
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    text = claim(n_fgsm_mnist_co=False)
    assert text.startswith("**Not safe by default yet.**")
    assert "The safest single-step method in the study is N-FGSM (`n_fgsm`)." in text
