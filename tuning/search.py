"""zerograd-tune: KerasTuner search of ZeroGrad's quantile and step size.

    zerograd-tune --tuner random --max-trials 10 --epochs 5
    zerograd-tune --dataset cifar10 --epsilon 8/255 --tuner bayesian --max-trials 20 --train-best

The objective is validation robust accuracy (`val_pgd_accuracy`: PGD-k on a
fixed validation subset after each trial), maximised. An interrupted search
resumes where it stopped (finished trials are not run again). In
`<directory>/<project-name>/` it writes `best_hyperparameters.json` and
`trials.md` / `trials.json` (quantile, alpha, clean and PGD accuracy, time of
every trial).
"""

import argparse
import json
import os
import sys

from zerograd_tf import _env  # noqa: F401  (before TensorFlow)

import keras  # noqa: E402
import keras_tuner  # noqa: E402

from zerograd_tf import io_utils  # noqa: E402
from zerograd_tf import datasets, validation  # noqa: E402
from trainers import options, pipeline  # noqa: E402
from trainers import train as train_program  # noqa: E402
from tuning.hypermodel import OBJECTIVE, ZeroGradHyperModel  # noqa: E402

PROG = "zerograd-tune"
TUNERS = ("random", "bayesian", "hyperband")
# Settings that may change when a search is resumed.
RESUMABLE_KEYS = ("max_trials",)


# zerograd-train's --X/--no-X flags; the others are plain switches.
_BOOLEAN_OPTIONAL = ("augment", "jit")


def _train_argv(options_dict):
    """zerograd-train flags from keyword options (`model="conv3"` -> `--model conv3`)."""
    argv = []
    for key, value in options_dict.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False:
            if key in _BOOLEAN_OPTIONAL:
                argv.append("--no-" + key.replace("_", "-"))
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def make_tuner(name, hypermodel, *, max_trials, epochs, directory, project_name, seed,
               overwrite):
    """The KerasTuner tuner by name, maximising `val_pgd_accuracy`."""
    validation.check_choice(name, "tuner", TUNERS)
    objective = keras_tuner.Objective(OBJECTIVE, direction="max")
    common = dict(objective=objective, directory=directory, project_name=project_name,
                  seed=seed, overwrite=overwrite)
    if name == "random":
        return keras_tuner.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if name == "bayesian":
        return keras_tuner.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    return keras_tuner.Hyperband(hypermodel, max_epochs=epochs, factor=3, **common)


def _check_same_search(path, identity, overwrite):
    if overwrite or not os.path.exists(path):
        return
    with open(path) as f:
        saved = json.load(f)
    keys = sorted(set(saved) | set(identity))
    different = [k for k in keys if k not in RESUMABLE_KEYS and saved.get(k) != identity.get(k)]
    if different:
        raise options.UsageError(
            f"{os.path.dirname(path)} belongs to a different search (differs in: "
            f"{', '.join(different)}); choose another --project-name or --directory, or "
            "pass --overwrite to start it afresh.")


def trial_rows(tuner):
    """One row per finished trial: its hyperparameters, accuracies and time."""
    rows = []
    for trial in tuner.oracle.trials.values():
        if trial.status != "COMPLETED":
            continue
        values = trial.hyperparameters.values

        def metric(name):
            return trial.metrics.get_last_value(name) if trial.metrics.exists(name) else None

        rows.append({"trial": trial.trial_id, "method": values.get("method"),
                     "quantile": values.get("quantile"), "alpha": values.get("alpha"),
                     "lr_max": values.get("lr_max"),
                     "clean_accuracy": metric("val_clean_accuracy"),
                     "pgd_accuracy": metric(OBJECTIVE), "seconds": metric("trial_seconds"),
                     "score": trial.score})
    return sorted(rows, key=lambda r: r["trial"])


def _fmt(value, digits=3):
    return "–" if value is None else f"{value:.{digits}f}"


def write_summary(tuner, folder):
    rows = trial_rows(tuner)
    io_utils.write_json_atomic(os.path.join(folder, "trials.json"), rows)
    lines = ["| trial | method | quantile | alpha (× ε) | clean acc. | PGD acc. | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['trial']} | {r['method']} | {_fmt(r['quantile'])} | "
                     f"{_fmt(r['alpha'])} | {_fmt(r['clean_accuracy'])} | "
                     f"{_fmt(r['pgd_accuracy'])} | {_fmt(r['seconds'], 1)} |")
    table = "\n".join(lines)
    with open(os.path.join(folder, "trials.md"), "w") as f:
        f.write(table + "\n")
    return table


def search(dataset=datasets.DEFAULT_DATASET, *, tuner="random", max_trials=10, epochs=None,
           method="zerograd", quantile_range=(0.0, 0.9), alpha_range=(0.5, 2.5),
           lr_range=None, directory="tuning_runs", project_name=None, logdir=None,
           overwrite=False, verbose=1, evaluate=None, **train_options):
    """Runs (or resumes) a KerasTuner search; usable from a notebook.

    Args:
        dataset: as `zerograd-train --dataset`.
        tuner: `"random"`, `"bayesian"` or `"hyperband"` (Hyperband budgets
            epochs, not `max_trials`: its `max_epochs` is `epochs`).
        max_trials: trials of random and Bayesian search.
        epochs: epochs per trial (default: `zerograd-train`'s).
        method: `"zerograd"`, `"multigrad"` or `"search"` (both).
        quantile_range, alpha_range, lr_range: search ranges (see
            `ZeroGradHyperModel`); `lr_range=None` keeps the learning rate.
        directory, project_name: where KerasTuner keeps the search (default
            project name `<dataset>-<method>`).
        logdir: TensorBoard logs, one folder per trial.
        overwrite: start afresh instead of resuming.
        verbose: Keras verbosity of each trial's `fit`.
        evaluate: optional stub of the final measurement (tests).
        **train_options: further `zerograd-train` options by name, e.g.
            `model="conv3"`, `epsilon="8/255"`, `val_pgd_size=256`.

    Returns:
        `(tuner, best_hyperparameters)`.

    Raises:
        ValueError: for unknown tuner names, empty or inverted ranges, or a
            search directory that belongs to a different search.
    """
    validation.check_choice(tuner, "tuner", TUNERS)
    validation.check_int(max_trials, "max_trials", 1)
    argv = ["--dataset", dataset, "--method", "zerograd" if method == "search" else method,
            *_train_argv({"epochs": epochs, **train_options})]
    args = train_program.build_parser().parse_args(argv)
    data = datasets.load_image_data(args.dataset, val_size=args.val_size, seed=args.seed,
                                    data_dir=args.data_dir, download=args.download)
    config = options.resolve_config(args, data)
    if config["val_pgd_steps"] < 1:
        raise options.UsageError("the objective needs --val-pgd-steps >= 1.")
    hypermodel = ZeroGradHyperModel(config, data, method=method,
                                    quantile_range=quantile_range, alpha_range=alpha_range,
                                    lr_range=lr_range, evaluate=evaluate)
    project_name = project_name or options.default_output(dataset, method).split(os.sep)[-1]
    folder = os.path.join(directory, project_name)
    identity = {"tuner": tuner, "method": method, "quantile_range": list(hypermodel.quantile_range),
                "alpha_range": list(hypermodel.alpha_range),
                "lr_range": None if lr_range is None else list(hypermodel.lr_range),
                "max_trials": max_trials, "config": config}
    identity = json.loads(json.dumps(identity))
    identity_path = os.path.join(folder, "search_config.json")
    _check_same_search(identity_path, identity, overwrite)
    the_tuner = make_tuner(tuner, hypermodel, max_trials=max_trials, epochs=config["epochs"],
                           directory=directory, project_name=project_name,
                           seed=config["seed"], overwrite=overwrite)
    io_utils.write_json_atomic(identity_path, identity)
    callbacks = [keras.callbacks.TensorBoard(logdir, write_graph=False)] if logdir else []
    the_tuner.search(pipeline.train_dataset(config, data), epochs=config["epochs"],
                     validation_data=pipeline.validation_dataset(config, data),
                     callbacks=callbacks, shuffle=False, verbose=verbose)
    best = the_tuner.get_best_hyperparameters(1)[0]
    io_utils.write_json_atomic(os.path.join(folder, "best_hyperparameters.json"),
                                    best.values)
    write_summary(the_tuner, folder)
    return the_tuner, best


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    group = parser.add_argument_group("search")
    group.add_argument("--tuner", default="random",
                       help=f"one of {', '.join(TUNERS)}")
    group.add_argument("--max-trials", type=int, default=10)
    group.add_argument("--search-method", default="zerograd",
                       choices=("zerograd", "multigrad", "search"),
                       help="fixed method, or 'search' to choose between both")
    group.add_argument("--quantile-range", type=float, nargs=2, default=(0.0, 0.9))
    group.add_argument("--alpha-range", type=float, nargs=2, default=(0.5, 2.5),
                       help="range of alpha as a multiple of epsilon")
    group.add_argument("--lr-range", type=float, nargs=2, default=None,
                       help="also search the peak learning rate (log scale)")
    group.add_argument("--directory", default="tuning_runs")
    group.add_argument("--project-name", default=None)
    group.add_argument("--logdir", default=None, help="TensorBoard logs per trial")
    group.add_argument("--overwrite", action="store_true")
    group.add_argument("--train-best", action="store_true",
                       help="retrain the best configuration with zerograd-train")
    group.add_argument("--output", default=None,
                       help="zerograd-train --output of --train-best")
    group.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)
    options.add_data_options(parser)
    options.add_model_options(parser)
    options.add_training_options(parser)
    group = parser.add_argument_group("method (fixed during the search)")
    group.add_argument("--epsilon", default=None)
    group.add_argument("--samples", type=int, default=3)
    options.add_validation_options(parser)
    return parser


TRAIN_KEYS = ("data_dir", "val_size", "model", "width", "depth", "batch_size", "optimizer",
              "lr_schedule", "lr_max", "weight_decay", "seed", "jit", "mixed_precision",
              "epsilon", "samples", "val_pgd_steps", "val_pgd_size", "val_freq",
              "eval_steps", "eval_restarts", "eval_alpha", "eval_size", "augment")


def main(argv=None):
    args = build_parser().parse_args(argv)
    train_options = {k: getattr(args, k) for k in TRAIN_KEYS}
    if not args.download:
        train_options["no_download"] = True
    try:
        tuner, best = search(
            args.dataset, tuner=args.tuner, max_trials=args.max_trials, epochs=args.epochs,
            method=args.search_method, quantile_range=tuple(args.quantile_range),
            alpha_range=tuple(args.alpha_range),
            lr_range=None if args.lr_range is None else tuple(args.lr_range),
            directory=args.directory, project_name=args.project_name, logdir=args.logdir,
            overwrite=args.overwrite, verbose=args.verbose, **train_options)
    except (options.UsageError, datasets.DataError, ValueError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    folder = os.path.join(tuner.directory, tuner.project_name)
    print(write_summary(tuner, folder))
    print(f"best: {json.dumps(best.values)}   ({folder}/best_hyperparameters.json)")
    if args.train_best:
        values = best.values
        argv = ["--dataset", args.dataset, "--method", values["method"],
                "--alpha", str(values["alpha"]),
                *_train_argv({k: v for k, v in train_options.items() if k != "no_download"})]
        if not args.download:
            argv.append("--no-download")
        if "quantile" in values and values["method"] == "zerograd":
            argv += ["--quantile", str(values["quantile"])]
        if "lr_max" in values:
            argv += ["--lr-max", str(values["lr_max"])]
        if args.epochs:
            argv += ["--epochs", str(args.epochs)]
        argv += ["--output", args.output or os.path.join(folder, "best_run")]
        return train_program.main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
