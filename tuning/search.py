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

# TensorFlow, Keras, KerasTuner and the library: imported after parsing
# (`search`), where used, so that --help and option errors answer without them.
import contextlib
import dataclasses
import fractions
import json
import os
import sys

from zerograd_tf import _programs, io_utils
from zerograd_tf._names import DEFAULT_DATASET, DataError
from zerograd_tf.trainers import options, run_dir
from zerograd_tf.trainers.config import ConfigError as RunConfigError, RunConfig
from zerograd_tf.trainers import train as train_program

PROG = "zerograd-tune"
TUNERS = ("random", "bayesian", "hyperband")
# Settings that may change when a search is resumed.
RESUMABLE_KEYS = ("max_trials",)


def make_tuner(name, hypermodel, *, max_trials, epochs, directory, project_name, seed,
               overwrite):
    """The KerasTuner tuner by name, maximising `val_pgd_accuracy`."""
    _programs.load_library()
    import keras_tuner
    from zerograd_tf import validation
    from zerograd_tf.tuning.hypermodel import OBJECTIVE

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
    different = []
    for k in keys:
        if k in RESUMABLE_KEYS or saved.get(k) == identity.get(k):
            continue
        if isinstance(saved.get(k), dict) and isinstance(identity.get(k), dict):
            inner = sorted(set(saved[k]) | set(identity[k]))
            different += [f"{k}.{i}" for i in inner if saved[k].get(i) != identity[k].get(i)]
        else:
            different.append(k)
    if different:
        raise options.UsageError(
            f"{os.path.dirname(path)} belongs to a different search (differs in: "
            f"{', '.join(different)}); choose another --project-name or --directory, or "
            "pass --overwrite to start it afresh.")


def trial_rows(tuner):
    """One row per finished trial: its hyperparameters, accuracies and time."""
    from zerograd_tf.tuning.hypermodel import OBJECTIVE

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


def _run_config(dataset, method, epochs, train_options):
    """The `RunConfig` of `search`'s keyword options."""
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(train_options) - fields)
    if unknown:
        raise ValueError(f"unknown training option(s) {', '.join(unknown)}: use the fields "
                         "of zerograd_tf.trainers.config.RunConfig.")
    values = dict(train_options)
    if isinstance(values.get("epsilon"), str):
        try:
            values["epsilon"] = float(fractions.Fraction(values["epsilon"].strip()))
        except (ValueError, ZeroDivisionError):
            raise RunConfigError("epsilon", "must be a number such as 0.3 or 8/255, got "
                                            f"{values['epsilon']!r}") from None
    return RunConfig(dataset=dataset, method=method, epochs=epochs, **values)


def search(dataset=DEFAULT_DATASET, *, tuner="random", max_trials=10, epochs=None,
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
        **train_options: further fields of `zerograd_tf.trainers.config.RunConfig`,
            e.g. `model="conv3"`, `epsilon=8/255` (or the text "8/255"),
            `val_pgd_size=256`.

    Returns:
        `(tuner, best_hyperparameters)`.

    Raises:
        ValueError: for unknown tuner names or training options, empty or
            inverted ranges, or a search directory that belongs to a
            different search (`trainers.config.ConfigError`, a ValueError,
            for invalid training options).
    """
    _programs.load_library()  # TensorFlow, and the library's Keras classes registered
    import keras
    from zerograd_tf import datasets, validation
    from zerograd_tf.trainers import pipeline
    from zerograd_tf.tuning.hypermodel import ZeroGradHyperModel

    validation.check_choice(tuner, "tuner", TUNERS)
    validation.check_int(max_trials, "max_trials", 1)
    config = _run_config(dataset, "zerograd" if method == "search" else method, epochs,
                         train_options)
    data = datasets.load_image_data(config.dataset, val_size=config.val_size,
                                    seed=config.seed, data_dir=config.data_dir,
                                    download=config.download)
    config = config.resolved(data)
    if config.val_pgd_steps < 1:
        raise RunConfigError("val_pgd_steps", "must be >= 1: it measures the objective")
    hypermodel = ZeroGradHyperModel(config, data, method=method,
                                    quantile_range=quantile_range, alpha_range=alpha_range,
                                    lr_range=lr_range, evaluate=evaluate)
    project_name = project_name or options.default_output(dataset, method).split(os.sep)[-1]
    folder = os.path.join(directory, project_name)
    identity = {"tuner": tuner, "method": method, "quantile_range": list(hypermodel.quantile_range),
                "alpha_range": list(hypermodel.alpha_range),
                "lr_range": None if lr_range is None else list(hypermodel.lr_range),
                "max_trials": max_trials, "config": config.to_dict()}
    identity = json.loads(json.dumps(identity))
    # One search at a time in `folder` (the lock file is beside it: KerasTuner's
    # overwrite deletes the folder).
    with run_dir.RunLock(os.path.join(directory, f".{project_name}.lock"), "--directory",
                         PROG, what=folder):
        identity_path = os.path.join(folder, "search_config.json")
        _check_same_search(identity_path, identity, overwrite)
        the_tuner = make_tuner(tuner, hypermodel, max_trials=max_trials, epochs=config.epochs,
                               directory=directory, project_name=project_name,
                               seed=config.seed, overwrite=overwrite)
        io_utils.write_json_atomic(identity_path, identity)
        callbacks = [keras.callbacks.TensorBoard(logdir, write_graph=False)] if logdir else []
        the_tuner.search(pipeline.train_dataset(config, data), epochs=config.epochs,
                         steps_per_epoch=pipeline.steps_per_epoch(config, len(data.x_train)),
                         validation_data=pipeline.validation_dataset(config, data),
                         callbacks=callbacks, shuffle=False, verbose=verbose)
        best = the_tuner.get_best_hyperparameters(1)[0]
        io_utils.write_json_atomic(os.path.join(folder, "best_hyperparameters.json"),
                                        best.values)
        write_summary(the_tuner, folder)
        return the_tuner, best


def build_parser():
    parser = options.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0])
    group = parser.add_argument_group("search")
    group.add_argument("--tuner", default="random", choices=TUNERS,
                       help=f"one of {', '.join(TUNERS)}")
    group.add_argument("--max-trials", type=options.int_at_least("--max-trials", 1), default=10,
                       help="trials of random and Bayesian search (Hyperband budgets epochs)")
    group.add_argument("--search-method", default="zerograd",
                       choices=("zerograd", "multigrad", "search"),
                       help="fixed method, or 'search' to choose between both")
    group.add_argument("--quantile-range", type=float, nargs=2, default=(0.0, 0.9),
                       help="range of ZeroGrad's quantile q, within [0, 1)")
    group.add_argument("--alpha-range", type=float, nargs=2, default=(0.5, 2.5),
                       help="range of alpha as a multiple of epsilon")
    group.add_argument("--lr-range", type=float, nargs=2, default=None,
                       help="also search the peak learning rate (log scale)")
    group.add_argument("--directory", default="tuning_runs",
                       help="where KerasTuner keeps its searches")
    group.add_argument("--project-name", default=None,
                       help="the search's folder in --directory (default: <dataset>-<method>)")
    group.add_argument("--logdir", default=None,
                       help="TensorBoard logs per trial (default: none)")
    group.add_argument("--overwrite", action="store_true",
                       help="start the search afresh instead of resuming it")
    group.add_argument("--train-best", action="store_true",
                       help="retrain the best configuration with zerograd-train")
    group.add_argument("--output", default=None,
                       help="zerograd-train --output of --train-best (default: "
                            "<directory>/<project>/best_run)")
    group.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                       help="Keras fit verbosity of each trial")
    options.add_data_options(parser)
    options.add_model_options(parser)
    options.add_training_options(parser)
    group = parser.add_argument_group("method (fixed during the search)")
    group.add_argument("--epsilon", default=None,
                       help="radius, as zerograd-train --epsilon (default: 0.1 for grayscale "
                            "data, 8/255 for colour data)")
    group.add_argument("--samples", type=options.int_at_least("--samples", 1), default=3,
                       help="MultiGrad random starts n (for --search-method multigrad/search)")
    options.add_validation_options(parser)
    return parser


TRAIN_KEYS = ("download", "data_dir", "val_size", "model", "width", "depth", "batch_size", "optimizer",
              "lr_schedule", "lr_max", "weight_decay", "seed", "jit", "mixed_precision",
              "epsilon", "samples", "val_pgd_steps", "val_pgd_size", "val_freq",
              "eval_steps", "eval_restarts", "eval_alpha", "eval_size", "eval_attack",
              "eval_apgd_steps", "eval_square_queries", "augment")


def main(argv=None):
    args = build_parser().parse_args(argv)
    train_options = {k: getattr(args, k) for k in TRAIN_KEYS}
    try:
        # Before any work: folders that cannot be written.
        for flag, path in (("--directory", args.directory), ("--logdir", args.logdir),
                           ("--output", args.output)):
            if path:
                run_dir.check_directory(path, flag)
        if train_options["epsilon"] is not None:
            train_options["epsilon"] = options.parse_epsilon(train_options["epsilon"])
        # KerasTuner's and Keras' progress: on standard error, the results on
        # standard output.
        with contextlib.redirect_stdout(sys.stderr):
            tuner, best = search(
                args.dataset, tuner=args.tuner, max_trials=args.max_trials,
                epochs=args.epochs, method=args.search_method,
                quantile_range=tuple(args.quantile_range), alpha_range=tuple(args.alpha_range),
                lr_range=None if args.lr_range is None else tuple(args.lr_range),
                directory=args.directory, project_name=args.project_name, logdir=args.logdir,
                overwrite=args.overwrite, verbose=args.verbose, **train_options)
    except RunConfigError as error:
        print(f"{PROG}: error: {options.usage_error(error)}", file=sys.stderr)
        return 2
    except (options.UsageError, DataError, ValueError) as error:
        print(f"{PROG}: error: {options.with_flags(error)}", file=sys.stderr)
        return 2
    folder = os.path.join(tuner.directory, tuner.project_name)
    print(write_summary(tuner, folder))
    print(f"best: {json.dumps(best.values)}   ({folder}/best_hyperparameters.json)")
    if args.train_best:
        values = best.values
        best_options = {"alpha": values["alpha"], **train_options}
        if "quantile" in values and values["method"] == "zerograd":
            best_options["quantile"] = values["quantile"]
        if "lr_max" in values:
            best_options["lr_max"] = values["lr_max"]
        try:
            config = _run_config(args.dataset, values["method"], args.epochs, best_options)
            train_program.run_config(config, output=args.output
                                     or os.path.join(folder, "best_run"))
        except RunConfigError as error:
            print(f"{PROG}: error: {options.usage_error(error)}", file=sys.stderr)
            return 2
        except (options.UsageError, DataError) as error:
            print(f"{PROG}: error: {options.with_flags(error)}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
