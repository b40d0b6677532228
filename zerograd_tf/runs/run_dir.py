"""Checks of the programs' output paths and run directories, and their lock.

- `check_directory` / `check_file`: a path the program will write, checked
  before any work (a file where a folder must be, a folder that cannot be
  written).
- `RunLock` (from `run_lock`): an exclusive OS lock on a lock file in a run
  directory, so that two runs never write into the same one.
- `check_run_files`: the files a resumed run reads, checked before anything
  is written, so that a damaged one is reported (naming it) instead of
  crashing half-way.
- `prepare_output`: `zerograd-train --output`: a new run, the same run
  resumed (its configuration compared with the saved `config.json`), or
  a refusal; `check_output` makes its checks without writing.
- `evaluation_backup`: the progress file of a run's final evaluation, from
  which a run killed during it continues.

Every problem is an `options.UsageError`: one line naming the flag, exit
status 2.
"""

import glob
import json
import os
import shutil
import sys
import zipfile

from zerograd_tf import io_utils
from zerograd_tf.runs import config as config_lib, options
from zerograd_tf.runs.run_lock import RunLock  # noqa: F401 - part of this module's API

LOCK_NAME = ".lock"
# The JSON files a resumed run reads (and `report.json`, of a finished run:
# see `set_aside_damaged_report`).
RUN_JSON_FILES = ("history.json", "co_monitor.json", "auto_quantile.json")
# Options of the final evaluation: they do not change what is trained, so a
# run may be resumed (or a finished run re-evaluated) with other values.
EVALUATION_KEYS = ("eval_steps", "eval_restarts", "eval_alpha", "eval_size", "eval_attack",
                   "eval_apgd_steps", "eval_square_queries", "eval_batch_size")
# Options added after runs were saved: a saved config without them means
# their default.
ADDED_DEFAULTS = {"eval_attack": "pgd", "eval_apgd_steps": 100, "eval_square_queries": 5000,
                  "gradalign_lambda": 0.2, "co_check_size": None, "co_pgd_steps": 10,
                  "eval_batch_size": 256, "auto_slide": None}


def _first_existing(path):
    """The nearest existing path at or above `path`."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_directory(path, flag, named=None):
    """Raises UsageError unless `path` is (or can be made) a writable folder.

    Args:
        path: the folder a program will create or write into.
        flag: the option that names it (`"--output"`), for the message.
        named: the path the message names as the option's value. Defaults
            to `path`.

    Examples:
        >>> import os, tempfile
        >>> afile = os.path.join(tempfile.mkdtemp(), "afile")
        >>> open(afile, "w").close()
        >>> check_directory(os.path.join(tempfile.mkdtemp(), "new", "run"), "--output")
        >>> try:
        ...     check_directory(os.path.join(afile, "run"), "--output")
        ... except ValueError as error:
        ...     print(str(error).replace(os.path.dirname(afile), "tmp"))
        --output tmp/afile/run: tmp/afile is a file, not a directory; choose another --output.
    """
    named = path if named is None else named
    existing = _first_existing(path)
    if not os.path.isdir(existing):
        where = "" if existing == os.path.abspath(named) else f": {existing}"
        raise options.UsageError(f"{flag} {named}{where} is a file, not a directory; choose "
                                 f"another {flag}.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise options.UsageError(f"{flag} {named}: {existing} is not writable; choose "
                                 f"another {flag}.")


def check_file(path, flag):
    """Raises UsageError unless the file `path` can be written (its folder made).

    Args:
        path: the file a program will write.
        flag: the option that names it (`"--json"`), for the message.
    """
    if os.path.isdir(path):
        raise options.UsageError(f"{flag} {path} is a directory; give a file name.")
    check_directory(os.path.dirname(os.path.abspath(path)), flag, named=path)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise options.UsageError(f"{flag} {path} is not writable; choose another {flag}.")


def entries(output):
    """The names in a run directory, without its lock file."""
    return [name for name in os.listdir(output) if name != LOCK_NAME]


def _json_problem(path):
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return io_utils.damaged(path, error)
    if not isinstance(value, (dict, list)):
        return f"{path} is damaged (it holds a JSON {type(value).__name__})"
    return None


def clear(output):
    """Deletes what a run directory holds, except its (held) lock file."""
    for name in entries(output):
        path = os.path.join(output, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def check_run_files(output, prog):
    """Checks the files a resumed run in `output` reads, before it writes any.

    A damaged file that the run would not read is no refusal: a damaged
    latest checkpoint with a readable previous one (the run resumes from
    that), or a damaged `model.keras` beside a readable checkpoint (a run
    killed while it saved its model: the run resumes from the checkpoint
    and saves the model again). `report.json` is not checked here (see
    `set_aside_damaged_report`).

    Args:
        output: the run directory.
        prog: the program's name, for the warnings.

    Returns:
        A list of warning lines, one per damaged file that is not read;
        empty when every file is sound.

    Raises:
        options.UsageError: naming the damaged file, offering --overwrite.
    """
    from zerograd_tf.callbacks import epoch_checkpoint

    advice = "pass --overwrite to start the run afresh, or choose another --output."
    for name in RUN_JSON_FILES:
        problem = _json_problem(os.path.join(output, name))
        if problem:
            raise options.UsageError(f"{problem}; {advice}")
    warnings = []
    checkpoint = epoch_checkpoint.EpochCheckpoint(os.path.join(output, "checkpoint"))
    problems = checkpoint.problems()
    good = checkpoint.usable()
    if problems:
        if good is None:
            raise options.UsageError(f"{problems[0]}; {advice}")
        warnings.append(f"{prog}: warning: {problems[0]}; resuming from the previous "
                        f"checkpoint (epoch {good[1]}).")
    model_path = os.path.join(output, "model.keras")
    if os.path.isfile(model_path) and not zipfile.is_zipfile(model_path):
        problem = f"{model_path} is damaged (not a zip archive)"
        if good is None:  # the run is finished: this is the model it would load
            raise options.UsageError(f"{problem}; {advice}")
        warnings.append(f"{prog}: warning: {problem}; resuming from the checkpoint (epoch "
                        f"{good[1]}), which saves it again.")
    return warnings


def set_aside_damaged_report(output, prog):
    """Moves a damaged `report.json` of `output` to `report.json.damaged`.

    The report is only the final evaluation's result: without it, a
    finished run is evaluated again (its training kept). Prints one warning
    line when it moves the file.

    Args:
        output: the run directory.
        prog: the program's name, for the warning.

    Returns:
        True when the report was damaged (and moved), else False.

    Examples:
        >>> import os, tempfile
        >>> run = tempfile.mkdtemp()
        >>> with open(os.path.join(run, "report.json"), "w") as f:
        ...     _ = f.write('{"clean_acc')
        >>> set_aside_damaged_report(run, "zerograd-train")
        True
        >>> sorted(os.listdir(run))
        ['report.json.damaged']
    """
    path = os.path.join(output, "report.json")
    problem = _json_problem(path)
    if not problem:
        return False
    os.replace(path, path + ".damaged")
    print(f"{prog}: warning: {problem}; moved to {path}.damaged, and the run is evaluated "
          "again.", file=sys.stderr)
    return True


def _differences(saved, config):
    saved = config_lib.upgraded(saved)
    config = config.to_dict()
    keys = sorted(set(saved) | set(config))
    return [k for k in keys if k not in EVALUATION_KEYS
            and saved.get(k, ADDED_DEFAULTS.get(k)) != config.get(k, ADDED_DEFAULTS.get(k))]


def _same_evaluation(saved, config):
    saved = config_lib.upgraded(saved)
    config = config.to_dict()
    return all(saved.get(k, ADDED_DEFAULTS.get(k)) == config.get(k) for k in EVALUATION_KEYS)


def _read_saved_config(path):
    """The JSON object of a run's `config.json`, or a one-line UsageError."""
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise options.UsageError(
            f"{path} is not a readable run configuration ({type(error).__name__}); pass "
            "--overwrite to replace the run, or choose another --output.") from None
    if not isinstance(saved, dict):
        raise options.UsageError(
            f"{path} holds a JSON {type(saved).__name__}, not a run configuration; pass "
            "--overwrite to replace the run, or choose another --output.")
    return saved


class DifferentRun(options.UsageError):
    """The output folder holds a run of another configuration.

    Attributes:
        output: the folder.
        differences: the differing fields, as `"name: x there, y here; ..."`.
    """

    def __init__(self, output, differences):
        super().__init__(
            f"{output} holds a run with a different configuration (differs in: "
            f"{differences}); give the run's values to resume it, pass --overwrite to "
            "replace it, or choose another --output.")
        self.output, self.differences = output, differences


def check_output(output, config, resume, overwrite, prog="zerograd-train"):
    """The checks of `prepare_output`, reading only: what it would refuse.

    Every worker of a multi-worker run makes them (they see the same shared
    --output), so that none goes on to wait for a chief that refused.

    Args:
        output: the run directory (`--output`).
        config: the run's resolved `RunConfig`.
        resume: insist on resuming a run in `output` (`--resume`).
        overwrite: what `output` holds is to be deleted (`--overwrite`).
        prog: the program's name, for messages. Defaults to
            `"zerograd-train"`.

    Returns:
        `(saved, warnings)`: the saved configuration (a dict) of the run of
        the same configuration that `output` holds, or None for a new run;
        and `check_run_files`' warnings for it.

    Raises:
        options.UsageError: as `prepare_output`.
    """
    check_directory(output, "--output")
    if os.path.isdir(output) and entries(output):
        if overwrite:
            return None, []
        config_path = os.path.join(output, "config.json")
        if not os.path.exists(config_path):
            raise options.UsageError(
                f"{output} is not empty and holds no {prog} run; pass --overwrite to "
                "replace its contents, or choose another --output.")
        saved = _read_saved_config(config_path)
        different = _differences(saved, config)
        if different:
            # The run's values too: a default that changed between versions
            # (0.2.0's --method) is then one flag away from resuming it.
            upgraded, wanted = config_lib.upgraded(saved), config.to_dict()
            values = "; ".join(
                f"{k}: {upgraded.get(k, ADDED_DEFAULTS.get(k))!r} there, "
                f"{wanted.get(k, ADDED_DEFAULTS.get(k))!r} here" for k in different)
            raise DifferentRun(output, values)
        return saved, check_run_files(output, prog)
    if resume:
        raise options.UsageError(f"--resume: there is no run to resume in {output}.")
    return None, []


def prepare_output(output, config, resume, overwrite, prog="zerograd-train"):
    """Checks --output, and records `config` there; returns True when a
    previous run is resumed.

    Args:
        output: the run directory (`--output`).
        config: the run's resolved `RunConfig`.
        resume: insist on resuming a run in `output` (`--resume`).
        overwrite: delete what `output` holds first (`--overwrite`).
        prog: the program's name, for messages. Defaults to
            `"zerograd-train"`.

    Raises:
        DifferentRun: `output` holds a run of another configuration (unless
            `overwrite`).
        options.UsageError: for another non-empty directory that is not a
            run (unless `overwrite`), or `resume` with nothing to resume.
    """
    config_path = os.path.join(output, "config.json")
    saved, warnings = check_output(output, config, resume, overwrite, prog)
    if saved is not None:
        for warning in warnings:
            print(warning, file=sys.stderr)
        set_aside_damaged_report(output, prog)
        if not _same_evaluation(saved, config):
            # The final evaluation changes: record it (a finished run is
            # then evaluated again, its training kept).
            io_utils.write_json_atomic(config_path, config.to_dict())
            report_path = os.path.join(output, "report.json")
            if os.path.exists(report_path):
                os.replace(report_path, report_path + ".previous")
        return True
    if overwrite and os.path.isdir(output):
        clear(output)
    os.makedirs(output, exist_ok=True)
    io_utils.write_json_atomic(config_path, config.to_dict())
    return False


def evaluation_backup(output, writes, config, strategy=None):
    """Where the final evaluation saves its progress, so that a run killed
    during it continues it when run again.

    Files of other evaluation options are removed (their evaluation is not
    the one to finish). Every worker of a multi-worker strategy must run the
    same attack stages: a non-chief worker starts from a copy of the
    chief's file, and no worker goes on before all have taken theirs.

    Args:
        output: the run folder.
        writes: the folder this worker writes (`output` for the chief).
        config: the run's `RunConfig`.
        strategy: the `tf.distribute` strategy. Defaults to `None`.

    Returns:
        The path (`evaluate_robustness`'s `backup_path`): a file in
        `writes` named by the evaluation's options.
    """
    chosen = {k: getattr(config, k) for k in (*EVALUATION_KEYS, "epsilon", "seed")}
    name = f"evaluation.{io_utils.options_name(chosen)}.progress.json"
    for path in glob.glob(os.path.join(writes, "evaluation.*.progress.json")):
        if os.path.basename(path) != name:
            os.remove(path)
    if writes != output and os.path.exists(os.path.join(output, name)):
        shutil.copyfile(os.path.join(output, name), os.path.join(writes, name))
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # A barrier: the chief saves no stage before every worker has copied.
        strategy.reduce(tf.distribute.ReduceOp.SUM,
                        strategy.run(lambda: tf.constant(1.0)), axis=None)
    return os.path.join(writes, name)
