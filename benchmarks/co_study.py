"""The catastrophic-overfitting (CO) study: which methods collapse, over seeds.

    python benchmarks/co_study.py                      # both settings, every method, 5 seeds
    python benchmarks/co_study.py --settings mnist --methods fgsm_rs zerograd_q0.35
    python benchmarks/co_study.py --settings custom --dataset cifar10 --model preact_resnet18 \
        --epsilon 8/255 --epochs 30 --optimizer sgd --lr-schedule cyclic --lr-max 0.2

Every run trains one method with one seed, measuring after each epoch the
clean, FGSM and PGD-10 accuracy on a fixed monitoring subset (the first 500
test examples), and at the end PGD-50-10 and AutoAttack (worst case per
example with PGD-50-10) on the whole test split. The methods that act on
catastrophic overfitting during training (`zerograd_auto`,
`fgsm_rs_early_stop`) check the held-out validation split, never the
test examples. Each finished run is written to
`<results>/<setting>/<method>_seed<k>.json` with its final weights in
`<results>/<setting>/weights/` (not committed: too large); a restarted
study skips the finished runs and trains an unfinished one afresh.
After every run, `epochs.csv` (one row per run and epoch), `runs.csv`,
`summary.md` and the plots are regenerated from all finished runs.

The study's epoch times are rough when other work shares the machine.
`--cost-only` (e.g. `--settings mnist --methods fgsm_rs zerograd_auto
--cost-only`, on a quiet machine) trains the same runs again without the
per-epoch measurement or the final evaluation, timing only their epochs
(the CO callbacks' checks included) into `<results>/cost/`; the
`zerograd_auto` target's cost then comes from those runs.

The CO rule (`zerograd_tf.monitoring.catastrophic_overfitting`): a run has
catastrophically overfitted when its final PGD-10 accuracy is below half of
the best PGD-10 accuracy of its earlier epochs while its final FGSM accuracy
is above that best value, which must be at least 5 %. The summaries apply the
rule to the stored per-epoch accuracies, so they always follow this text.
"""

import argparse
import csv
import datetime
import glob
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A program's own environment, before TensorFlow is imported (user values kept).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zerograd_tf as zg  # noqa: E402
from zerograd_tf import io_utils  # noqa: E402
from zerograd_tf import datasets, monitoring  # noqa: E402
from zerograd_tf.runs import options, pipeline, training  # noqa: E402
from zerograd_tf.runs.config import RunConfig  # noqa: E402
from benchmarks import environment  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# Many models per process: TensorFlow's retracing warnings are expected here.
tf.get_logger().setLevel("ERROR")
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))

# The two settings of the study, as `RunConfig` fields. Both hold out 500
# training examples (fixed split, seed 0) for the methods that check for CO
# during training; the per-epoch monitor uses the first 500 test examples,
# the final evaluation all of them.
# GradAlign's lambda per setting was chosen before the study from the
# reference's guidance (lambda grows with epsilon: 0.2 at 8/255 and 2.0 at
# 16/255 on CIFAR-10) and one trial run each (seed 0: it trained and did
# not overfit); see the README.
SETTINGS = {
    # MNIST: small_cnn, eps = 0.25, cyclic Adam peaking at 5e-3, 10 epochs;
    # 7,500 train / 500 held out; final evaluation on all 2,000 test digits.
    "mnist": {
        "dataset": "mnist10k.npz", "monitor_split": "test",
        "fields": dict(model="small_cnn", epsilon=0.25, epochs=10, optimizer="adam",
                       lr_schedule="cyclic", lr_max=5e-3, weight_decay=0.0, batch_size=128,
                       val_size=500),
        "method_fields": {"gradalign": dict(gradalign_lambda=1.0)},
    },
    # CIFAR-10 subset (no test split): 4,085 train / 1,000 held out, of
    # which the first 500 are the test examples (monitor and final
    # evaluation) and the other 500 the held-out split of the methods that
    # check for CO; conv3 (64-128-256), eps = 16/255, Adam at a constant
    # 2e-3, 15 epochs.
    "cifar10": {
        "dataset": "cifar10_5k.npz", "monitor_split": "test", "test_from_held_out": 500,
        "fields": dict(model="conv3", epsilon=16 / 255, epochs=15, optimizer="adam",
                       lr_schedule="constant", lr_max=2e-3, weight_decay=0.0, batch_size=128,
                       val_size=1000, augment=False),
        "method_fields": {"gradalign": dict(gradalign_lambda=2.0)},
    },
}

# The settings of the first study (`results/co_study/`, PGD-50-10 only),
# which `robust_eval.py` and `diagnostics_figure.py` reproduce: MNIST trained
# on all 8,000 examples, CIFAR-10 monitored on its held-out split.
SETTINGS_V1 = {
    "mnist": {**SETTINGS["mnist"], "fields": {**SETTINGS["mnist"]["fields"], "val_size": 0}},
    "cifar10": {**{k: v for k, v in SETTINGS["cifar10"].items() if k != "test_from_held_out"},
                "monitor_split": "validation",
                "fields": {**SETTINGS["cifar10"]["fields"], "val_size": 500}},
}

# Methods: alpha = 2 eps for FGSM-RS and ZeroGrad (the reference's setting);
# MultiGrad (any alpha >= eps is a full step) and N-FGSM (alpha = eps, noise
# 2 eps) use their own defaults; PGD-10 training warms epsilon up over the
# first third of the epochs.
METHODS = {
    "clean": dict(method="clean"),
    "fgsm_rs": dict(method="fgsm_rs", alpha=2.0),
    "zerograd_q0.35": dict(method="zerograd", quantile=0.35, alpha=2.0),
    "zerograd_q0.5": dict(method="zerograd", quantile=0.5, alpha=2.0),
    "zerograd_q0.7": dict(method="zerograd", quantile=0.7, alpha=2.0),
    "zerograd_q0.9": dict(method="zerograd", quantile=0.9, alpha=2.0),
    "zerograd_auto": dict(method="zerograd", quantile="auto", alpha=2.0),
    "multigrad": dict(method="multigrad", samples=3),
    "n_fgsm": dict(method="n_fgsm"),
    "gradalign": dict(method="gradalign"),
    # Early stopping (Wong et al., 2020) with the detector of zerograd_auto:
    # every 20 steps, 128 held-out examples (512 confirm), PGD-5.
    "fgsm_rs_early_stop": dict(method="fgsm_rs", alpha=2.0, co_monitor="stop",
                               co_frequency=20, co_size=512, co_check_size=128,
                               co_pgd_steps=5),
    "pgd10": dict(method="pgd", pgd_steps=10),
}

# Seeds per method and setting.
SEEDS = 5

EPOCH_COLUMNS = ["setting", "method", "seed", "epoch", "train_loss", "train_accuracy",
                 "clean_accuracy", "fgsm_accuracy", "pgd_accuracy", "epoch_seconds"]
RUN_COLUMNS = ["setting", "method", "seed", "epochs", "final_clean_accuracy",
               "final_pgd50_10_accuracy", "final_autoattack_accuracy",
               "final_worst_case_accuracy", "best_pgd10_accuracy", "final_pgd10_accuracy",
               "final_fgsm_accuracy", "catastrophic_overfitting", "did_not_learn",
               "mean_epoch_seconds", "final_quantile", "co_events"]


class EpochMonitor(keras.callbacks.Callback):
    """Times each epoch's training and then measures clean/FGSM/PGD-10 accuracy."""

    def __init__(self, x, y, epsilon, pgd_steps=10, seed=0):
        super().__init__()
        self.x, self.y, self.epsilon = x, y, epsilon
        self.pgd_steps, self.seed = pgd_steps, seed
        self.rows = []
        self._start = None
        self._meter = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        if self._meter is None:
            self._meter = monitoring.AttackMeter(self.model, self.epsilon,
                                                 pgd_steps=self.pgd_steps)
        measured = self._meter(self.x, self.y, self.seed)
        logs = logs or {}
        self.rows.append({
            "epoch": epoch + 1,
            "train_loss": float(logs.get("loss", float("nan"))),
            "train_accuracy": float(logs.get("accuracy", float("nan"))),
            **{k: float(v) for k, v in measured.items()},
            "epoch_seconds": seconds,
        })


class EpochTimer(keras.callbacks.Callback):
    """Times each epoch (for `--cost-only`: no measurement after it)."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", default=["mnist", "cifar10"],
                        choices=[*SETTINGS, "custom"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", type=int, default=SEEDS, help=f"seeds 0..N-1 ({SEEDS})")
    parser.add_argument("--data-dir", default=SHARED,
                        help="folder of mnist10k.npz and cifar10_5k.npz (../shared/data)")
    parser.add_argument("--results", default=os.path.join(HERE, "results", "co_study_v2"))
    parser.add_argument("--dataset", default=None,
                        help="custom setting: an .npz path or TFDS name")
    parser.add_argument("--monitor-size", type=int, default=500)
    parser.add_argument("--monitor-pgd-steps", type=int, default=10)
    parser.add_argument("--final-steps", type=int, default=50)
    parser.add_argument("--final-restarts", type=int, default=10)
    parser.add_argument("--final-apgd-steps", type=int, default=100)
    parser.add_argument("--final-square-queries", type=int, default=5000)
    parser.add_argument("--no-autoattack", action="store_true",
                        help="skip the final AutoAttack (+ PGD) worst-case evaluation")
    parser.add_argument("--final-size", type=int, default=None,
                        help="evaluate the first N examples of the evaluation split only")
    parser.add_argument("--train-size", type=int, default=None,
                        help="train on the first N examples only (smoke tests)")
    parser.add_argument("--no-plots", dest="plots", action="store_false")
    parser.add_argument("--tables-only", action="store_true",
                        help="only regenerate the tables and plots from the finished runs")
    parser.add_argument("--cost-only", action="store_true",
                        help="only time the training epochs (no measurement, no evaluation) "
                             "into <results>/cost/, on a quiet machine: the zerograd_auto "
                             "target's cost then comes from these runs")
    parser.add_argument("flags", nargs=argparse.REMAINDER,
                        help="after '--': zerograd-train flags overriding the setting's")
    return parser


def setting_fields(name, args, settings=None):
    """`(dataset, monitor split, RunConfig fields)` of a setting (of
    `settings`, default `SETTINGS`)."""
    if name == "custom":
        if not args.dataset:
            raise SystemExit("co_study: --settings custom needs --dataset")
        return args.dataset, "test", {}
    setting = (settings or SETTINGS)[name]
    dataset = args.dataset or os.path.join(args.data_dir, setting["dataset"])
    if setting["dataset"] == "mnist10k.npz" and not os.path.exists(dataset) and not args.dataset:
        dataset = datasets.embedded_path()  # the same 10,000 digits, shipped with the package
    return dataset, setting["monitor_split"], dict(setting["fields"])


def overrides(args):
    """The RunConfig fields that the zerograd-train flags after '--' set."""
    return options.explicit_fields(options.config_parser("zerograd-train"),
                                   [f for f in args.flags if f != "--"])


def run_config(data, fields, method, seed, extra, method_fields=None):
    """The resolved `RunConfig` of one run of the study."""
    return RunConfig(**{**fields, **METHODS[method], **(method_fields or {}).get(method, {}),
                        "dataset": data.name, "seed": seed, "val_pgd_steps": 0,
                        **extra}).resolved(data)


def study_config(setting, method, seed, data, fields, args):
    """The resolved `RunConfig` of one run of the study."""
    return run_config(data, fields, method, seed, overrides(args),
                      SETTINGS.get(setting, {}).get("method_fields"))


def train_run(config, data, timer):
    """Trains one run of the study with `timer` (a callback that times the
    epochs) last; returns `(model, the acting CO callbacks)`."""
    keras.backend.clear_session()
    model = pipeline.build_model(config, data)
    # The CO monitor of zerograd_auto / early stopping (on the validation
    # split) comes first: its checks are timed as part of the epoch.
    scratch = tempfile.mkdtemp(prefix="co_study-")
    acting = training.monitor_callbacks(config, data, scratch, logdir=None)
    pipeline.fit(model, config, data, callbacks=[*acting, timer])
    shutil.rmtree(scratch, ignore_errors=True)
    return model, acting


def cost_one(setting, method, seed, data, fields, args):
    """Times one run's training epochs alone (checks of the CO callbacks
    included) into `<results>/cost/<setting>/<method>_seed<seed>.json`."""
    path = os.path.join(args.results, "cost", setting, f"{method}_seed{seed}.json")
    if os.path.exists(path):
        return False
    config = study_config(setting, method, seed, data, fields, args)
    timer = EpochTimer()
    _, acting = train_run(config, data, timer)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    io_utils.write_json_atomic(path, {
        "setting": setting, "method": method, "seed": seed, "epoch_seconds": timer.seconds,
        # The first epoch includes tracing and compilation, as in the study.
        "mean_epoch_seconds": statistics.fmean(timer.seconds[1:] or timer.seconds),
        "co_monitor": [{"checks": len(m.checks), "events": m.events} for m in acting],
        "machine": environment.machine()})
    return True


def load_costs(results):
    """The `--cost-only` records under `results`."""
    costs = []
    for path in sorted(glob.glob(os.path.join(results, "cost", "*", "*_seed*.json"))):
        with open(path) as f:
            costs.append(json.load(f))
    return costs


def run_one(setting, method, seed, data, fields, args, monitor, evaluation):
    path = os.path.join(args.results, setting, f"{method}_seed{seed}.json")
    if os.path.exists(path):
        return False
    config = study_config(setting, method, seed, data, fields, args)
    monitor_cb = EpochMonitor(*monitor, config.epsilon, args.monitor_pgd_steps, seed)
    model, acting = train_run(config, data, monitor_cb)
    x_eval, y_eval = evaluation
    final = zg.evaluate_robustness(model, (x_eval, y_eval), config.epsilon,
                                   steps=args.final_steps, restarts=args.final_restarts,
                                   seed=seed)
    # AutoAttack first (its own number after its last member), then PGD-50-10
    # on what it left: the last entry is the worst case per example.
    strongest = None
    if not args.no_autoattack:
        strongest = zg.evaluate_robustness(
            model, (x_eval, y_eval), config.epsilon, attack=["autoattack", "pgd"],
            steps=args.final_steps, restarts=args.final_restarts, seed=seed,
            apgd_steps=args.final_apgd_steps, square_queries=args.final_square_queries)
    weights_dir = os.path.join(args.results, setting, "weights")
    os.makedirs(weights_dir, exist_ok=True)
    model.save_weights(os.path.join(weights_dir, f"{method}_seed{seed}.weights.h5"))
    rows = monitor_cb.rows
    pgd = [r["pgd_accuracy"] for r in rows]
    fgsm = [r["fgsm_accuracy"] for r in rows]
    record = {
        "setting": setting, "method": method, "seed": seed, "config": config.to_dict(),
        "epochs": rows,
        "final": {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                  for k, v in final.items()},
        "final_autoattack": strongest,
        "co_monitor": [{"checks": len(m.checks), "events": m.events} for m in acting],
        "final_quantile": getattr(model, "quantile", None),
        "catastrophic_overfitting": monitoring.catastrophic_overfitting(pgd, fgsm),
        "mean_epoch_seconds": statistics.fmean(r["epoch_seconds"] for r in rows[1:] or rows),
        "date": datetime.date.today().isoformat(),
        "machine": environment.machine(),
    }
    io_utils.write_json_atomic(path, record)
    return True


def load_records(results):
    records = []
    for path in sorted(glob.glob(os.path.join(results, "*", "*_seed*.json"))):
        with open(path) as f:
            records.append(json.load(f))
    return records


def _mean_std(values):
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {std:.3f}"


def write_tables(records, results):
    """epochs.csv, runs.csv and summary.md from all finished runs."""
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
    text = summary(records, load_costs(results))
    with open(os.path.join(results, "summary.md"), "w") as f:
        f.write(text)
    return text


def summary(records, costs=()):
    """The Markdown summary of finished runs: a table per setting, and the
    zerograd_auto target (its cost from `costs`, the `--cost-only` runs,
    when they time both it and FGSM-RS)."""
    lines = []
    for setting in sorted({r["setting"] for r in records}):
        subset = [r for r in records if r["setting"] == setting]
        base = [r["mean_epoch_seconds"] for r in subset if r["method"] == "fgsm_rs"]
        base_time = statistics.median(base) if base else None
        lines += [f"**Setting: {setting}**", "",
                  "| method | runs | CO rate | not learned | final AutoAttack + PGD-50-10 "
                  "(worst case) | final PGD-50-10 | final clean | best PGD-10 | final PGD-10 "
                  "| s / epoch | cost × FGSM-RS |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for method in [m for m in METHODS if any(r["method"] == m for r in subset)]:
            runs = [run_row(r) for r in subset if r["method"] == method]
            co = sum(r["catastrophic_overfitting"] for r in runs)
            dead = sum(r["did_not_learn"] for r in runs)
            seconds = statistics.median(r["mean_epoch_seconds"] for r in runs)
            cost = f"{seconds / base_time:.2f}" if base_time else "–"
            worst = [r["final_worst_case_accuracy"] for r in runs
                     if r["final_worst_case_accuracy"] is not None]
            lines.append(
                f"| {method} | {len(runs)} | {co}/{len(runs)} | {dead}/{len(runs)} | "
                f"{_mean_std(worst)} | "
                f"{_mean_std([r['final_pgd50_10_accuracy'] for r in runs])} | "
                f"{_mean_std([r['final_clean_accuracy'] for r in runs])} | "
                f"{_mean_std([r['best_pgd10_accuracy'] for r in runs])} | "
                f"{_mean_std([r['final_pgd10_accuracy'] for r in runs])} | "
                f"{seconds:.1f} | {cost} |")
        lines += ["", *auto_target(subset, base_time,
                                   [c for c in costs if c["setting"] == setting]), ""]
    return "\n".join(lines)


def auto_target(records, base_time, costs=()):
    """The zerograd_auto target of one setting, as met/missed lines.

    Target: no catastrophic overfitting in any run; final worst-case
    (AutoAttack + PGD-50-10) accuracy within one standard deviation of the
    best fixed quantile's (the `zerograd_q*` method with the highest mean);
    cost per epoch, checks included, at most 1.3 x FGSM-RS's - from the
    `--cost-only` runs of both methods (`costs`) when there are any, else
    from the study's own epoch times.
    """
    rows = [run_row(r) for r in records]
    auto = [r for r in rows if r["method"] == "zerograd_auto"]
    if not auto:
        return []
    worst = lambda runs: [r["final_worst_case_accuracy"] for r in runs  # noqa: E731
                          if r["final_worst_case_accuracy"] is not None]
    fixed = {}
    for r in rows:
        if r["method"].startswith("zerograd_q"):
            fixed.setdefault(r["method"], []).append(r)
    lines = [f"zerograd_auto target ({len(auto)} runs):"]
    co = sum(r["catastrophic_overfitting"] for r in auto)
    lines.append(f"- catastrophic overfitting in {co}/{len(auto)} runs (target 0): "
                 f"{'met' if co == 0 else 'missed'}")
    scored = {m: worst(runs) for m, runs in fixed.items() if worst(runs)}
    if scored and worst(auto):
        best = max(scored, key=lambda m: statistics.fmean(scored[m]))
        values = scored[best]
        mean, std = statistics.fmean(values), (statistics.stdev(values)
                                              if len(values) > 1 else 0.0)
        ours = statistics.fmean(worst(auto))
        lines.append(f"- worst-case accuracy {_mean_std(worst(auto))} vs the best fixed "
                     f"quantile ({best}) {_mean_std(values)} (target: at least "
                     f"{mean - std:.3f}, one standard deviation below its mean): "
                     f"{'met' if ours >= mean - std else 'missed'}")
    timed = {m: [c["mean_epoch_seconds"] for c in costs if c["method"] == m]
             for m in ("zerograd_auto", "fgsm_rs")}
    if all(timed.values()):
        cost = statistics.median(timed["zerograd_auto"]) / statistics.median(timed["fgsm_rs"])
        dates = sorted({c["machine"]["date"] for c in costs})
        source = (f"timed apart with --cost-only, {len(timed['zerograd_auto'])} and "
                  f"{len(timed['fgsm_rs'])} runs, {', '.join(dates)}")
    elif base_time:
        cost = statistics.median(r["mean_epoch_seconds"] for r in auto) / base_time
        source = "the study's epoch times"
    else:
        cost = None
    if cost is not None:
        lines.append(f"- cost {cost:.2f} x FGSM-RS per epoch, checks included ({source}; "
                     f"target 1.30): {'met' if cost <= 1.3 else 'missed'}")
    quantiles = sorted(r["final_quantile"] for r in auto if r["final_quantile"] is not None)
    if quantiles:
        lines.append("- final quantiles: " + ", ".join(f"{q:.2f}" for q in quantiles))
    return lines


def did_not_learn(record):
    """A run that ended no better than chance on clean data.

    Its final clean accuracy is below 1.5 times chance (1 / classes). Such a
    model (e.g. one whose units all died and that predicts one class whatever
    the input) has equal clean and robust accuracy, near the class prior, so
    its "robust accuracy" means nothing; the summary counts these runs.
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


def run_row(record):
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
        "final_fgsm_accuracy": record["epochs"][-1]["fgsm_accuracy"],
        "catastrophic_overfitting": monitoring.catastrophic_overfitting(pgd, fgsm),
        "did_not_learn": did_not_learn(record),
        "mean_epoch_seconds": record["mean_epoch_seconds"],
        "final_quantile": record.get("final_quantile"),
        "co_events": sum(len(m["events"]) for m in record.get("co_monitor") or []),
    }


def write_plots(records, results):
    """PGD-10 accuracy per epoch for every seed and method; robustness vs cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for setting in sorted({r["setting"] for r in records}):
        subset = [r for r in records if r["setting"] == setting]
        methods = [m for m in METHODS if any(r["method"] == m for r in subset)]
        columns = min(3, len(methods))
        rows = -(-len(methods) // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows),
                                 squeeze=False, sharey=True)
        for ax, method in zip(axes.flat, methods):
            for r in [r for r in subset if r["method"] == method]:
                epochs = [e["epoch"] for e in r["epochs"]]
                line, = ax.plot(epochs, [e["pgd_accuracy"] for e in r["epochs"]],
                                label=f"seed {r['seed']}")
                ax.plot(epochs, [e["fgsm_accuracy"] for e in r["epochs"]], ls=":",
                        color=line.get_color(), alpha=0.6)
            ax.set_title(method)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        for ax in axes[:, 0]:
            ax.set_ylabel("accuracy (PGD-10 solid, FGSM dotted)")
        for ax in list(axes.flat)[len(methods):]:
            ax.axis("off")
        fig.suptitle(f"{setting}: validation accuracy per epoch, every seed")
        fig.tight_layout()
        path = os.path.join(results, f"pgd_per_epoch_{setting}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)

        base = [r["mean_epoch_seconds"] for r in subset if r["method"] == "fgsm_rs"]
        base_time = statistics.median(base) if base else 1.0
        fig, ax = plt.subplots(figsize=(6, 4))
        for method in methods:
            runs = [run_row(r) for r in subset if r["method"] == method]
            cost = statistics.median(r["mean_epoch_seconds"] for r in runs) / base_time
            accs = [r["final_worst_case_accuracy"] for r in runs]
            if None in accs:  # a run without the AutoAttack evaluation
                accs = [r["final_pgd50_10_accuracy"] for r in runs]
            std = statistics.stdev(accs) if len(accs) > 1 else 0.0
            ax.errorbar(cost, statistics.fmean(accs), yerr=std, fmt="o", capsize=3)
            ax.annotate(method, (cost, statistics.fmean(accs)), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
        ax.set_xlabel("cost per epoch (× FGSM-RS)" if base else "seconds per epoch")
        ax.set_ylabel("final worst-case accuracy (AutoAttack + PGD-50-10)")
        ax.set_title(f"{setting}: robustness vs cost (mean ± std over seeds)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = os.path.join(results, f"robustness_vs_cost_{setting}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.makedirs(args.results, exist_ok=True)
    if args.tables_only:
        records = load_records(args.results)
        print(write_tables(records, args.results))
        if args.plots and records:
            write_plots(records, args.results)
        return 0
    plan = []
    loaded = {}
    for setting in args.settings:
        dataset, monitor_split, fields = setting_fields(setting, args)
        val_size = {**fields, **overrides(args)}.get("val_size", RunConfig.val_size)
        data = datasets.load_image_data(dataset, val_size=val_size, seed=0)
        test_size = SETTINGS.get(setting, {}).get("test_from_held_out")
        if test_size and not data.has_test:
            # Data without a test split: the first held-out examples are the
            # test examples, the rest the held-out split of CO checks.
            data.x_test, data.y_test = data.x_val[:test_size], data.y_val[:test_size]
            data.x_val, data.y_val = data.x_val[test_size:], data.y_val[test_size:]
        if args.train_size:
            data.x_train, data.y_train = data.x_train[:args.train_size], data.y_train[:args.train_size]
        x_eval, y_eval, _ = data.evaluation_split()
        if monitor_split == "validation" and data.x_val is not None and len(data.x_val):
            x_mon, y_mon = data.x_val, data.y_val
        else:
            x_mon, y_mon = x_eval, y_eval
        unit = lambda a: a.astype(np.float32) / 255 if a.dtype == np.uint8 else a  # noqa: E731
        monitor = (unit(x_mon[:args.monitor_size]), y_mon[:args.monitor_size])
        final_size = args.final_size or len(x_eval)
        evaluation = (unit(x_eval[:final_size]), y_eval[:final_size])
        loaded[setting] = (data, fields, monitor, evaluation)
        plan += [(setting, m, s) for s in range(args.seeds) for m in args.methods]
    progress = keras.utils.Progbar(len(plan), unit_name="run")
    if args.cost_only:
        for i, (setting, method, seed) in enumerate(plan):
            data, fields, _, _ = loaded[setting]
            cost_one(setting, method, seed, data, fields, args)
            progress.update(i + 1)
        print(summary(load_records(args.results), load_costs(args.results)))
        return 0
    for i, (setting, method, seed) in enumerate(plan):
        data, fields, monitor, evaluation = loaded[setting]
        ran = run_one(setting, method, seed, data, fields, args, monitor, evaluation)
        if ran or i == len(plan) - 1:
            records = load_records(args.results)
            write_tables(records, args.results)
            if args.plots:
                write_plots(records, args.results)
        progress.update(i + 1)
    records = load_records(args.results)
    print(write_tables(records, args.results))
    if args.plots and records:
        write_plots(records, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
