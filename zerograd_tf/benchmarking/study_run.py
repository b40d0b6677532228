"""One run of a study: trained (or resumed), measured every epoch, evaluated.

`benchmarks/co_study.py` loops over a plan's runs; this is what it does
for each: `model_and_monitors` builds a run's model and CO callbacks,
`train_and_evaluate` trains it (resuming a `PartialRun`), measures every
epoch (`EpochMonitor`), evaluates it (PGD-50-10; AutoAttack + PGD-50-10,
the worst case per example; the model as it computes for some
mixed-precision runs) and returns its record (see `study_records`);
`identity` is what an unfinished run may resume under (`fingerprint` names
the examples of a split).
"""

import datetime
import os
import statistics

import keras
import tensorflow as tf

from zerograd_tf import __version__, evaluation, monitoring
from zerograd_tf.evaluation import backup as evaluation_backup
from zerograd_tf.benchmarking.epoch_monitor import EpochMonitor
from zerograd_tf.benchmarking.machine import machine_record
from zerograd_tf.runs import pipeline, run_dir, training


def model_and_monitors(config, data, state_dir):
    """A run's compiled model and the CO callbacks that act on it.

    Args:
        config: the run's resolved `RunConfig`.
        data: its `ImageData`.
        state_dir: the folder of the CO callbacks' state files.

    Returns:
        `(model, callbacks)`: the callbacks of `config.co_monitor` /
        `quantile="auto"` (on the validation split), which come before any
        other callback so that their checks count as part of an epoch.
    """
    keras.backend.clear_session()
    model = pipeline.build_model(config, data)
    return model, training.monitor_callbacks(config, data, state_dir, logdir=None)


def fingerprint(*arrays):
    """A short digest of arrays' contents (which examples a split holds).

    Examples:
        >>> import numpy as np
        >>> from zerograd_tf.benchmarking.study_run import fingerprint
        >>> fingerprint(np.zeros(3)) == fingerprint(np.zeros(3)) != fingerprint(np.ones(3))
        True
    """
    return evaluation_backup.digest(arrays)


def identity(config, data, measurement):
    """What a run's training depends on (`PartialRun`'s identity).

    Args:
        config: the run's resolved `RunConfig`.
        data: its `ImageData`.
        measurement: a JSON-serialisable dict of what else changes the
            training or the per-epoch measurement (the study's options, the
            monitoring examples' `fingerprint`).

    Returns:
        A dict: the configuration without the data's location and without
        the final evaluation's options (kept with each evaluation instead),
        the training data's file name and `fingerprint`, `measurement`, and
        the versions of this package, TensorFlow and Keras.
    """
    skipped = {"dataset", "data_dir", "download", *run_dir.EVALUATION_KEYS}
    return {"config": {k: v for k, v in config.to_dict().items() if k not in skipped},
            "data": {"file": os.path.basename(str(config.dataset)),
                     "train": fingerprint(data.x_train, data.y_train)},
            "measurement": measurement,
            "software": {"zerograd_tf": __version__, "tensorflow": tf.__version__,
                         "keras": keras.__version__}}


def train_and_evaluate(config, data, partial, monitor, test, weights_path, *,
                       monitor_pgd_steps=10, final_steps=50, final_restarts=10,
                       apgd_steps=100, square_queries=5000, autoattack=True, as_trained=False,
                       verbose=0, label=""):
    """Trains (or resumes) one run, evaluates it, saves its weights.

    The CO callbacks keep their state in `partial`'s folder; the epoch
    monitor writes each epoch's row there before the epoch's checkpoint;
    each finished evaluation is kept there with its options. A run killed
    at any point and resumed on the same machine writes the same record,
    timings aside.

    Args:
        config: the run's resolved `RunConfig`.
        data: its `ImageData`.
        partial: the run's `PartialRun`.
        monitor: `(x, y)` measured after every epoch (clean, FGSM, PGD).
        test: `(x, y)` of the final evaluation.
        weights_path: where the final weights are saved (`.weights.h5`).
        monitor_pgd_steps: PGD steps of the epoch measurement. Defaults to
            10.
        final_steps: PGD steps of the final evaluation. Defaults to 50.
        final_restarts: its restarts. Defaults to 10.
        apgd_steps: AutoAttack's APGD iterations. Defaults to 100.
        square_queries: AutoAttack's Square queries. Defaults to 5000.
        autoattack: run AutoAttack + PGD (the worst case). Defaults to True.
        as_trained: also attack a mixed-precision model as it computes
            (beside its float32 copy, the reported number). Defaults to
            False.
        verbose: 1 prints a line per epoch and per attack of the final
            evaluations (on standard output), headed by `label`. Defaults
            to 0.
        label: what those lines name. Defaults to `""`.

    Returns:
        The run's record without `setting`, `method` and `seed`.
    """
    model, acting = model_and_monitors(config, data, partial.state_dir)
    model.build((None, *data.input_shape))
    epochs, rows = partial.restore(model)
    epoch_monitor = EpochMonitor(*monitor, config.epsilon, monitor_pgd_steps, config.seed,
                                 rows=rows, rows_path=partial.rows_path, verbose=verbose,
                                 label=label)
    pipeline.fit(model, config, data, initial_epoch=epochs,
                 callbacks=[*acting, epoch_monitor, partial.checkpoint])

    examples = fingerprint(*test)

    def evaluate(name, **kwargs):
        options = {**kwargs, "examples": examples}

        def run():
            if verbose:
                print(f"{label + ': ' if label else ''}final evaluation ({name})", flush=True)
            return evaluation_backup.run_owned(
                lambda path: evaluation.evaluate_robustness(
                    model, test, config.epsilon, verbose=2 if verbose else 0,
                    backup_path=path, **kwargs),
                partial.evaluation_backup(name, options))

        return partial.evaluation(name, options, run)

    pgd = dict(steps=final_steps, restarts=final_restarts, seed=config.seed)
    final = evaluate("final", **pgd)
    # AutoAttack first (its own number after its last member), then PGD-50-10
    # on what it left: the last entry is the worst case per example.
    strongest = attacked_as_trained = None
    worst = dict(pgd, attack=["autoattack", "pgd"], apgd_steps=apgd_steps,
                 square_queries=square_queries)
    if autoattack:
        strongest = evaluate("autoattack", **worst)
        if as_trained and strongest["precision"] != config.precision:
            attacked_as_trained = evaluate("as_trained", precision="as_trained", **worst)
    os.makedirs(os.path.dirname(weights_path) or ".", exist_ok=True)
    model.save_weights(weights_path)
    rows = epoch_monitor.rows
    processes = partial.processes
    # The first epoch of each process includes tracing: out of the mean.
    traced = {p["from_epoch"] + 1 for p in processes}
    steady = [r["epoch_seconds"] for r in rows if r["epoch"] not in traced]
    return {
        "config": config.to_dict(),
        "epochs": rows,
        "final": final,
        "final_autoattack": strongest,
        **({"final_autoattack_as_trained": attacked_as_trained}
           if attacked_as_trained else {}),
        "co_monitor": [{"checks": len(m.checks), "events": m.events} for m in acting],
        "final_quantile": getattr(model, "quantile", None),
        "catastrophic_overfitting": monitoring.catastrophic_overfitting(
            [r["pgd_accuracy"] for r in rows], [r["fgsm_accuracy"] for r in rows]),
        "mean_epoch_seconds": statistics.fmean(
            steady or [r["epoch_seconds"] for r in rows] or [float("nan")]),
        # A resumed run: every process that worked on it (its machine too).
        **({"processes": processes} if len(processes) > 1 else {}),
        "date": datetime.date.today().isoformat(),
        "machine": machine_record(),
    }
