"""The documents' study tables (`zerograd_tf.benchmarking.study_docs`)."""

import json

from test_study_choices import record

from zerograd_tf.benchmarking import study_docs


def test_the_step_size_table_sets_each_method_beside_itself_at_the_other_step(tmp_path):
    settings = {"mnist": {"dataset": "mnist10k.npz", "fields": {}},
                "cifar10": {"dataset": "cifar10_5k.npz", "fields": {}},
                "empty": {"dataset": "cifar10_5k.npz", "fields": {}}}
    methods = {"fgsm_rs": {"method": "fgsm_rs"},
               "fgsm_rs_a1.25": {"method": "fgsm_rs", "alpha": 1.25},
               "zerograd_q0.5": {"method": "zerograd", "quantile": 0.5},
               "zerograd_q0.7": {"method": "zerograd", "quantile": 0.7},
               "zerograd_q0.5_a1.25": {"method": "zerograd", "quantile": 0.5, "alpha": 1.25},
               "n_fgsm": {"method": "n_fgsm"},
               "zerograd_n_fgsm_q0.35": {"method": "zerograd_n_fgsm", "quantile": 0.35},
               "zerograd_n_fgsm_q0.35_a1.5": {"method": "zerograd_n_fgsm", "quantile": 0.35,
                                              "alpha": 1.5},
               # Variants of a method that are other methods: never paired.
               "fgsm_rs_early_stop": {"method": "fgsm_rs", "alpha": 1.25,
                                      "co_monitor": "stop"},
               "zerograd_auto": {"method": "zerograd", "quantile": "auto"},
               "zerograd_auto_a1.25": {"method": "zerograd", "quantile": "auto",
                                       "alpha": 1.25}}
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"seeds": 2, "settings": settings, "methods": methods}))
    assert study_docs.step_size_table(plan, tmp_path / "results").startswith("No method")

    def write(setting, method, seed, worst, co=False, clean=0.8):
        run = record(method, worst, seed, setting, co=co)
        alpha = {"zerograd_n_fgsm": 1.0}.get(methods[method]["method"], 2.0)
        run["config"] = {"num_classes": 10, "alpha": alpha, **methods[method]}
        run["final"]["clean_accuracy"] = clean
        path = tmp_path / "results" / setting / f"{method}_seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run))

    for method in methods:
        write("cifar10", method, 0, 0.1, co=method == "fgsm_rs")
        write("cifar10", method, 1, 0.3, clean=0.1 if method == "fgsm_rs_a1.25" else 0.8)
    write("mnist", "zerograd_q0.5", 0, 0.2)
    write("mnist", "zerograd_q0.5_a1.25", 0, 0.2)
    write("mnist", "fgsm_rs", 0, 0.2)                     # no 1.25 eps run yet: no row
    lines = study_docs.step_size_table(plan, tmp_path / "results").splitlines()
    rows = [line.strip("| ").split(" | ") for line in lines[4:]]
    # The plan's setting order; one row per step size, the smaller first; a
    # method that ran at one step size only (N-FGSM, q = 0.7) has none.
    assert [line.split(" | ")[:3] for line in lines[2:4]] == [
        ["| MNIST", "ZeroGrad q = 0.5", "1.25ε"], ["| MNIST", "ZeroGrad q = 0.5", "2ε"]]
    assert [row[:3] for row in rows] == [
        ["CIFAR-10", "FGSM-RS", "1.25ε"], ["CIFAR-10", "FGSM-RS", "2ε"],
        ["CIFAR-10", "ZeroGrad q = 0.5", "1.25ε"], ["CIFAR-10", "ZeroGrad q = 0.5", "2ε"],
        ["CIFAR-10", "ZeroGrad on N-FGSM, q = 0.35", "1ε"],
        ["CIFAR-10", "ZeroGrad on N-FGSM, q = 0.35", "1.5ε"]]
    # The early-stopping runs (also at 1.25 eps) are not among FGSM-RS's.
    assert rows[0][3:] == ["2", "0/2 (1 not learned)", "0.200 ± 0.141", "0.300 ± 0.000",
                           "0.300 ± 0.000"]
    assert rows[1][3:5] == ["2", "1/2"]
    assert rows[1][6:] == ["0.300 ± 0.000", "0.155 ± 0.205"]
