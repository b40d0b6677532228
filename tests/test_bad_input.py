"""Bad paths, damaged run files, busy run directories, unusable labels and
offline data sets: each is one line on standard error naming the flag or the
file, exit status 2, no traceback, and nothing written or lost.

Every row runs the real program in a subprocess. The damaged-run rows copy
one real interrupted run (a 2-epoch run stopped after its first epoch, so it
holds a checkpoint), made once per module.
"""

import errno
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from conftest import make_npz

TRAIN = "zerograd_tf.trainers.train"
EVAL = "zerograd_tf.trainers.evaluate"
TUNE = "zerograd_tf.tuning.search"
TINY = ["--epochs", "1", "--batch-size", "32", "--val-size", "32", "--val-pgd-steps", "1",
        "--val-pgd-size", "32", "--eval-steps", "1", "--eval-restarts", "1",
        "--eval-attack", "pgd", "--eval-size", "16", "--verbose", "0"]
# The run directory's lock file (zerograd-train), and a search's (zerograd-tune:
# beside its project folder, which KerasTuner's --overwrite deletes).
RUN_LOCK = ".lock"
# Runs zerograd-train with the download probe saying "unreachable", as it
# says on a machine without internet (this one has none; a test must not
# depend on that).
# `sys.argv[0]` is set to the program's name before the package is imported:
# `python -c` alone is not a program, and the package would import eagerly.
OFFLINE_TRAIN = ("import sys; sys.argv[0] = 'zerograd-train'; "
                 "from zerograd_tf import _programs; assert _programs.started_as_program(); "
                 "from zerograd_tf import downloads; "
                 "downloads.reachable = lambda name, timeout=2.0: False; "
                 "from zerograd_tf.trainers import train; sys.exit(train.main(sys.argv[1:]))")


class _Interrupted(Exception):
    pass


class _InterruptAfterFirstEpoch(keras.callbacks.Callback):
    """Saves the model beside the run, then stops the run as a kill would."""

    def __init__(self, model_path):
        super().__init__()
        self.model_path = model_path

    def on_epoch_end(self, epoch, logs=None):
        self.model.save(self.model_path)
        raise _Interrupted()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny data set, an interrupted run (with a checkpoint) and a saved model."""
    from zerograd_tf import datasets, io_utils
    from zerograd_tf.runs import training as train
    from zerograd_tf.runs.config import RunConfig

    base = tmp_path_factory.mktemp("made")
    path = make_npz(base / "data.npz", n_train=96, n_test=16)
    data = datasets.load_image_data(path, val_size=32)
    config = RunConfig(dataset=path, epochs=2, batch_size=32, val_size=32, val_pgd_steps=1,
                       val_pgd_size=32, eval_steps=1, eval_restarts=1, eval_attack="pgd",
                       eval_size=16).resolved(data)
    run = base / "run"
    os.makedirs(run)
    io_utils.write_json_atomic(str(run / "config.json"), config.to_dict())
    with pytest.raises(_Interrupted):
        train.train(config, data, str(run), str(run / "logs"), verbose=0,
                    extra_callbacks=[_InterruptAfterFirstEpoch(str(base / "model.keras"))])
    assert (run / "checkpoint" / "latest" / "model.weights.h5").is_file()
    assert (base / "model.keras").is_file()
    return base


# -- setups: each makes the bad situation in `tmp` and returns the argv (and
# anything that must stay alive while the program runs, like a held lock) --

def _a_file(tmp):
    path = tmp / "afile"
    path.write_text("not a directory")
    return str(path)


def _data(tmp, made):
    return shutil.copy(made / "data.npz", tmp / "data.npz")


def _run_copy(tmp, made):
    """A copy of the interrupted run (and the argv that resumes it)."""
    run = tmp / "run"
    shutil.copytree(made / "run", run)
    config = json.loads((run / "config.json").read_text())
    argv = [TRAIN, "--dataset", config["dataset"], "--output", str(run), *TINY,
            "--epochs", str(config["epochs"])]
    return run, argv


def output_under_a_file(tmp, made):
    return [TRAIN, "--dataset", _data(tmp, made), "--output", _a_file(tmp) + "/sub", *TINY]


def logdir_under_a_file(tmp, made):
    return [TRAIN, "--dataset", _data(tmp, made), "--output", str(tmp / "out"),
            "--logdir", _a_file(tmp) + "/logs", *TINY]


def eval_json_under_a_file(tmp, made):
    model = shutil.copy(made / "model.keras", tmp / "model.keras")
    return [EVAL, model, "--dataset", _data(tmp, made), "--steps", "1", "--restarts", "1",
            "--verbose", "0", "--json", _a_file(tmp) + "/r.json"]


def tune_directory_under_a_file(tmp, made):
    return [TUNE, "--dataset", _data(tmp, made), "--directory", _a_file(tmp) + "/t",
            "--max-trials", "1", *TINY]


def _damaged_run(damage):
    def setup(tmp, made):
        run, argv = _run_copy(tmp, made)
        damage(run)
        return argv
    setup.__name__ = damage.__name__
    return setup


def _truncate(path, keep=None):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2 if keep is None else keep])


@_damaged_run
def truncated_checkpoint_weights(run):
    _truncate(run / "checkpoint" / "latest" / "model.weights.h5")


@_damaged_run
def empty_checkpoint_weights(run):
    _truncate(run / "checkpoint" / "latest" / "model.weights.h5", keep=0)


@_damaged_run
def broken_checkpoint_state(run):
    (run / "checkpoint" / "latest" / "state.json").write_text('{"epo')


@_damaged_run
def truncated_history(run):
    _truncate(run / "history.json")


def _hold_lock(path):
    handle = open(path, "a")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def run_in_use(tmp, made):
    run, argv = _run_copy(tmp, made)
    return argv, _hold_lock(run / RUN_LOCK)


def new_run_in_use(tmp, made):
    """Two runs started together into a new --output: the second is refused."""
    out = tmp / "out"
    out.mkdir()
    return ([TRAIN, "--dataset", _data(tmp, made), "--output", str(out), *TINY],
            _hold_lock(out / RUN_LOCK))


def search_in_use(tmp, made):
    directory = tmp / "t"
    directory.mkdir()
    return ([TUNE, "--dataset", _data(tmp, made), "--directory", str(directory),
             "--project-name", "p", "--max-trials", "1", *TINY],
            _hold_lock(directory / ".p.lock"))


def _string_labels(tmp, keys=("y_train", "y_test")):
    path = tmp / "strings.npz"
    make_npz(path, n_train=96, n_test=16)
    arrays = dict(np.load(path))
    for key in keys:
        arrays[key] = arrays[key].astype(str)
    np.savez(path, **arrays)
    return str(path)


def train_on_string_labels(tmp, made):
    return [TRAIN, "--dataset", _string_labels(tmp), "--output", str(tmp / "out"), *TINY]


def eval_on_string_labels(tmp, made):
    model = shutil.copy(made / "model.keras", tmp / "model.keras")
    return [EVAL, model, "--dataset", _string_labels(tmp, keys=("y_test",)), "--steps", "1", "--restarts", "1",
            "--verbose", "0", "--json", str(tmp / "r.json")]


def train_on_object_labels(tmp, made):
    path = tmp / "objects.npz"
    make_npz(path, n_train=96, n_test=16)
    arrays = dict(np.load(path))
    arrays["y_train"] = arrays["y_train"].astype(object)
    np.savez(path, **arrays)
    return [TRAIN, "--dataset", str(path), "--output", str(tmp / "out"), *TINY]


def eval_on_a_directory(tmp, made):
    folder = tmp / "run"
    folder.mkdir()
    (folder / "history.json").write_text("{}")
    return [EVAL, str(folder), "--dataset", _data(tmp, made), "--json", str(tmp / "r.json")]


def cifar10_offline(tmp, made):
    (tmp / "tfds").mkdir()
    return ["-c", OFFLINE_TRAIN, "--dataset", "cifar10", "--data-dir", str(tmp / "tfds"),
            "--output", str(tmp / "out"), *TINY]


# (setup, words the one line must contain). Every row starts a program (a
# TensorFlow import, ~5-10 s on 2 CPU cores): the fast tier keeps two rows (a
# path under a file, labels that are not integers), the others are marked
# slow.
SLOW = pytest.mark.slow
ROWS = [
    pytest.param(output_under_a_file, ["--output", "afile", "is a file"]),
    pytest.param(logdir_under_a_file, ["--logdir", "afile", "is a file"], marks=SLOW),
    pytest.param(eval_json_under_a_file, ["--json", "afile", "is a file"], marks=SLOW),
    pytest.param(tune_directory_under_a_file, ["--directory", "afile", "is a file"],
                 marks=SLOW),
    pytest.param(truncated_checkpoint_weights, ["model.weights.h5", "damaged", "--overwrite"],
                 marks=SLOW),
    pytest.param(empty_checkpoint_weights, ["model.weights.h5", "damaged", "--overwrite"],
                 marks=SLOW),
    pytest.param(broken_checkpoint_state, ["state.json", "damaged", "--overwrite"],
                 marks=SLOW),
    pytest.param(truncated_history, ["history.json", "damaged", "--overwrite"], marks=SLOW),
    pytest.param(run_in_use, ["--output", "in use"], marks=SLOW),
    pytest.param(new_run_in_use, ["--output", "in use"], marks=SLOW),
    pytest.param(search_in_use, ["--directory", "in use"], marks=SLOW),
    pytest.param(train_on_string_labels, ["y_train", "str", "integers"]),
    pytest.param(eval_on_string_labels, ["y_test", "str", "integers"], marks=SLOW),
    pytest.param(train_on_object_labels, ["y_train", "object", "integers"], marks=SLOW),
    pytest.param(eval_on_a_directory, ["is a directory", "model.keras"], marks=SLOW),
    pytest.param(cifar10_offline, ["cifar10", ".npz", "--dataset"], marks=SLOW),
]


def _snapshot(folder):
    """Every file and folder under `folder` with its content's hash."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            found[os.path.relpath(os.path.join(root, name), folder)] = "dir"
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = hashlib.sha1(f.read()).hexdigest()
    return found


def _run(argv, cwd):
    """Runs a program as its console script does: `python -m <module> ...`.

    `argv[0]` is the program's module (`TRAIN`, `EVAL`, `TUNE`), run with
    `-m` so that `_programs.started_as_program()` is true and the package
    imports lazily, as `zerograd-train` does. A row that must patch something
    first passes `["-c", code, ...]`; its code sets `sys.argv[0]` to the
    program's name before importing the package (see `OFFLINE_TRAIN`).
    """
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if argv[0] != "-c":
        argv = ["-m", *argv]
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("setup, words", ROWS, ids=[row.values[0].__name__ for row in ROWS])
def test_bad_input_is_one_line_with_exit_status_2(setup, words, made, tmp_path):
    made_argv = setup(tmp_path, made)
    argv, held = made_argv if isinstance(made_argv, tuple) else (made_argv, None)
    before = _snapshot(tmp_path)
    started = time.monotonic()
    try:
        result = _run(argv, cwd=tmp_path)
    finally:
        if held is not None:
            held.close()
    seconds = time.monotonic() - started
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert len(lines) == 1, lines
    assert ": error: " in lines[0], lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not result.stdout.strip(), result.stdout  # refused before any work
    assert _snapshot(tmp_path) == before
    assert seconds < 120


@pytest.mark.slow
def test_a_batch_larger_than_the_data_is_capped_and_said(made, tmp_path):
    out = tmp_path / "out"
    result = _run([TRAIN, "--dataset", _data(tmp_path, made), "--output", str(out), *TINY,
                   "--batch-size", "100000"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    said = [line for line in result.stderr.splitlines() if "--batch-size" in line]
    assert len(said) == 1 and "capped" in said[0] and "64" in said[0], result.stderr
    assert json.loads((out / "config.json").read_text())["batch_size"] == 64
    assert json.loads((out / "history.json").read_text())["epoch"] == [1]


@pytest.mark.slow
def test_two_runs_started_together_into_one_output(made, tmp_path):
    out = tmp_path / "out"
    argv = [TRAIN, "--dataset", _data(tmp_path, made), "--output", str(out), *TINY]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    runs = [subprocess.Popen([sys.executable, "-m", *argv], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = sorted((run.wait(timeout=300), run.stderr.read()) for run in runs)
    assert [code for code, _ in results] == [0, 2], results
    refused = [line for line in results[1][1].splitlines() if line.strip()]
    assert len(refused) == 1 and "--output" in refused[0] and "in use" in refused[0], refused
    assert json.loads((out / "history.json").read_text())["epoch"] == [1]
    assert not (out / RUN_LOCK).exists()


def _saved_config_and_data(run):
    """The configuration saved in `run` and its data, as a rerun loads them."""
    from zerograd_tf import datasets
    from zerograd_tf.runs.config import RunConfig

    config = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    return config, datasets.load_image_data(config.dataset, val_size=config.val_size)


def _built_model(run):
    """A new model of the run's configuration, built as zerograd-train builds it."""
    from zerograd_tf.runs import pipeline

    config, data = _saved_config_and_data(run)
    model = pipeline.build_model(config, data)
    model.build((None, *data.input_shape))
    return model


def test_a_damaged_latest_checkpoint_resumes_from_the_previous_one(made, tmp_path):
    from zerograd_tf import callbacks
    from zerograd_tf.runs import run_dir

    run, _ = _run_copy(tmp_path, made)
    checkpoint = run / "checkpoint"
    shutil.copytree(checkpoint / "latest", checkpoint / "previous")
    _truncate(checkpoint / "latest" / "model.weights.h5")
    warning, = run_dir.check_run_files(str(run), "zerograd-train")
    assert "latest/model.weights.h5 is damaged" in warning
    assert "resuming from the previous checkpoint (epoch 1)" in warning
    model = _built_model(run)
    assert callbacks.EpochCheckpoint(str(checkpoint)).restore(model) == 1
    shutil.rmtree(checkpoint / "previous")
    with pytest.raises(ValueError, match="model.weights.h5 is damaged"):
        callbacks.EpochCheckpoint(str(checkpoint)).restore(model)


def _continue(run):
    """Continues the run in `run` in this process, as zerograd-train would."""
    from zerograd_tf.runs import training as train

    config, data = _saved_config_and_data(run)
    return train.train(config, data, str(run), str(run / "logs"), verbose=0)


@pytest.mark.slow
def test_a_run_killed_while_saving_its_model_resumes(made, tmp_path, monkeypatch):
    """The model is saved under a temporary name, then moved in place; and a
    truncated model.keras (as a kill during an in-place save left it) beside
    an intact checkpoint resumes: nothing more to train, saved again."""
    reference = tmp_path / "reference"
    shutil.copytree(made / "run", reference)
    _continue(reference)
    run, argv = _run_copy(tmp_path, made)
    saved_to = []

    def killed_while_saving(model, filepath, *args, **kwargs):
        saved_to.append(os.fspath(filepath))
        with open(filepath, "wb") as f:
            f.write(b"PK\x03\x04 the first bytes of a zip archive")
        raise _Interrupted()

    with monkeypatch.context() as patch:
        patch.setattr(keras.Model, "save", killed_while_saving)
        with pytest.raises(_Interrupted):
            _continue(run)
    assert saved_to[0].endswith(".keras") and os.path.basename(saved_to[0]) != "model.keras"
    assert sorted(os.listdir(run)) == sorted(os.listdir(made / "run"))  # nothing left over
    assert json.loads((run / "checkpoint" / "latest" / "state.json").read_text()) == {"epoch": 2}
    # As the kill left it before saves were atomic.
    shutil.copy(made / "model.keras", run / "model.keras")
    _truncate(run / "model.keras")
    result = _run(argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    warnings_ = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings_) == 1 and "model.keras is damaged" in warnings_[0], result.stderr
    assert "checkpoint (epoch 2)" in warnings_[0], warnings_
    assert not (run / "checkpoint").exists() and (run / "report.json").is_file()
    resumed = keras.models.load_model(run / "model.keras")
    uninterrupted = keras.models.load_model(reference / "model.keras")
    for a, b in zip(resumed.get_weights(), uninterrupted.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_a_damaged_report_of_a_finished_run_is_set_aside_and_evaluated_again(
        made, tmp_path, capsys):
    from zerograd_tf.trainers import train

    run, argv = _run_copy(tmp_path, made)
    _continue(run)
    stamp = (run / "model.keras").stat().st_mtime_ns
    _truncate(run / "report.json")
    damaged = (run / "report.json").read_bytes()
    capsys.readouterr()
    assert train.main(argv[1:]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1, err
    assert "warning" in err[0] and "report.json is damaged" in err[0], err
    assert "report.json.damaged" in err[0] and "evaluated again" in err[0], err
    assert (run / "report.json.damaged").read_bytes() == damaged
    assert json.loads((run / "report.json").read_text())["num_examples"] == 16
    assert (run / "model.keras").stat().st_mtime_ns == stamp  # not trained again


def test_a_checkpoint_is_checked_without_reading_its_arrays(made, tmp_path, monkeypatch):
    """Checking a checkpoint reads no array data (a big model's is gigabytes);
    only `load_weights` does, once."""
    import h5py

    from zerograd_tf import callbacks
    from zerograd_tf.runs import run_dir

    run, _ = _run_copy(tmp_path, made)
    reads = []
    original = h5py.Dataset.__getitem__

    def counted(dataset, *args, **kwargs):
        reads.append(dataset.name)
        return original(dataset, *args, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counted)
    checkpoint = callbacks.EpochCheckpoint(str(run / "checkpoint"))
    assert run_dir.check_run_files(str(run), "zerograd-train") == []
    assert checkpoint.problems() == [] and checkpoint.usable()[1] == 1
    assert reads == []


def test_a_checkpoint_that_fails_to_load_falls_back_to_the_previous_one(made, tmp_path):
    """A weights file that is sound but does not fit the model (here: another
    model's) is only found by `load_weights`: restore goes on to the previous
    checkpoint."""
    from zerograd_tf import callbacks

    run, _ = _run_copy(tmp_path, made)
    checkpoint = run / "checkpoint"
    shutil.copytree(checkpoint / "latest", checkpoint / "previous")
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    os.remove(checkpoint / "latest" / "model.weights.h5")
    other.save_weights(str(checkpoint / "latest" / "model.weights.h5"))
    (checkpoint / "latest" / "state.json").write_text('{"epoch": 2}')
    model = _built_model(run)
    assert callbacks.EpochCheckpoint(str(checkpoint)).restore(model) == 1
    shutil.rmtree(checkpoint / "previous")
    with pytest.raises(ValueError, match="latest/model.weights.h5 cannot be loaded"):
        callbacks.EpochCheckpoint(str(checkpoint)).restore(model)


def _fake_fcntl(errno_):
    import types

    def flock(handle, operation):
        raise OSError(errno_, os.strerror(errno_))

    return types.SimpleNamespace(LOCK_EX=2, LOCK_NB=4, flock=flock)


@pytest.mark.parametrize("fcntl_module, reason", [
    (None, "no file locks on this system"),
    (_fake_fcntl(errno.ENOLCK), os.strerror(errno.ENOLCK)),
    (_fake_fcntl(errno.EOPNOTSUPP), os.strerror(errno.EOPNOTSUPP)),
    (_fake_fcntl(errno.ENOSYS), os.strerror(errno.ENOSYS)),
], ids=["no-fcntl", "ENOLCK", "EOPNOTSUPP", "ENOSYS"])
def test_without_file_locks_a_run_warns_and_goes_on(fcntl_module, reason, tmp_path,
                                                    monkeypatch, capsys):
    from zerograd_tf.runs import run_dir

    monkeypatch.setitem(sys.modules, "fcntl", fcntl_module)  # None: `import fcntl` fails
    folder = tmp_path / "new" / "run"
    lock = run_dir.RunLock(str(folder / RUN_LOCK), "--output", "zerograd-train")
    again = run_dir.RunLock(str(folder / RUN_LOCK), "--output", "zerograd-train")
    err = capsys.readouterr().err.splitlines()
    assert err == [f"zerograd-train: warning: cannot lock --output {tmp_path}/new/run "
                   f"({reason}); make sure no other run writes there."] * 2
    assert os.listdir(folder) == []
    again.release()
    lock.release()
    assert not (tmp_path / "new").exists()


def test_the_programs_start_without_fcntl():
    """As on Windows: no `fcntl` module."""
    code = ("import sys; sys.modules['fcntl'] = None; sys.argv[0] = 'zerograd-train'; "
            "from zerograd_tf.trainers import train, evaluate; "
            "from zerograd_tf.tuning import search; "
            "sys.exit(train.main(['--help']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usage: zerograd-train" in result.stdout


def test_a_worker_refuses_what_the_chief_refuses(made, tmp_path, monkeypatch):
    """Multi-worker runs: a non-chief worker makes the chief's checks too, so
    that it does not wait forever for a chief that refused."""
    from zerograd_tf import distribution
    from zerograd_tf.runs import options, training as train
    from zerograd_tf.runs.config import RunConfig

    monkeypatch.setattr(distribution, "is_chief", lambda strategy: False)
    run, _ = _run_copy(tmp_path, made)
    config = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    before = _snapshot(tmp_path)
    with pytest.raises(options.UsageError, match="differs in: epochs"):
        train.prepare(config.replace(epochs=3), output=str(run))
    _truncate(run / "history.json")
    with pytest.raises(options.UsageError, match="history.json is damaged"):
        train.prepare(config, output=str(run))
    with pytest.raises(options.UsageError, match="--output .*afile.* is a file"):
        train.prepare(config, output=_a_file(tmp_path) + "/run")
    (run / "history.json").unlink()
    assert train.prepare(config, output=str(run))["lock"] is None  # only the chief locks
    assert not (run / RUN_LOCK).exists()
    assert set(_snapshot(tmp_path)) == set(before) - {"run/history.json"} | {"afile"}


def test_eval_accepts_a_run_directory_for_its_model(made, tmp_path):
    from zerograd_tf.trainers import evaluate

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(made / "model.keras", run / "model.keras")
    assert evaluate.load_model(str(run)).epsilon == pytest.approx(0.1)


def test_offline_a_tfds_download_fails_in_seconds_and_leaves_nothing(tmp_path):
    from zerograd_tf import datasets, tfds_data

    asked = []
    started = time.monotonic()
    with pytest.raises(datasets.DataError, match=r"'cifar10'.*not reachable.*\.npz"):
        tfds_data.load_tfds("cifar10", data_dir=str(tmp_path),
                            reachable=lambda name: asked.append(name) or False)
    assert time.monotonic() - started < 10 and asked == ["cifar10"]
    assert os.listdir(tmp_path) == []


def test_online_a_tfds_download_proceeds(tmp_path, monkeypatch):
    import types

    import tensorflow as tf
    import tensorflow_datasets as tfds
    from zerograd_tf import tfds_data

    loads = []

    def load(name, split, download, **kwargs):
        loads.append((name, split, download))
        images = np.zeros((6, 32, 32, 3), np.uint8)
        info = types.SimpleNamespace(features={"label": types.SimpleNamespace(num_classes=10)})
        return tf.data.Dataset.from_tensor_slices((images, np.arange(6) % 10)), info

    monkeypatch.setattr(tfds, "load", load)
    x_train, _, x_test, _, classes = tfds_data.load_tfds(
        "cifar10", data_dir=str(tmp_path), reachable=lambda name: True)
    assert loads == [("cifar10", "train", True), ("cifar10", "test", True)]
    assert x_train.shape == (6, 32, 32, 3) and classes == 10
    # With TFDS' mock data nothing is downloaded: the host is not asked.
    monkeypatch.undo()
    with tfds.testing.mock_data(num_examples=6):
        x_train, _, _, _, _ = tfds_data.load_tfds("cifar10", data_dir=str(tmp_path),
                                                  reachable=lambda name: False)
    assert len(x_train) == 6


def test_the_download_probe_is_one_bounded_connection(monkeypatch):
    import socket

    from zerograd_tf import downloads

    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        monkeypatch.setitem(downloads.HOSTS, "cifar10", server.getsockname())
        assert downloads.reachable("cifar10", timeout=2.0)
    started = time.monotonic()
    assert not downloads.reachable("cifar10", timeout=2.0)  # closed now
    monkeypatch.setitem(downloads.HOSTS, "cifar10", ("no-such-host.invalid", 443))
    assert not downloads.reachable("cifar10", timeout=2.0)
    assert time.monotonic() - started < 5


def test_a_data_set_without_a_known_host_is_probed_at_tfds_own_bucket(monkeypatch):
    """Any TFDS name is probed (no KeyError): at TFDS' bucket when its host is unknown."""
    from zerograd_tf import downloads

    asked = []

    def offline(address, timeout):
        asked.append(address)
        raise OSError("offline")

    monkeypatch.setattr(downloads.socket, "create_connection", offline)
    for variable in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    assert downloads.download_host("some_new_dataset") == downloads.DEFAULT_HOST
    assert not downloads.reachable("some_new_dataset", timeout=1.0)
    assert asked == [downloads.DEFAULT_HOST]
