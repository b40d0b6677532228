"""Training runs: what `zerograd-train` does, as a library.

`zerograd-train` (`zerograd_tf.trainers.train`), the tuner and the benchmarks
call these functions, so that all of them train the same way:

- `prepare`: strategy, data, resolved `RunConfig`, checked and locked output.
- `run_prepared` / `run_config`: train (or resume, or report a finished run),
  evaluate and print the report.
- `train`, `fit_model`, `final_evaluation`, `monitor_callbacks`: the steps.

TensorFlow, Keras and the rest of the library are imported where used, so
that importing this module (as the programs do before parsing) stays light.
"""

import contextlib
import glob
import json
import os
import shutil
import sys
import tempfile

from zerograd_tf import _programs, io_utils, precision
from zerograd_tf.runs import options, run_dir

PROG = "zerograd-train"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; reported in one line, exit status 1."""


def _write_text_summary(logdir, report, split):
    import tensorflow as tf

    writer = tf.summary.create_file_writer(os.path.join(logdir, "evaluation"))
    rows = ["| metric | value |", "| --- | --- |"]
    rows += [f"| {k} | {v} |" for k, v in report.items()]
    with writer.as_default():
        tf.summary.text(f"final_robust_evaluation_{split}", "\n".join(rows), step=0)
        tf.summary.scalar("final/clean_accuracy", report["clean_accuracy"], step=0)
        tf.summary.scalar("final/robust_accuracy", report["robust_accuracy"], step=0)
    writer.flush()


def final_evaluation(model, config, data, verbose=0, backup_path=None):
    """The `--eval-attack` attacks on the test split (or the validation split,
    saying so), saving its progress to `backup_path` if given."""
    import zerograd_tf as zg
    from zerograd_tf import batching

    x, y, split = data.evaluation_split()
    if config.eval_size:
        x, y = x[:config.eval_size], y[:config.eval_size]
    dataset = batching.make_dataset(x, y, config.eval_batch_size)
    epsilon = config.epsilon
    report = zg.evaluate_robustness(
        model, dataset, epsilon, steps=config.eval_steps,
        restarts=config.eval_restarts, alpha=config.eval_alpha * epsilon,
        attack=config.eval_attack.split(","), batch_size=config.eval_batch_size,
        apgd_steps=config.eval_apgd_steps,
        square_queries=config.eval_square_queries,
        seed=config.seed, verbose=verbose, backup_path=backup_path)
    report = {"split": split, **report}
    if split != "test":
        report["note"] = "the data has no test split: evaluated on the validation split"
    return report


CO_MONITOR_STATE, AUTO_QUANTILE_STATE = "co_monitor.json", "auto_quantile.json"


def monitor_callbacks(config, data, output, logdir):
    """The CO monitor and diagnostics callbacks a configuration asks for.

    They come before the history writer and TensorBoard, so that their
    values are in the epoch logs those write.
    """
    from zerograd_tf import callbacks as callbacks_lib

    auto = config.method == "zerograd" and config.quantile == "auto"
    if config.co_monitor == "off" and not config.diagnostics and not auto:
        return []
    x, y = data.x_val, data.y_val
    if x is None or len(x) == 0:
        x, y, _ = data.evaluation_split()
    size = max(config.co_size, callbacks_lib.auto_quantile.CONFIRM_SIZE if auto else 0)
    x, y = x[:size], y[:size]
    x = x.astype("float32") / 255 if x.dtype == "uint8" else x
    found = []
    if auto:
        # Its own held-out examples (the first of the validation split,
        # which `RunConfig.resolved` insists on).
        found.append(callbacks_lib.AutoQuantile(
            x, y, config.epsilon, slide_drop=config.auto_slide, logdir=logdir,
            state_path=os.path.join(output, AUTO_QUANTILE_STATE)))
    x, y = x[:config.co_size], y[:config.co_size]
    if config.co_monitor != "off":
        found.append(callbacks_lib.CatastrophicOverfittingMonitor(
            x, y, config.epsilon, action=config.co_monitor, frequency=config.co_frequency,
            check_size=config.co_check_size, pgd_steps=config.co_pgd_steps,
            quantile_step=config.co_quantile_step, logdir=logdir,
            state_path=os.path.join(output, CO_MONITOR_STATE)))
    if config.diagnostics:
        found.append(callbacks_lib.AdversarialDiagnostics(x, y, logdir, epsilon=config.epsilon))
    return found


def train(config, data, output, logdir, verbose=2, extra_callbacks=(), strategy=None,
          chief=True):
    """Trains (or resumes) and evaluates; returns the report dict.

    Under a strategy, every worker trains and evaluates (both use collective
    operations); only the chief writes `output` and `logdir`, the others
    write to a scratch folder that is removed at the end. All workers resume
    from the chief's checkpoint (a file system shared by the hosts).
    """
    import keras
    import tensorflow as tf
    from zerograd_tf import callbacks as callbacks_lib
    from zerograd_tf.evaluation import backup as backup_lib

    strategy = strategy or tf.distribute.get_strategy()
    writes = output if chief else tempfile.mkdtemp(prefix="zerograd-worker-")
    logdir = logdir if chief else os.path.join(writes, "logs")
    model_path = os.path.join(output, "model.keras")
    # Finished: the model is saved and no checkpoint is left (a run stopped
    # early by the CO monitor has fewer epochs than configured).
    finished = os.path.exists(model_path) and not callbacks_lib.EpochCheckpoint(
        os.path.join(output, "checkpoint")).exists()
    with strategy.scope():
        if finished:
            model = keras.models.load_model(model_path)
        else:
            model = fit_model(config, data, output, writes, logdir, verbose,
                              extra_callbacks, chief)
        if verbose and chief:
            print(f"{PROG}: final evaluation ({config.eval_attack})", file=sys.stderr,
                  flush=True)
        report = backup_lib.run_owned(
            lambda path: final_evaluation(model, config, data,
                                          verbose=1 if verbose and chief else 0,
                                          backup_path=path),
            run_dir.evaluation_backup(output, writes, config, strategy))
    if chief:
        io_utils.write_json_atomic(os.path.join(output, "report.json"), report)
        _write_text_summary(logdir, report, report["split"])
    else:
        shutil.rmtree(writes, ignore_errors=True)
    return report


# The CO monitors' saved state in a run folder (`monitor_callbacks`; AutoQuantile
# keeps its restore points beside its state file).
MONITOR_STATE = (CO_MONITOR_STATE, AUTO_QUANTILE_STATE, "auto_quantile.epoch_end_*.npz")


def copy_monitor_state(output, writes):
    """Gives a non-chief worker the chief's CO-monitor state to resume from.

    Every worker runs the monitors (their checks use collective operations)
    and must resume from the same state as the chief: each would otherwise
    start afresh on resume, and the chief alone would restore weights, raise
    the quantile or find the run stopped. Copies the chief's state files
    from `output` into the worker's `writes` folder, where the worker then
    writes its own.

    Args:
        output: the run folder (the chief's).
        writes: the worker's scratch folder.
    """
    for pattern in MONITOR_STATE:
        for path in glob.glob(os.path.join(output, pattern)):
            shutil.copyfile(path, os.path.join(writes, os.path.basename(path)))


def fit_model(config, data, output, writes, logdir, verbose, extra_callbacks, chief):
    """Builds, restores the last checkpoint, fits and saves the model."""
    import keras
    import tensorflow as tf
    from zerograd_tf import _keras_compat, callbacks as callbacks_lib
    from zerograd_tf.runs import pipeline

    model = pipeline.build_model(config, data)
    model.build((None, *data.input_shape))
    if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        # fit's cross-worker symbolic build fails under this strategy (see
        # `_keras_compat.clear_distribute_strategy`); without it the metrics
        # are built when the train step is first traced, still under the
        # active strategy. Our model is already built.
        _keras_compat.clear_distribute_strategy(model)
    # Every worker saves (under a multi-worker strategy saving runs collective
    # operations), non-chief workers into their scratch folder; all restore
    # from the chief's checkpoint.
    checkpoint = callbacks_lib.EpochCheckpoint(os.path.join(writes, "checkpoint"))
    if writes != output:
        copy_monitor_state(output, writes)
    # History is written before the checkpoint: a crash between the two
    # re-runs that epoch and overwrites its history entry.
    guard = callbacks_lib.NonFiniteLossGuard()
    callbacks = [
        guard,
        *monitor_callbacks(config, data, writes, logdir),
        callbacks_lib.HistoryWriter(os.path.join(writes, "history.json")),
        checkpoint,
        keras.callbacks.TensorBoard(logdir, write_graph=False),
        *extra_callbacks,
    ]
    callbacks[:0] = pipeline.warmup_callbacks(config, data)
    initial_epoch = callbacks_lib.EpochCheckpoint(os.path.join(output, "checkpoint")).restore(model)
    # A run the CO monitor stopped, killed before its model was saved, is
    # finished: its checkpoint holds the restored healthy weights.
    model.fit(pipeline.train_dataset(config, data, initial_epoch),
              epochs=pipeline.last_epoch(config, callbacks, initial_epoch),
              initial_epoch=initial_epoch,
              steps_per_epoch=pipeline.steps_per_epoch(config, len(data.x_train)),
              validation_data=pipeline.validation_dataset(config, data),
              validation_freq=config.val_freq, callbacks=callbacks,
              shuffle=False, verbose=verbose)
    if guard.diverged is not None:
        where = guard.diverged
        kept = callbacks_lib.EpochCheckpoint(os.path.join(output, "checkpoint"))
        raise TrainingDiverged(
            f"the training loss became {where['loss']} in epoch {where['epoch']} (step "
            f"{where['step']}); training stopped and no model was saved. "
            + (f"The checkpoint of the last good epoch is kept in {kept.directory}. "
               if kept.exists() else "")
            + "Lower --lr-max or --epsilon, or check the data.")
    # The ε warm-up sets the model's ε step by step: a run stopped during it
    # (by a CO monitor) is still the run of config.epsilon, as its final
    # evaluation and zerograd-eval's default take it.
    model.epsilon = config.epsilon
    # Saved under a temporary name, then moved in place: a kill during the
    # save leaves no half-written model.keras (only the checkpoint, which a
    # rerun resumes from), and the checkpoint goes only once the model is in.
    with io_utils.replacing(os.path.join(writes, "model.keras")) as temporary:
        model.save(temporary)
    checkpoint.delete()
    return model


def prepare(config, *, output=None, logdir=None, resume=False, overwrite=False, verbose=2):
    """Makes the strategy, loads the data, resolves `config`, checks the output.

    Under a multi-worker strategy every worker makes the checks, reading
    only (`run_dir.check_output`: all see the same shared `output`), so all
    refuse together; but only the chief locks `output`, so when it is in use
    by another run the chief alone refuses, and the other workers must be
    stopped by hand.

    Args:
        config: a `RunConfig` (data-dependent fields may be unset).
        output: the run's folder; defaults to `runs/<dataset>-<method>`.
        logdir: TensorBoard folder; defaults to `<output>/logs`.
        resume: insist on resuming a run in `output`. Defaults to False.
        overwrite: replace whatever `output` holds. Defaults to False.
        verbose: Keras `fit` verbosity. Defaults to 2.

    Returns:
        A dict with `config` (resolved), `data`, `output`, `logdir`,
        `resumed`, `verbose`, `strategy`, `chief` and `lock` (the chief's
        `run_dir.RunLock` on `output`, released by `run_prepared`).

    Raises:
        options.UsageError, datasets.DataError: with a message for the user.
    """
    _programs.load_library()  # TensorFlow, and the library's Keras classes registered
    from zerograd_tf import distribution
    from zerograd_tf.runs import pipeline

    try:
        # First: a multi-worker strategy must exist before any TensorFlow op.
        strategy = distribution.make_strategy(config.strategy)
    except ValueError as error:
        raise options.UsageError(str(error)) from None
    chief = distribution.is_chief(strategy)
    output = output or options.default_output(config.dataset, config.method)
    logdir = logdir or os.path.join(output, "logs")
    # Before any work: paths that cannot be written. Every worker checks
    # (the same shared paths), so that none waits for a chief that quit.
    run_dir.check_directory(output, "--output")
    run_dir.check_directory(logdir, "--logdir")
    data = pipeline.load_data(config)
    asked = config.precision
    try:
        config = config.resolved(data)
    except options.ConfigError as error:
        raise options.usage_error(error) from None
    if config.batch_size > len(data.x_train):
        print(f"{PROG}: warning: --batch-size {config.batch_size} is more than the "
              f"{len(data.x_train)} training examples; capped to {len(data.x_train)}.",
              file=sys.stderr)
        config = config.replace(batch_size=len(data.x_train))
    lock = None
    if chief:
        # Held until `run_prepared` ends: one run at a time in `output`.
        lock = run_dir.RunLock(os.path.join(output, run_dir.LOCK_NAME), "--output", PROG)
        try:
            resumed = run_dir.prepare_output(output, config, resume, overwrite, PROG)
        except BaseException:
            lock.release()
            raise
    else:
        # The chief's refusals (but "in use": only the chief locks), read-only.
        run_dir.check_output(output, config, resume, overwrite, PROG)
        resumed = os.path.exists(os.path.join(output, "config.json"))
    if chief and verbose:
        chosen = (precision.auto_note(precision.fastest_precision()) if asked == "auto"
                  else config.precision)
        print(f"{PROG}: precision {chosen}", file=sys.stderr)
    return {"config": config, "data": data, "output": output, "logdir": logdir,
            "resumed": resumed, "verbose": verbose, "strategy": strategy,
            "chief": chief, "lock": lock}


def run_config(config, *, output=None, logdir=None, resume=False, overwrite=False,
               verbose=2):
    """Trains (or resumes, or reports) the run of a `RunConfig`, as
    `zerograd-train` does, and returns the report.

    Example (not run here: it trains for a minute):

        from zerograd_tf.runs import training
        from zerograd_tf.runs.config import RunConfig
        report = training.run_config(RunConfig(epochs=2), output="runs/quick")
    """
    return run_prepared(prepare(config, output=output, logdir=logdir, resume=resume,
                                overwrite=overwrite, verbose=verbose))


def run_prepared(run_setup):
    """Trains a `prepare`d run (unless finished), prints its report and
    releases the run directory's lock."""
    try:
        return _run_prepared(run_setup)
    finally:
        if run_setup.get("lock") is not None:
            run_setup["lock"].release()


def _run_prepared(run_setup):
    output, logdir, chief = run_setup["output"], run_setup["logdir"], run_setup["chief"]
    report_path = os.path.join(output, "report.json")
    if run_setup["resumed"] and os.path.exists(report_path):
        with open(report_path) as f:
            report = json.load(f)
        print(f"{PROG}: {output} already holds the finished run; its report:",
              file=sys.stderr)
    else:
        if run_setup["resumed"] and chief:
            print(f"{PROG}: resuming the run in {output}", file=sys.stderr)
        # Keras prints fit's and the evaluation's progress on standard
        # output; standard output is for the report.
        with contextlib.redirect_stdout(sys.stderr):
            report = train(run_setup["config"], run_setup["data"], output, logdir,
                           verbose=run_setup["verbose"], strategy=run_setup["strategy"],
                           chief=chief)
    print(format_report(report))
    if chief:
        print(f"outputs: {output}   TensorBoard: tensorboard --logdir {logdir}")
    return report


def format_report(report):
    split = report.get("split", "test")
    entries = report.get("attacks") or [{"label": f"PGD-{report['steps']}-{report['restarts']}"}]
    title = " + ".join(e["label"] for e in entries)
    lines = [f"{title} at epsilon={report['epsilon']:.4g} on {report['num_examples']} "
             f"{split} examples:",
             f"  clean accuracy  {report['clean_accuracy']:.4f}"]
    if len(entries) > 1:
        for entry in entries:
            lines.append(f"  after {entry['label']:<24} {entry['robust_accuracy']:.4f}  "
                         f"({entry['num_attacked']} attacked, {entry['num_broken']} broken, "
                         f"{entry['seconds']:.1f} s)")
    lines.append(f"  robust accuracy {report['robust_accuracy']:.4f}"
                 + ("  (worst case per example)" if len(entries) > 1 else ""))
    from zerograd_tf.evaluation import masking

    summary = masking.square_only_summary(report)
    if summary:
        lines.append(f"  {summary[0]}: {summary[1]}")
    if report.get("note"):
        lines.append(f"  ({report['note']})")
    return "\n".join(lines)
