"""A study's run records: loading them, one row per run, the CSV files.

A run record is the JSON file a study writes when a run finishes:
`<results>/<setting>/<method>_seed<k>.json` with `setting`, `method`,
`seed`, `config` (the resolved `RunConfig`), `epochs` (one dict per epoch:
`epoch`, `train_loss`, `train_accuracy`, `clean_accuracy`, `fgsm_accuracy`,
`pgd_accuracy`, `epoch_seconds`, and for ZeroGrad `zeroed_fraction`),
`final` (`evaluate_robustness`'s PGD report), `final_autoattack` (AutoAttack
+ PGD worst case, or `None`), for some mixed-precision runs
`final_autoattack_as_trained` (the same attacks on the model as it
computes), `co_monitor`, `final_quantile`, `mean_epoch_seconds` (the first
epoch of each process left out), for a resumed run `processes` (each
process that worked on it: `from_epoch`, `date`, `machine`), `date` and
`machine` (of the process that finished it).
"""

import csv
import glob
import json
import os

from zerograd_tf import monitoring
from zerograd_tf.evaluation import masking

EPOCH_COLUMNS = ["setting", "method", "seed", "epoch", "train_loss", "train_accuracy",
                 "clean_accuracy", "fgsm_accuracy", "pgd_accuracy", "epoch_seconds"]
RUN_COLUMNS = ["setting", "method", "seed", "epochs", "final_clean_accuracy",
               "final_pgd50_10_accuracy", "final_autoattack_accuracy",
               "final_worst_case_accuracy", "best_pgd10_accuracy", "final_pgd10_accuracy",
               "final_fgsm_accuracy", "catastrophic_overfitting", "did_not_learn",
               "mean_epoch_seconds", "final_quantile", "co_events", "gradient_masking"]


def _load_all(pattern):
    records = []
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            records.append(json.load(f))
    return records


def record_path(results, setting, method, seed):
    """Where a study writes one run's record: `<results>/<setting>/<method>_seed<seed>.json`."""
    return os.path.join(results, setting, f"{method}_seed{seed}.json")


def load_records(results):
    """Every finished run's record under the folder `results`, sorted by path."""
    return _load_all(os.path.join(results, "*", "*_seed*.json"))


def load_costs(results):
    """The cost-only records (`<results>/cost/<setting>/*_seed*.json`)."""
    return _load_all(os.path.join(results, "cost", "*", "*_seed*.json"))


def did_not_learn(record):
    """Whether a run ended no better than chance on clean data.

    Its final clean accuracy is below 1.5 times chance (1 / classes). Such a
    model (e.g. one whose units all died and that predicts one class whatever
    the input) has equal clean and robust accuracy, near the class prior, so
    its "robust accuracy" means nothing; the summaries count these runs.

    Args:
        record: a run record (see the module docstring).

    Returns:
        bool.
    """
    chance = 1.0 / record["config"]["num_classes"]
    return record["final"]["clean_accuracy"] < 1.5 * chance


def _autoattack_accuracy(record):
    """AutoAttack's robust accuracy alone (after its last member), if run."""
    strongest = record.get("final_autoattack")
    if not strongest:
        return None
    members = [e for e in strongest["attacks"] if e["name"] != "pgd"]
    return members[-1]["robust_accuracy"]


def gradient_masking(record):
    """Whether the final evaluation showed a sign of gradient masking.

    Square, run after every gradient attack on the examples they left
    robust, broke more of them than chance explains
    (`zerograd_tf.evaluation.masking.gradient_masking`, the rule the
    evaluation applies; computed from Square's counts, so records written
    before the evaluation stored the flag are judged alike). The worst case
    counts Square's breaks, but a model that masks gradients may be weaker
    still than every attack found.

    Args:
        record: a run record.

    Returns:
        bool, or `None` without a final AutoAttack that ran Square.
    """
    square = next((e for e in (record.get("final_autoattack") or {}).get("attacks", [])
                   if e["name"] == "square" and "num_attacked" in e), None)
    if square is None:
        return None
    return masking.gradient_masking(square["num_broken"], square["num_attacked"])


def run_row(record):
    """One run's numbers (`RUN_COLUMNS`) from its record.

    Catastrophic overfitting is decided here, from the stored per-epoch
    accuracies, by `zerograd_tf.monitoring.catastrophic_overfitting`; the
    worst case is AutoAttack + PGD per example (`None` for a run without it).

    Example:

    >>> from zerograd_tf.benchmarking.study_records import run_row
    >>> epochs = [{"pgd_accuracy": p, "fgsm_accuracy": f}
    ...           for p, f in [(0.3, 0.4), (0.4, 0.5), (0.01, 0.9)]]
    >>> record = {"setting": "mnist", "method": "fgsm_rs", "seed": 0,
    ...           "config": {"num_classes": 10}, "epochs": epochs,
    ...           "final": {"clean_accuracy": 0.98, "robust_accuracy": 0.0},
    ...           "mean_epoch_seconds": 2.0}
    >>> row = run_row(record)
    >>> row["catastrophic_overfitting"], row["best_pgd10_accuracy"]
    (True, 0.4)
    """
    pgd = [e["pgd_accuracy"] for e in record["epochs"]]
    fgsm = [e["fgsm_accuracy"] for e in record["epochs"]]
    return {
        "setting": record["setting"], "method": record["method"], "seed": record["seed"],
        "epochs": len(record["epochs"]),
        "final_clean_accuracy": record["final"]["clean_accuracy"],
        "final_pgd50_10_accuracy": record["final"]["robust_accuracy"],
        "final_autoattack_accuracy": _autoattack_accuracy(record),
        "final_worst_case_accuracy": (record.get("final_autoattack") or {}).get(
            "robust_accuracy"),
        "best_pgd10_accuracy": max(pgd),
        "final_pgd10_accuracy": pgd[-1],
        "final_fgsm_accuracy": fgsm[-1],
        "catastrophic_overfitting": monitoring.catastrophic_overfitting(pgd, fgsm),
        "did_not_learn": did_not_learn(record),
        "mean_epoch_seconds": record["mean_epoch_seconds"],
        "final_quantile": record.get("final_quantile"),
        "co_events": sum(len(m["events"]) for m in record.get("co_monitor") or []),
        "gradient_masking": gradient_masking(record),
    }


# What a run trained, epoch by epoch (the epoch's seconds aside).
TRAINED_KEYS = ("train_loss", "train_accuracy", "clean_accuracy", "fgsm_accuracy",
                "pgd_accuracy")


def reproduction(record, again):
    """How a run trained again (`again`) compares with its record.

    Args:
        record: the run's record.
        again: the record of the same run trained again (same fields, same
            seed), e.g. with later code.

    Returns:
        A dict: `run` (setting, method, seed), `epochs_identical` (every
        per-epoch accuracy and loss equal), `worst_case` and `pgd50_10`
        (`[recorded, again]` final accuracies) and the `config_differences`
        (field: `[recorded, again]`).

    Example:

    >>> from zerograd_tf.benchmarking.study_records import reproduction
    >>> run = {"setting": "m", "method": "f", "seed": 0, "config": {"epochs": 2},
    ...        "epochs": [{"train_loss": 1.0, "pgd_accuracy": 0.2}],
    ...        "final": {"robust_accuracy": 0.1}, "final_autoattack": None}
    >>> reproduction(run, {**run, "config": {"epochs": 2, "precision": "float32"}})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'run': ['m', 'f', 0], 'epochs_identical': True, 'worst_case': [None, None],
     'pgd50_10': [0.1, 0.1], 'config_differences': {'precision': [None, 'float32']}}
    """
    def worst(r):
        return (r.get("final_autoattack") or {}).get("robust_accuracy")

    identical = len(record["epochs"]) == len(again["epochs"]) and all(
        a.get(k) == b.get(k) for a, b in zip(record["epochs"], again["epochs"])
        for k in TRAINED_KEYS)
    keys = sorted(set(record["config"]) | set(again["config"]))
    return {"run": [record["setting"], record["method"], record["seed"]],
            "epochs_identical": identical, "worst_case": [worst(record), worst(again)],
            "pgd50_10": [record["final"]["robust_accuracy"], again["final"]["robust_accuracy"]],
            "config_differences": {k: [record["config"].get(k), again["config"].get(k)]
                                   for k in keys
                                   if record["config"].get(k) != again["config"].get(k)}}


def write_csv(records, results):
    """`<results>/epochs.csv` (one row per run and epoch) and
    `<results>/runs.csv` (one row per run, `run_row`)."""
    with open(os.path.join(results, "epochs.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, EPOCH_COLUMNS)
        writer.writeheader()
        for r in records:
            for row in r["epochs"]:
                writer.writerow({"setting": r["setting"], "method": r["method"],
                                 "seed": r["seed"], **{k: row[k] for k in EPOCH_COLUMNS[3:]}})
    with open(os.path.join(results, "runs.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, RUN_COLUMNS)
        writer.writeheader()
        for r in records:
            writer.writerow(run_row(r))
