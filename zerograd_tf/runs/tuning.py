"""The KerasTuner search of ZeroGrad's quantile and step size, as a library.

`search` runs (or resumes) a search and is what `zerograd-tune`
(`zerograd_tf.tuning.search`) calls; `ZeroGradHyperModel` is the
`keras_tuner.HyperModel` it tunes, for use with any KerasTuner tuner:

    from zerograd_tf.runs import tuning
    tuner, best = tuning.search("my_data.npz", tuner="random", max_trials=2)

The score of a trial is its final robust accuracy (`final_val_pgd_accuracy`,
PGD-k on a fixed validation subset once the trial has trained), maximised,
and the weights KerasTuner keeps for a trial are its final ones. In
`<directory>/<project-name>/` it writes `best_hyperparameters.json` and
`trials.md` / `trials.json` (quantile, alpha, clean and PGD accuracy, time of
every trial). KerasTuner, TensorFlow and the models are imported where used.
"""

import dataclasses
import json
import os
import sys

from zerograd_tf import _programs, io_utils
from zerograd_tf._names import DEFAULT_DATASET
from zerograd_tf.runs import config as config_lib, options, run_dir
from zerograd_tf.runs.config import ConfigError as RunConfigError, RunConfig

PROG = "zerograd-tune"
TUNERS = ("random", "bayesian", "hyperband")
# Settings that may change when a search is resumed.
RESUMABLE_KEYS = ("max_trials",)


def make_tuner(name, hypermodel, *, max_trials, epochs, directory, project_name, seed,
               overwrite, distribution_strategy=None):
    """The KerasTuner tuner by name, maximising the final validation robust accuracy."""
    _programs.load_library()
    import keras_tuner
    from zerograd_tf import validation
    from zerograd_tf.runs.hypermodel import OBJECTIVE

    validation.check_choice(name, "tuner", TUNERS)
    objective = keras_tuner.Objective(OBJECTIVE, direction="max")
    common = dict(objective=objective, directory=directory, project_name=project_name,
                  seed=seed, overwrite=overwrite, distribution_strategy=distribution_strategy)
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
    if isinstance(saved.get("config"), dict):
        saved["config"] = config_lib.upgraded(saved["config"])
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
    from zerograd_tf.runs.hypermodel import OBJECTIVE

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
    # KerasTuner pads trial ids to the width of max_trials, which a resumed
    # search may change ("9" and "10"): by number.
    return sorted(rows, key=lambda r: (int(r["trial"]) if r["trial"].isdigit() else 0,
                                       r["trial"]))


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


def run_config_of(dataset, method, epochs, train_options):
    """The `RunConfig` of `search`'s keyword options."""
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(train_options) - fields)
    if unknown:
        raise ValueError(f"unknown training option(s) {', '.join(unknown)}: use the fields "
                         "of zerograd_tf.runs.config.RunConfig.")
    values = dict(train_options)
    if isinstance(values.get("epsilon"), str):
        values["epsilon"] = config_lib.parse_epsilon(values["epsilon"])
    return RunConfig(dataset=dataset, method=method, epochs=epochs, **values)


class SearchFailed(RuntimeError):
    """A search that found no best configuration: no trial completed."""


def _check_not_searched(train_options, method, lr_range):
    """Refuses training options that a search's trials would not honour."""
    defaults = options.config_defaults()
    searched = {"alpha": "alpha_range", "quantile": "quantile_range", "lr_max": "lr_range"}
    if method == "multigrad":
        del searched["quantile"]
    if lr_range is None:
        del searched["lr_max"]
    for name, ranged in searched.items():
        if train_options.get(name, defaults[name]) != defaults[name]:
            raise ValueError(f"{name} is searched ({ranged}): give its range, not a value "
                             f"(got {name}={train_options[name]!r}).")
    if train_options.get("co_monitor", "off") != "off" or train_options.get("diagnostics"):
        raise ValueError("co_monitor and diagnostics do not run in a search's trials: leave "
                         "them off here and use them when you train the best configuration.")


def search(dataset=DEFAULT_DATASET, *, tuner="random", max_trials=10, epochs=None,
           method="zerograd", quantile_range=(0.0, 0.9), alpha_range=(0.5, 2.5),
           lr_range=None, directory="tuning_runs", project_name=None, logdir=None,
           overwrite=False, verbose=1, evaluate=None, **train_options):
    """Runs (or resumes) a KerasTuner search; usable from a notebook.

    Args:
        dataset: as `zerograd-train --dataset`. Defaults to the embedded
            `"mnist10k"`.
        tuner: `"random"`, `"bayesian"` or `"hyperband"` (Hyperband budgets
            epochs, not `max_trials`: its `max_epochs` is `epochs`).
            Defaults to `"random"`.
        max_trials: trials of random and Bayesian search. Defaults to 10.
        epochs: epochs per trial. Defaults to `None`: `zerograd-train`'s.
        method: `"zerograd"`, `"multigrad"` or `"search"` (both). Defaults
            to `"zerograd"`.
        quantile_range: `(min, max)` of q, within [0, 1). Defaults to
            `(0.0, 0.9)`.
        alpha_range: `(min, max)` of alpha as a multiple of epsilon.
            Defaults to `(0.5, 2.5)`.
        lr_range: `(min, max)` of the peak learning rate (log scale).
            Defaults to `None`: the configuration's, not searched.
        directory: where KerasTuner keeps its searches. Defaults to
            `"tuning_runs"`.
        project_name: the search's folder in `directory`. Defaults to
            `None`: `<dataset>-<method>`.
        logdir: TensorBoard logs, one folder per trial. Defaults to `None`
            (none).
        overwrite: start afresh instead of resuming. Defaults to False.
        verbose: Keras verbosity of each trial's `fit`. Defaults to 1.
        evaluate: a stub of the final measurement (tests). Defaults to
            `None`: PGD on the validation subset.
        **train_options: further fields of `zerograd_tf.runs.config.RunConfig`,
            e.g. `model="conv3"`, `epsilon=8/255` (or the text "8/255"),
            `val_pgd_size=256`.

    Returns:
        `(tuner, best_hyperparameters)`. When KerasTuner stops the search
        after failed trials in a row, the best of the trials that completed,
        with a warning on standard error.

    Raises:
        ValueError: for unknown tuner names or training options, empty or
            inverted ranges, options the trials would not honour (a fixed
            value of a searched hyperparameter, the CO monitor,
            diagnostics), or a search directory that belongs to a
            different search (`zerograd_tf.runs.config.ConfigError`, a ValueError,
            for invalid training options).
        SearchFailed: no trial completed (a `RuntimeError`).
    """
    _programs.load_library()  # TensorFlow, and the library's Keras classes registered
    import keras
    from zerograd_tf import distribution, validation
    from zerograd_tf.runs import pipeline
    from zerograd_tf.runs.hypermodel import ZeroGradHyperModel

    validation.check_choice(tuner, "tuner", TUNERS)
    validation.check_int(max_trials, "max_trials", 1)
    _check_not_searched(train_options, method, lr_range)
    config = run_config_of(dataset, "zerograd" if method == "search" else method, epochs,
                           train_options)
    if config.strategy == "multiworker":
        # Every worker would lock, write and (with overwrite) delete the same
        # search folder; KerasTuner distributes a search its own way.
        raise RunConfigError("strategy", "must not be 'multiworker' for a search: a search "
                                         "runs on one machine (default, mirrored or tpu)")
    # First: a multi-worker strategy must exist before any TensorFlow op.
    strategy = distribution.make_strategy(config.strategy)
    data = pipeline.load_data(config)
    config = config.resolved(data)
    if config.val_pgd_steps < 1:
        raise RunConfigError("val_pgd_steps", "must be >= 1: it measures the objective")
    if len(data.x_val) == 0:
        raise RunConfigError("val_size", "must be > 0: the held-out examples measure the "
                                         "objective")
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
                               seed=config.seed, overwrite=overwrite,
                               distribution_strategy=(None if config.strategy == "default"
                                                      else strategy))
        io_utils.write_json_atomic(identity_path, identity)
        callbacks = [keras.callbacks.TensorBoard(logdir, write_graph=False)] if logdir else []
        # No training data: the hypermodel feeds each trial the configuration's
        # batches from its initial epoch on (a continued Hyperband trial's too).
        try:
            the_tuner.search(epochs=config.epochs,
                             validation_data=pipeline.validation_dataset(config, data),
                             callbacks=callbacks, shuffle=False, verbose=verbose)
        except RuntimeError as error:  # KerasTuner: too many trials failed in a row
            # "Number of consecutive failures exceeded the limit of 3.", then
            # the last failed trial's traceback, whose last line says why.
            lines = str(error).strip().splitlines() or ["?"]
            last = lines[0].rstrip(".") + (f": {lines[-1]}" if len(lines) > 1 else "")
            completed = len(trial_rows(the_tuner))
            if not completed:
                raise SearchFailed(f"the search stopped: {last}") from error
            # The trials that completed before still name a best configuration.
            print(f"{PROG}: warning: the search stopped after {completed} of {max_trials} "
                  f"trials completed ({last}); the best is of those.", file=sys.stderr)
        write_summary(the_tuner, folder)
        # KerasTuner fills its best trials up with failed ones.
        best_trials = the_tuner.oracle.get_best_trials(1)
        if not best_trials or best_trials[0].status != "COMPLETED":
            failed = [t.message for t in the_tuner.oracle.trials.values() if t.message]
            reason = failed[0].strip().splitlines()[-1] if failed else "no trial ran"
            raise SearchFailed(f"no trial of the search completed ({reason}); its trials "
                               f"are in {folder}.")
        best = best_trials[0].hyperparameters
        io_utils.write_json_atomic(os.path.join(folder, "best_hyperparameters.json"),
                                        best.values)
        return the_tuner, best


def __getattr__(name):
    """`ZeroGradHyperModel`, imported (with KerasTuner) on first access."""
    if name == "ZeroGradHyperModel":
        from zerograd_tf.runs.hypermodel import ZeroGradHyperModel

        return ZeroGradHyperModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
