"""The falls table of the study documents (`zerograd_tf.benchmarking.study_falls`)."""

import json

from zerograd_tf.benchmarking import study_falls


def _write(results, setting, method, seed, pgd, fgsm=None, clean=None):
    fgsm = fgsm or [0.4] * len(pgd)
    clean = clean or [0.5 + i / 100 for i in range(len(pgd))]
    record = {"setting": setting, "method": method, "seed": seed,
              "config": {"num_classes": 10},
              "epochs": [{"pgd_accuracy": p, "fgsm_accuracy": f, "clean_accuracy": c}
                         for p, f, c in zip(pgd, fgsm, clean)],
              "final": {"clean_accuracy": 0.8, "robust_accuracy": 0.2},
              "mean_epoch_seconds": 1.0}
    path = results / setting / f"{method}_seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def test_the_deepest_fall_is_measured_from_the_running_best_not_the_previous_epoch():
    # Falls of 0.1 and then 0.05 more: one fall of 0.15 from the peak.
    fall, peak, low = study_falls.deepest_fall([0.2, 0.3, 0.2, 0.15, 0.35, 0.3])
    assert (round(fall, 3), peak, low) == (0.15, 1, 3)
    # Equal falls: the first; a plateau's peak is its first epoch.
    assert study_falls.deepest_fall([0.3, 0.3, 0.1, 0.3, 0.1])[1:] == (0, 2)
    assert study_falls.deepest_fall([0.1]) is None


def test_the_table_counts_falls_recoveries_and_overfitting_in_the_plan_order(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"seeds": 2, "settings": {"s": {}, "other": {}},
                                "methods": {"b": {"method": "fgsm_rs"},
                                            "a": {"method": "n_fgsm"}}}))
    results = tmp_path / "results"
    assert study_falls.falls_table(plan, results, "s") == "No s run has finished yet."
    # a, seed 1: falls 0.2 from epoch 2 to 3 and comes back above it.
    _write(results, "s", "a", 1, [0.1, 0.3, 0.1, 0.35], clean=[0.5, 0.6, 0.12, 0.7])
    # a, seed 0: never falls.
    _write(results, "s", "a", 0, [0.1, 0.2, 0.3])
    # b, seed 0: catastrophic overfitting (PGD-10 collapses while FGSM rises).
    _write(results, "s", "b", 0, [0.2, 0.3, 0.01, 0.02], fgsm=[0.3, 0.4, 0.9, 0.9])
    # b, seed 1: a fall of 0.04 in the last epoch, under the threshold.
    _write(results, "s", "b", 1, [0.2, 0.3, 0.26])
    _write(results, "other", "b", 0, [0.3, 0.0])          # another setting: not shown
    text = study_falls.falls_table(plan, results, "s")
    opening, _, table = text.partition("\n\n")
    assert opening == ("1 of the 4 finished runs overfitted catastrophically by the rule; "
                       "2 fell at least 0.05 below their running best PGD-10 accuracy at "
                       "some epoch, and 1 of those rose again to that best or above.")
    rows = [line.strip("| ").split(" | ") for line in table.splitlines()[2:]]
    assert rows == [
        ["b", "0", "0.290", "0.300 (2)", "0.010 (3)", "0.520", "0.020 (4)", "0.020", "yes"],
        ["b", "1", "0.040", "0.300 (2)", "0.260 (3)", "0.520", "—", "0.260", "no"],
        ["a", "0", "—", "—", "—", "—", "—", "0.300", "no"],
        ["a", "1", "0.200", "0.300 (2)", "0.100 (3)", "0.120", "0.350 (4)", "0.350", "no"]]
