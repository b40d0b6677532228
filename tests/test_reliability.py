"""Nothing silent: every bad input is one line with exit status 2, labels are
checked, and a NaN loss stops training with the last good checkpoint kept."""

import json
import logging
import os
import warnings

import keras
import numpy as np
import pytest

from conftest import make_npz
from zerograd_tf.trainers import evaluate as eval_program
from zerograd_tf.runs import pipeline, training
from zerograd_tf.trainers import train as train_program
from zerograd_tf.runs.config import RunConfig
from zerograd_tf import datasets

import zerograd_tf as zg

from zerograd_tf.runs import tuning as tune_library
from zerograd_tf.tuning import search as tune_program
FAST = ["--epochs", "1", "--batch-size", "32", "--val-size", "32", "--val-pgd-steps", "2",
        "--val-pgd-size", "32", "--eval-steps", "2", "--eval-restarts", "1", "--eval-attack", "pgd", "--verbose", "0"]


def corrupt(path):
    """Flips bytes inside the compressed data, keeping the file's size."""
    data = bytearray(open(path, "rb").read())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    open(path, "wb").write(bytes(data))
    return path


def _cases(tmp_path):
    """(program, argv, words the one line must contain) for every bad input."""
    good = make_npz(tmp_path / "good.npz")
    damaged = make_npz(tmp_path / "damaged.npz", n_train=400)
    np.savez_compressed(damaged, **dict(np.load(damaged)))
    corrupt(damaged)
    nan = make_npz(tmp_path / "nan.npz",
                   x_train=np.full((160, 12, 12, 1), np.nan, np.float32))
    test_12 = make_npz(tmp_path / "t12.npz", y_test=np.full(48, 12, np.uint8))
    one_class = make_npz(tmp_path / "one.npz", y_train=np.zeros(160, np.uint8))
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    not_json = tmp_path / "not_json"
    not_json.mkdir()
    (not_json / "config.json").write_text("{oops")
    a_list = tmp_path / "a_list"
    a_list.mkdir()
    (a_list / "config.json").write_text("[1, 2]")
    text_model = tmp_path / "model.keras"
    text_model.write_text("hello")
    out = str(tmp_path / "out")
    return [
        (train_program, ["--dataset", damaged, "--output", out], ["damaged"]),
        (eval_program, [str(text_model), "--dataset", good], ["not a Keras model"]),
        (train_program, ["--dataset", nan, "--output", out], ["NaN"]),
        (train_program, ["--dataset", test_12, "--output", out], ["y_test", "12"]),
        (train_program, ["--dataset", one_class, "--output", out], ["single class"]),
        (train_program, ["--dataset", good, "--val-size", "nan", "--output", out],
         ["--val-size"]),
        (train_program, ["--dataset", good, "--val-size", "inf", "--output", out],
         ["--val-size"]),
        (train_program, ["--dataset", good, "--val-size", "32", "--output", str(a_file)],
         ["--output", "a file"]),
        (train_program, ["--dataset", good, "--val-size", "32", "--output", str(not_json)],
         ["config.json"]),
        (train_program, ["--dataset", good, "--val-size", "32", "--output", str(a_list)],
         ["JSON list"]),
        (train_program, ["--dataset", good, "--weight-decay", "-1", "--output", out],
         ["--weight-decay", ">= 0"]),
        (train_program, ["--dataset", good, "--epsilon", "300", "--output", out],
         ["--epsilon"]),
        (train_program, ["--dataset", good, "--epochs", "0", "--output", out],
         ["--epochs", "--help"]),
        (train_program, ["--dataset", good, "--method", "fgsm3", "--output", out],
         ["--method", "--help"]),
        (tune_program, ["--dataset", good, "--samples", "0", "--directory", out],
         ["zerograd-tune", "--samples"]),
        (tune_program, ["--dataset", good, "--weight-decay", "-1", "--directory", out],
         ["zerograd-tune", "--weight-decay"]),
    ]


def test_every_bad_input_is_one_line_with_exit_status_2(tmp_path, capsys):
    for program, argv, words in _cases(tmp_path):
        try:
            code = program.main(argv)
        except SystemExit as exit_:
            code = exit_.code
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip()]
        label = f"{program.PROG} {' '.join(argv)}"
        assert code == 2, label
        assert len(lines) == 1, (label, lines)
        assert lines[0].startswith(f"{program.PROG}: error: "), (label, lines)
        assert "Traceback" not in captured.err
        for word in words:
            assert word in lines[0], (label, word, lines[0])
        assert not os.path.exists(tmp_path / "out"), label


@pytest.mark.slow
def test_eval_on_a_damaged_npz(tmp_path, capsys):
    data = make_npz(tmp_path / "d.npz")
    out = tmp_path / "run"
    assert train_program.main(["--dataset", data, "--output", str(out), *FAST]) == 0
    damaged = make_npz(tmp_path / "damaged.npz", n_train=400)
    np.savez_compressed(damaged, **dict(np.load(damaged)))
    corrupt(damaged)
    capsys.readouterr()
    assert eval_program.main([str(out / "model.keras"), "--dataset", damaged]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "damaged" in err[0]


def test_labels_are_inferred_from_training_and_gaps_are_named(tmp_path, caplog):
    y = np.random.default_rng(0).choice([0, 1, 2, 5], 160).astype(np.uint8)
    path = make_npz(tmp_path / "gaps.npz", y_train=y, y_test=np.zeros(48, np.uint8))
    with caplog.at_level(logging.WARNING, logger="zerograd_tf"):
        data = datasets.load_image_data(path, val_size=16)
    assert data.num_classes == 6
    assert "2 of those classes have no training example (3, 4)" in caplog.text
    with pytest.raises(datasets.DataError, match="`y_test`.*found label 6"):
        datasets.load_image_data(make_npz(tmp_path / "bad.npz", y_train=y,
                                          y_test=np.full(48, 6, np.uint8)), val_size=16)


def test_inputs_outside_the_unit_range_warn_once_in_fit_and_evaluation():
    inputs = keras.Input((4,))
    model = zg.FGSMModel(inputs, keras.layers.Dense(2)(inputs), epsilon=0.1, seed=0)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.full((8, 4), 200.0, np.float32)
    y = np.zeros(8, int)
    with pytest.warns(UserWarning, match=r"values in \[200, 200\].*divide 0-255 images by 255"):
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.warns(UserWarning, match="NaN"):
        model.fit(np.full((8, 4), np.nan, np.float32), y, epochs=1, verbose=0)
    with pytest.warns(UserWarning, match=r"`data\[0\]` has values in"):
        zg.evaluate_robustness(model, (x, y), 0.1, steps=1, restarts=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x / 255, y, epochs=1, verbose=0)


class Poison(keras.callbacks.Callback):
    """Turns the weights to NaN at the start of epoch `epoch` (1-based)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            self.model.set_weights([np.full_like(w, np.nan) for w in self.model.get_weights()])


@pytest.mark.slow
def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    path = make_npz(tmp_path / "d.npz")
    data = datasets.load_image_data(path, val_size=32)
    config = RunConfig(dataset=path, epochs=3, batch_size=32, val_size=32, val_pgd_steps=0,
                       eval_steps=1, eval_restarts=1, eval_attack="pgd").resolved(data)
    out = tmp_path / "run"
    os.makedirs(out)
    with pytest.raises(train_program.TrainingDiverged,
                       match=r"became nan in epoch 2 \(step 1\).*checkpoint of the last good"):
        training.train(config, data, str(out), str(out / "logs"), verbose=0,
                            extra_callbacks=[Poison(2)])
    assert not (out / "model.keras").exists()
    state = json.loads((out / "checkpoint" / "latest" / "state.json").read_text())
    assert state == {"epoch": 1}
    # The kept checkpoint holds finite weights and resumes.
    model = pipeline.build_model(config, data)
    model.build((None, *data.input_shape))
    epoch = zg.callbacks.EpochCheckpoint(str(out / "checkpoint")).restore(model)
    assert epoch == 1
    assert all(np.isfinite(w).all() for w in model.get_weights())
    report = training.train(config, data, str(out), str(out / "logs"), verbose=0)
    assert (out / "model.keras").exists() and report["num_examples"] == 48


def _help_entries(parser):
    """`(flags, help text)` of every option of a parser, as --help prints them."""
    text = parser.format_help()
    body = text.split("options:", 1)[1]
    entries = []
    for block in body.split("\n  -")[1:]:
        flat = " ".join(("-" + block).split())
        entries.append(flat)
    return entries


def test_every_option_has_help_and_one_real_default():
    parsers = [train_program.build_parser(), eval_program.build_parser(),
               tune_program.build_parser()]
    for parser in parsers:
        for entry in _help_entries(parser):
            flags = entry.split(" ")[0]
            if flags in ("-h,", "-h"):
                continue
            words = [w for w in entry.split(" ") if not w.isupper() and not w.startswith("{")]
            assert len(words) > 2, f"{parser.prog}: {flags} has no help"
            assert entry.count("default") <= 2, entry
            assert "(default: None)" not in entry and "(default: True)" not in entry, entry
            assert not ("(default " in entry and "(default: " in entry), entry


@pytest.mark.slow
def test_a_changed_search_names_the_option(tmp_path, capsys):
    stub = lambda model, x, y: {"clean_accuracy": 0.5, "pgd_accuracy": 0.2}  # noqa: E731
    data = make_npz(tmp_path / "d.npz", n_train=96, n_test=16)
    tiny = dict(epochs=1, val_size=32, val_pgd_steps=2, val_pgd_size=32, batch_size=32,
                verbose=0, directory=str(tmp_path / "s"), project_name="p", evaluate=stub)
    tune_library.search(data, max_trials=1, **tiny)
    with pytest.raises(ValueError, match=r"differs in: config\.batch_size"):
        tune_library.search(data, max_trials=1, **{**tiny, "batch_size": 16})


class StopAfter(keras.callbacks.Callback):
    """Stops training at the end of epoch `epoch` (1-based), as a CO monitor may."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            self.model.stop_training = True


@pytest.mark.slow
def test_a_run_stopped_during_the_epsilon_warmup_saves_the_runs_epsilon(tmp_path, capsys):
    # The warm-up sets the model's epsilon step by step; the saved model (and
    # zerograd-eval's default epsilon) is the run's, as its final evaluation.
    path = make_npz(tmp_path / "d.npz")
    data = datasets.load_image_data(path, val_size=32)
    config = RunConfig(dataset=path, method="fgsm_rs", epsilon=0.1, epochs=3,
                       epsilon_warmup=3.0, batch_size=32, val_size=32, val_pgd_steps=0,
                       eval_steps=1, eval_restarts=1, eval_attack="pgd").resolved(data)
    out = tmp_path / "run"
    os.makedirs(out)
    report = training.train(config, data, str(out), str(out / "logs"), verbose=0,
                            extra_callbacks=[StopAfter(1)])
    assert report["epsilon"] == pytest.approx(0.1)
    saved = keras.models.load_model(str(out / "model.keras"))
    assert saved.epsilon == pytest.approx(0.1)
    assert saved.alpha == pytest.approx(saved.alpha_factor * 0.1)
