import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from zerograd_tf.trainers import evaluate as eval_program
from zerograd_tf.runs import options
from zerograd_tf.trainers import train as train_program
from zerograd_tf import batching, datasets
from zerograd_tf.evaluation.backup import EvaluationBackup
from conftest import make_npz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


FAST = ["--epochs", "1", "--batch-size", "32", "--val-size", "32", "--val-pgd-steps", "2",
        "--val-pgd-size", "32", "--eval-steps", "2", "--eval-restarts", "1", "--eval-attack", "pgd", "--verbose", "0"]


@pytest.mark.slow
def test_end_to_end_train_then_eval(tmp_path, capsys):
    data = make_npz(tmp_path / "tiny.npz")
    out = tmp_path / "run"
    assert train_program.main(["--dataset", data, "--output", str(out), *FAST]) == 0
    for name in ("model.keras", "history.json", "config.json", "report.json"):
        assert (out / name).exists(), name
    report = json.loads((out / "report.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert report["split"] == "test" and report["num_examples"] == 48
    assert config["method"] == "zerograd_n_fgsm" and config["epsilon"] == pytest.approx(0.1)
    assert config["model"] == "small_cnn" and config["optimizer"] == "adam"
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1]
    assert {"loss", "accuracy", "mean_abs_delta", "zeroed_fraction", "val_accuracy",
            "val_pgd_accuracy", "learning_rate"} <= set(history)
    model = keras.models.load_model(out / "model.keras")
    assert model.epsilon == pytest.approx(0.1) and model.quantile == pytest.approx(0.35)
    assert type(model).__name__ == "ZeroGradNFGSMModel" and model.noise_magnitude == 2.0
    capsys.readouterr()
    json_path = tmp_path / "eval.json"
    code = eval_program.main([str(out / "model.keras"), "--dataset", data, "--attack", "pgd",
                              "--steps", "2", "--restarts", "1", "--json", str(json_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "clean accuracy" in printed and "robust accuracy" in printed
    evaluated = json.loads(json_path.read_text())
    assert evaluated["clean_accuracy"] == pytest.approx(report["clean_accuracy"])
    assert evaluated["epsilon"] == 0.1 and evaluated["alpha"] == 0.025   # not float32 noise
    # A model in its run folder: the data set is the run's own (config.json),
    # not the embedded digits, when --dataset is not given.
    for model in (out, out / "model.keras"):
        assert eval_program.main([str(model), "--attack", "pgd", "--steps", "2",
                                  "--restarts", "1", "--limit", "20", "--json", "-"]) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out)["dataset"] == data
        assert f"--dataset {data} (the run's, from its config.json: its test split)" in captured.err
    # An explicit --dataset wins (the embedded digits do not fit this model).
    assert eval_program.main([str(out), "--dataset", "mnist10k"]) == 2
    assert "images have shape (28, 28, 1)" in capsys.readouterr().err
    # A run on a file without a test split was evaluated on its held-out
    # examples: zerograd-eval takes the same ones, not the whole (training) file.
    train_only = make_npz(tmp_path / "train_only.npz", x_test=None, y_test=None)
    held_out = tmp_path / "held_out"
    assert train_program.main(["--dataset", train_only, "--output", str(held_out), *FAST]) == 0
    trained = json.loads((held_out / "report.json").read_text())
    assert trained["split"] == "validation" and trained["num_examples"] == 32
    capsys.readouterr()
    assert eval_program.main([str(held_out), "--attack", "pgd", "--steps", "2",
                              "--restarts", "1", "--json", "-"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["num_examples"] == 32
    assert evaluated["clean_accuracy"] == pytest.approx(trained["clean_accuracy"])
    assert evaluated["split"] == "validation split (the run's held-out examples)"


@pytest.mark.slow
def test_eval_of_a_run_folder_takes_the_runs_epsilon_and_ignores_an_unused_data_dir(
        tmp_path, capsys):
    data = make_npz(tmp_path / "tiny.npz")
    out = tmp_path / "run"
    assert train_program.main(["--dataset", data, "--output", str(out), *FAST]) == 0
    # A model saved with another epsilon than its run's (one stopped during the
    # epsilon warm-up, saved before 0.2.0 set it back): the run's is the default.
    model = keras.models.load_model(out / "model.keras")
    model.epsilon = 0.04
    model.save(out / "model.keras")
    # A relative --data-dir that is not found from here matters only for TFDS.
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "data_dir": "not_here"}))
    capsys.readouterr()
    assert eval_program.main([str(out), "--attack", "pgd", "--steps", "2", "--restarts", "1",
                              "--limit", "20", "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["epsilon"] == 0.1
    assert ("zerograd-eval: --epsilon 0.1 (the run's, from its config.json; the model holds "
            "0.04)") in captured.err
    # --epsilon still wins.
    assert eval_program.main([str(out), "--epsilon", "0.05", "--attack", "pgd", "--steps", "2",
                              "--restarts", "1", "--limit", "20", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["epsilon"] == 0.05


@pytest.mark.slow
def test_autoattack_from_the_command_line(tmp_path, capsys):
    data = make_npz(tmp_path / "tiny.npz", classes=4)
    out = tmp_path / "run"
    assert train_program.main(["--dataset", data, "--output", str(out), *FAST,
                               "--eval-attack", "pgd,autoattack", "--eval-apgd-steps", "3",
                               "--eval-square-queries", "5"]) == 0
    printed = capsys.readouterr().out
    assert "PGD-2-1 + APGD-CE-3 + APGD-T-3 (3 targets) + Square-5" in printed
    assert "worst case per example" in printed
    report = json.loads((out / "report.json").read_text())
    assert [e["name"] for e in report["attacks"]] == ["pgd", "apgd-ce", "apgd-t", "square"]
    assert report["robust_accuracy"] == report["attacks"][-1]["robust_accuracy"]
    json_path = tmp_path / "eval.json"
    assert eval_program.main([str(out / "model.keras"), "--dataset", data, "--attack",
                              "autoattack", "--apgd-steps", "3", "--square-queries", "5",
                              "--json", str(json_path), "--verbose", "0"]) == 0
    printed = capsys.readouterr().out
    for label in ("after APGD-CE-3", "after APGD-T-3 (3 targets)", "after Square-5",
                  "worst case per example"):
        assert label in printed
    evaluated = json.loads(json_path.read_text())
    assert evaluated["robust_accuracy"] == evaluated["attacks"][-1]["robust_accuracy"]
    assert eval_program.main([str(out / "model.keras"), "--dataset", data, "--attack", "pgd",
                              "--steps", "2", "--restarts", "1", "--epsilon-sweep",
                              "--json", str(json_path),
                              "--verbose", "0"]) == 0
    assert "epsilon sweep" in capsys.readouterr().out
    sweep = json.loads(json_path.read_text())["epsilon_sweep"]
    assert sweep["epsilons"] == pytest.approx([0.05, 0.1, 0.2])
    assert isinstance(sweep["monotone"], bool) and len(sweep["robust_accuracy"]) == 3
    assert evaluated["seconds"] >= sum(e["seconds"] for e in evaluated["attacks"])
    with pytest.raises(SystemExit) as exit_info:
        eval_program.main([str(out / "model.keras"), "--dataset", data, "--attack", "fab"])
    assert exit_info.value.code == 2
    assert "--attack must be one or more of" in capsys.readouterr().err


@pytest.mark.slow
def test_a_finished_run_is_not_retrained_and_outputs_are_protected(tmp_path, capsys):
    data = make_npz(tmp_path / "tiny.npz")
    out = tmp_path / "run"
    args = ["--dataset", data, "--output", str(out), *FAST]
    assert train_program.main(args) == 0
    stamp = (out / "model.keras").stat().st_mtime_ns
    assert train_program.main(args) == 0
    assert "already holds the finished run" in capsys.readouterr().err
    assert (out / "model.keras").stat().st_mtime_ns == stamp
    # Another configuration in the same directory is refused ...
    assert train_program.main([*args, "--quantile", "0.5"]) == 2
    assert "differs in: quantile" in capsys.readouterr().err
    # ... and so is a foreign non-empty directory.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert train_program.main(["--dataset", data, "--output", str(foreign), *FAST]) == 2
    assert "holds no zerograd-train run" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert train_program.main(["--dataset", data, "--output", str(tmp_path / "x"),
                               "--resume", *FAST]) == 2
    assert "no run to resume" in capsys.readouterr().err
    # --overwrite replaces it.
    assert train_program.main([*args, "--quantile", "0.5", "--overwrite"]) == 0
    assert json.loads((out / "config.json").read_text())["quantile"] == 0.5


@pytest.mark.slow
def test_kill_and_resume_is_bit_identical_to_the_uninterrupted_run(tmp_path):
    data = make_npz(tmp_path / "tiny.npz", n_train=1600)
    out = tmp_path / "run"
    options_ = ["--dataset", data, "--epochs", "4", "--batch-size", "16", "--val-size", "32",
                "--val-pgd-steps", "2", "--eval-steps", "2", "--eval-restarts", "1", "--eval-attack", "pgd",
                "--verbose", "0", "--augment", "--seed", "3"]
    args = [sys.executable, "-m", "zerograd_tf.trainers.train", *options_, "--output", str(out)]
    env = {**os.environ, "PYTHONPATH": ROOT}
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    history_path = out / "history.json"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if history_path.exists() and json.loads(history_path.read_text())["epoch"]:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = json.loads(history_path.read_text())["epoch"]
    assert 1 <= len(done) < 4, "the run was not killed mid-way"
    assert not (out / "report.json").exists()
    assert (out / "checkpoint").exists()
    result = subprocess.run([*args, "--resume"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming the run" in result.stderr
    history = json.loads(history_path.read_text())
    assert history["epoch"] == [1, 2, 3, 4]
    assert all(v is not None for v in history["loss"])
    model = keras.models.load_model(out / "model.keras")
    steps_per_epoch = -(-(1600 - 32) // 16)
    assert int(model.optimizer.iterations.numpy()) == 4 * steps_per_epoch
    assert not (out / "checkpoint").exists()  # removed once training finished
    # The same command, never interrupted: the same weights and history, bit for bit.
    whole = tmp_path / "whole"
    assert train_program.main([*options_, "--output", str(whole)]) == 0
    assert json.loads((whole / "history.json").read_text()) == history
    uninterrupted = keras.models.load_model(whole / "model.keras")
    for a, b in zip(model.get_weights(), uninterrupted.get_weights()):
        np.testing.assert_array_equal(a, b)
    reports = [json.loads((d / "report.json").read_text()) for d in (out, whole)]
    for report in reports:
        report.pop("seconds"), [e.pop("seconds") for e in report["attacks"]]
    assert reports[0] == reports[1]


def _event_tags(directory):
    tags = set()
    for root, _, files in os.walk(directory):
        for name in files:
            if "tfevents" in name:
                for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                    for value in event.summary.value:
                        tags.add((os.path.relpath(root, directory), value.tag))
    return tags


@pytest.mark.slow
def test_tensorboard_scalars(tmp_path):
    data = make_npz(tmp_path / "tiny.npz")
    logdir = tmp_path / "tb"
    assert train_program.main(["--dataset", data, "--output", str(tmp_path / "run"),
                               "--logdir", str(logdir), *FAST]) == 0
    tags = _event_tags(logdir)
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_mean_abs_delta",
                "epoch_zeroed_fraction", "epoch_learning_rate"):
        assert ("train", tag) in tags, tag
    assert ("validation", "epoch_accuracy") in tags
    assert ("validation", "epoch_pgd_accuracy") in tags
    assert ("evaluation", "final_robust_evaluation_test") in tags
    assert ("evaluation", "final/robust_accuracy") in tags


@pytest.mark.slow
@pytest.mark.parametrize("method", ["multigrad", "fgsm", "fgsm_rs", "n_fgsm", "pgd", "clean"])
def test_every_method_trains(tmp_path, method):
    data = make_npz(tmp_path / "tiny.npz", n_train=96)
    out = tmp_path / method
    assert train_program.main(["--dataset", data, "--output", str(out), "--method", method,
                               "--pgd-steps", "2", *FAST]) == 0
    assert json.loads((out / "config.json").read_text())["method"] == method


def test_embedded_default_data():
    data = datasets.load_image_data()
    assert data.x_train.shape == (7000, 28, 28, 1) and data.x_val.shape == (1000, 28, 28, 1)
    assert data.x_test.shape == (2000, 28, 28, 1) and data.x_train.dtype == np.uint8
    assert data.num_classes == 10
    assert set(np.unique(data.y_test)) == set(range(10))


def test_tfds_loading_with_mock_data():
    # Imported explicitly: older TFDS releases do not load `tfds.testing` lazily.
    from tensorflow_datasets import testing as tfds_testing

    with tfds_testing.mock_data(num_examples=24):
        data = datasets.load_image_data("cifar10", val_size=4)
    assert data.input_shape == (32, 32, 3) and data.num_classes == 10
    assert len(data.x_train) == 20 and len(data.x_test) == 24 and data.augment


@pytest.mark.slow
def test_errors_are_one_line_messages(tmp_path, capsys):
    def error_of(argv, program=train_program):
        try:
            status = program.main(argv)
        except SystemExit as exit_:  # a flag's value refused while parsing
            status = exit_.code
        assert status == 2
        err = capsys.readouterr().err.strip()
        assert "Traceback" not in err and len(err.splitlines()) == 1, err
        return err

    out = ["--output", str(tmp_path / "o"), *FAST]
    assert "unknown dataset 'imagenet'" in error_of(["--dataset", "imagenet", *out])
    assert "cifar10" in error_of(["--dataset", "imagenet", *out])
    message = error_of(["--dataset", "cifar10", "--no-download", "--data-dir",
                        str(tmp_path / "empty"), *out])
    assert "is not in" in message and "--data-dir" in message and ".npz" in message
    assert "--dataset" in message
    tiny = make_npz(tmp_path / "ok.npz")
    assert "--model must be one of small_cnn" in error_of(["--dataset", tiny, "--model", "vgg", *out])
    assert "--epsilon must be in (0, 1]" in error_of(["--dataset", tiny, "--epsilon", "300", *out])
    assert "no such .npz file" in error_of(["--dataset", str(tmp_path / "missing.npz"), *out])
    keys = make_npz(tmp_path / "keys.npz", x_train=None, y_train=None, x_test=None,
                    y_test=None, images=np.zeros((4, 8, 8, 1), np.uint8))
    assert "needs arrays x_train and y_train" in error_of(["--dataset", keys, *out])
    shape = make_npz(tmp_path / "shape.npz", x_train=np.zeros((160, 12), np.uint8))
    assert "(N, H, W, C)" in error_of(["--dataset", shape, *out])
    dtype = make_npz(tmp_path / "dtype.npz", x_train=np.zeros((160, 12, 12, 1), np.int32))
    assert "uint8 (0-255) or float in [0, 1]" in error_of(["--dataset", dtype, *out])
    scale = make_npz(tmp_path / "scale.npz", x_train=np.full((160, 12, 12, 1), 7.0, np.float32))
    assert "must lie in [0, 1]" in error_of(["--dataset", scale, *out])
    labels = make_npz(tmp_path / "labels.npz", y_train=-np.ones(160, np.int64))
    assert "negative labels" in error_of(["--dataset", labels, *out])

    # zerograd-eval: shapes and label ranges against the model.
    run = tmp_path / "run"
    assert train_program.main(["--dataset", tiny, "--output", str(run), *FAST]) == 0
    model = str(run / "model.keras")
    big = make_npz(tmp_path / "big.npz", shape=(16, 16, 1))
    assert "the model expects (12, 12, 1)" in error_of([model, "--dataset", big],
                                                       eval_program)
    many = make_npz(tmp_path / "many.npz", classes=9)
    assert "labels must be in [0, 2]" in error_of([model, "--dataset", many], eval_program)
    assert "no such model file" in error_of([str(tmp_path / "nope.keras")], eval_program)
    message = error_of([model, "--epsilon", "300"], eval_program)
    assert "--epsilon must be in (0, 1]" in message
    assert message.endswith("got '300' (see zerograd-eval --help)")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "model.keras").write_bytes((run / "model.keras").read_bytes())
    (damaged / "config.json").write_text('{"method": "zerograd"')
    assert "not a readable zerograd-train configuration" in error_of([str(damaged)],
                                                                      eval_program)
    test_only = make_npz(tmp_path / "test_only.npz", x_train=None, y_train=None)
    assert eval_program.main([model, "--dataset", test_only, "--attack", "pgd",
                              "--steps", "1", "--restarts", "1"]) == 0
    assert "test split" in capsys.readouterr().out


def test_the_epsilon_flag_parses_pixels_fractions_and_refuses_the_rest():
    import argparse
    from zerograd_tf.runs import fields

    parse = options.flag_type(fields.Epsilon(), "--epsilon")
    assert parse("8/255") == pytest.approx(8 / 255)
    assert parse("8") == pytest.approx(8 / 255)
    assert parse("0.3") == pytest.approx(0.3)
    assert parse("1") == pytest.approx(1.0)
    for bad in ("0", "-1", "abc", "300", "1/0"):
        with pytest.raises(argparse.ArgumentTypeError, match="^--epsilon "):
            parse(bad)


@pytest.mark.slow
def test_co_monitor_and_diagnostics_flags(tmp_path):
    data = make_npz(tmp_path / "tiny.npz")
    out, logdir = tmp_path / "run", tmp_path / "tb"
    assert train_program.main(["--dataset", data, "--output", str(out), "--logdir",
                               str(logdir), "--method", "zerograd", "--co-monitor", "adapt",
                               "--co-size", "16",
                               "--diagnostics", *FAST]) == 0
    history = json.loads((out / "history.json").read_text())
    assert {"co_monitor/pgd_accuracy", "co_monitor/fgsm_accuracy", "co_monitor/detected",
            "diagnostics/inference_gradient_alignment"} <= set(history)
    assert (out / "co_monitor.json").exists()
    tags = _event_tags(logdir)
    assert ("diagnostics", "gradient/alignment") in tags
    assert ("train", "epoch_co_monitor/pgd_accuracy") in tags


@pytest.mark.slow
def test_quantile_auto_from_the_command_line(tmp_path, capsys):
    data = make_npz(tmp_path / "tiny.npz")
    out = tmp_path / "run"
    assert train_program.main(["--dataset", data, "--output", str(out), "--method", "zerograd",
                               "--quantile", "auto", *FAST]) == 0
    history = json.loads((out / "history.json").read_text())
    assert {"co_monitor/pgd_accuracy", "co_monitor/detected"} <= set(history)
    state = json.loads((out / "auto_quantile.json").read_text())
    assert state["checks"] and state["checks"][0]["size"] == 32  # the validation split
    assert json.loads((out / "config.json").read_text())["quantile"] == "auto"
    model = keras.models.load_model(out / "model.keras")
    assert model.quantile_auto and model.quantile == pytest.approx(0.35)
    capsys.readouterr()
    fast = [f for f in FAST]
    fast[fast.index("--val-size") + 1] = "0"
    assert train_program.main(["--dataset", data, "--output", str(tmp_path / "o"),
                               "--method", "zerograd", "--quantile", "auto", *fast]) == 2
    assert "--val-size must be > 0 with quantile 'auto'" in capsys.readouterr().err
    assert train_program.main(["--dataset", data, "--output", str(tmp_path / "o"),
                               "--method", "zerograd", "--quantile", "auto", "--co-monitor", "warn",
                               *FAST]) == 2
    assert "--co-monitor must be 'off' with quantile 'auto'" in capsys.readouterr().err
    # The default method is not ZeroGrad: 'auto' alone is refused, saying what to add.
    assert train_program.main(["--dataset", data, "--output", str(tmp_path / "o"),
                               "--quantile", "auto", *FAST]) == 2
    assert ("--quantile 'auto' is ZeroGrad's: it needs method 'zerograd' (the default method "
            "is zerograd_n_fgsm") in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_status:
        train_program.main(["--dataset", data, "--quantile", "autp", *FAST])
    assert exit_status.value.code == 2
    assert "--quantile must be a number in [0, 1) or 'auto'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_run_stopped_early_is_finished_not_trained_again(tmp_path):
    data = make_npz(tmp_path / "tiny.npz")
    out = tmp_path / "run"
    args = ["--dataset", data, "--output", str(out), *FAST, "--epochs", "2"]
    assert train_program.main(args) == 0
    # As the CO monitor's "stop" leaves a run: fewer epochs than configured.
    history = json.loads((out / "history.json").read_text())
    (out / "history.json").write_text(json.dumps({k: v[:1] for k, v in history.items()}))
    saved = (out / "model.keras").stat().st_mtime_ns
    os.remove(out / "report.json")
    assert train_program.main(args) == 0
    assert (out / "model.keras").stat().st_mtime_ns == saved
    assert (out / "report.json").exists()


def test_a_stop_recorded_before_the_resumed_epoch_ends_training(tmp_path):
    from zerograd_tf.callbacks import CatastrophicOverfittingMonitor

    state = tmp_path / "co.json"
    state.write_text(json.dumps({"checks": [], "events": [
        {"epoch": 1, "step": 3, "action": "stop", "restored": True}]}))
    monitor = CatastrophicOverfittingMonitor(measure=lambda m: {}, state_path=str(state))
    assert monitor.stopped_before(2) and not monitor.stopped_before(1)
    assert not CatastrophicOverfittingMonitor(measure=lambda m: {}).stopped_before(5)


def test_co_monitor_adapt_needs_zerograd(tmp_path, capsys):
    data = make_npz(tmp_path / "tiny.npz")
    assert train_program.main(["--dataset", data, "--output", str(tmp_path / "o"),
                               "--method", "fgsm_rs", "--co-monitor", "adapt", *FAST]) == 2
    assert "needs method 'zerograd'" in capsys.readouterr().err


@pytest.mark.slow
def test_saved_model_loads_in_a_fresh_process_with_only_the_package(tmp_path):
    data = make_npz(tmp_path / "tiny.npz")
    out = tmp_path / "run"
    assert train_program.main(["--dataset", data, "--output", str(out), *FAST]) == 0
    code = ("import sys, zerograd_tf, keras; m = keras.models.load_model(sys.argv[1]); "
            "print(type(m).__name__, m.optimizer.get_config()['learning_rate']['class_name'])")
    result = subprocess.run([sys.executable, "-c", code, str(out / "model.keras")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["ZeroGradNFGSMModel", "CyclicLR"]


@pytest.mark.slow
def test_lower_precision_trains_and_does_not_leak(tmp_path):
    data = make_npz(tmp_path / "tiny.npz")
    try:
        assert train_program.main(["--dataset", data, "--output", str(tmp_path / "mp"),
                                   "--precision", "mixed_bfloat16", *FAST]) == 0
        # The run set the policy for its model only.
        assert keras.mixed_precision.global_policy().name == "float32"
        model = keras.models.load_model(tmp_path / "mp" / "model.keras")
        assert model.classifier.layers[2].compute_dtype == "bfloat16"
        assert model.classifier.get_layer("logits").compute_dtype == "float32"
        assert json.loads((tmp_path / "mp" / "config.json").read_text())["precision"] == \
            "mixed_bfloat16"
        # zerograd-eval attacks its float32 copy unless asked otherwise.
        for flag, attacked in (("float32", "float32"), ("as_trained", "mixed_bfloat16")):
            path = tmp_path / f"eval_{flag}.json"
            assert eval_program.main([str(tmp_path / "mp" / "model.keras"), "--dataset", data,
                                      "--attack", "pgd", "--steps", "2", "--restarts", "1",
                                      "--precision", flag, "--json", str(path)]) == 0
            assert json.loads(path.read_text())["precision"] == attacked
        assert train_program.main(["--dataset", data, "--output", str(tmp_path / "fp"),
                                   *FAST]) == 0
        assert keras.mixed_precision.global_policy().name == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_augmentation_keeps_shapes_and_range():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    y = np.arange(8)
    batch_x, batch_y = next(iter(batching.make_dataset(x, y, 8, augment=True, seed=0)))
    plain_x, _ = next(iter(batching.make_dataset(x, y, 8)))
    assert batch_x.shape == (8, 16, 16, 3) and batch_x.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(batch_x)) and float(tf.reduce_max(batch_x)) <= 1.0
    assert not np.allclose(batch_x.numpy(), plain_x.numpy())  # crops/flips moved pixels
    np.testing.assert_array_equal(batch_y.numpy(), y)


@pytest.mark.slow
def test_a_finished_run_is_evaluated_again_when_the_evaluation_changes(tmp_path, capsys):
    data = make_npz(tmp_path / "tiny.npz", classes=4)
    out = tmp_path / "run"
    args = ["--dataset", data, "--output", str(out), *FAST]
    assert train_program.main(args) == 0
    stamp = (out / "model.keras").stat().st_mtime_ns
    history = (out / "history.json").read_text()
    assert json.loads((out / "report.json").read_text())["attack"] == "pgd"
    capsys.readouterr()
    assert train_program.main([*args, "--eval-attack", "autoattack", "--eval-apgd-steps", "2",
                               "--eval-square-queries", "3"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["attack"] == "autoattack"
    assert (out / "model.keras").stat().st_mtime_ns == stamp   # not retrained
    assert (out / "history.json").read_text() == history
    assert json.loads((out / "config.json").read_text())["eval_attack"] == "autoattack"


class Killed(Exception):
    """Stands for the process being killed."""


@pytest.mark.slow
def test_a_run_killed_during_its_final_evaluation_continues_it(tmp_path, monkeypatch):
    data = make_npz(tmp_path / "tiny.npz", classes=4)
    evaluation = ["--eval-attack", "pgd,autoattack", "--eval-apgd-steps", "2",
                  "--eval-square-queries", "3"]
    assert train_program.main(["--dataset", data, "--output", str(tmp_path / "whole"), *FAST,
                               *evaluation]) == 0
    whole = json.loads((tmp_path / "whole" / "report.json").read_text())

    out = tmp_path / "run"
    args = ["--dataset", data, "--output", str(out), *FAST, *evaluation]
    save = EvaluationBackup.save
    saves, kills = [], []

    def killed_after_apgd_ce(self, **progress):
        save(self, **progress)
        saves.append((progress["member"], progress["stage"]))
        if progress["member"] == 2 and not kills:  # PGD and APGD-CE finished
            kills.append(progress)
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(EvaluationBackup, "save", killed_after_apgd_ce)
        with pytest.raises(Killed):
            train_program.main(args)
        assert len(list(out.glob("evaluation.*.progress.json"))) == 1
        assert not (out / "report.json").exists()
        saves.clear()
        assert train_program.main(args) == 0
    assert saves[0] == (2, 1)  # it went on with APGD-T
    report = json.loads((out / "report.json").read_text())

    def without_seconds(report):
        return {k: [{**a, "seconds": None} for a in v] if k == "attacks" else v
                for k, v in report.items() if k != "seconds"}

    assert [a["name"] for a in report["attacks"]] == ["pgd", "apgd-ce", "apgd-t", "square"]
    assert without_seconds(report) == without_seconds(whole)
    assert not list(out.glob("evaluation.*.progress.json"))


def test_zerograd_eval_finds_the_run_of_a_model_and_refuses_what_it_cannot_use(tmp_path,
                                                                                monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"")
    assert eval_program.run_of(str(run / "model.keras")) is None        # no config.json
    (run / "config.json").write_text(json.dumps({"name": "bert", "hidden_size": 768}))
    assert eval_program.run_of(str(run)) is None                         # not a run's
    data = make_npz(tmp_path / "tiny.npz")
    (run / "config.json").write_text(json.dumps(
        {"method": "fgsm_rs", "dataset": data, "epsilon": 0.1, "val_size": 40, "seed": 3}))
    config = eval_program.run_of(str(run))
    assert (config.dataset, config.val_size, config.seed) == (data, 40, 3)
    # Paths relative to where zerograd-train ran, not found from here.
    monkeypatch.chdir(tmp_path)
    (run / "config.json").write_text(json.dumps(
        {"method": "fgsm_rs", "dataset": "tiny.npz", "epsilon": 0.1}))
    assert eval_program.run_of(str(run)).dataset == "tiny.npz"           # found from here
    for saved, problem in [({"dataset": "data/tiny.npz"}, "data/tiny.npz is not found"),
                           ({"dataset": "cifar10", "data_dir": "tfds"}, "tfds is not found"),
                           ({"dataset": "cifar10", "data_dir": 5}, "not a readable"),
                           ({"dataset": "cifar10", "epsilon": 7}, "not a readable")]:
        (run / "config.json").write_text(json.dumps(
            {"method": "fgsm_rs", "epsilon": 0.1, **saved}))
        with pytest.raises(options.UsageError, match=problem) as error:
            eval_program.run_of(str(run))
        assert str(error.value).endswith("--dataset.") and "\n" not in str(error.value)
    # The run's --data-dir matters for a TFDS data set only, and a --data-dir
    # given here replaces it.
    (run / "config.json").write_text(json.dumps(
        {"method": "fgsm_rs", "epsilon": 0.1, "dataset": "cifar10", "data_dir": "tfds"}))
    with pytest.raises(options.UsageError, match="pass --data-dir or --dataset"):
        eval_program.run_of(str(run))
    assert eval_program.run_of(str(run), data_dir=str(tmp_path)).dataset == "cifar10"
    for dataset in ("tiny.npz", "mnist10k"):
        (run / "config.json").write_text(json.dumps(
            {"method": "fgsm_rs", "epsilon": 0.1, "dataset": dataset, "data_dir": "tfds"}))
        assert eval_program.run_of(str(run)).dataset == dataset
    (run / "config.json").write_text("{")
    with pytest.raises(options.UsageError, match="not a readable"):
        eval_program.run_of(str(run))


@pytest.mark.slow
def test_zerograd_train_says_what_precision_auto_chose_and_why(tmp_path, capsys, monkeypatch):
    from zerograd_tf import precision

    monkeypatch.setattr(precision, "fastest_precision", lambda cpuinfo=None: "mixed_bfloat16")
    data = make_npz(tmp_path / "tiny.npz")
    assert train_program.main(["--dataset", data, "--output", str(tmp_path / "run"), *FAST,
                               "--verbose", "1"]) == 0
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "precision" in line]
    assert line == f"zerograd-train: precision {precision.auto_note('mixed_bfloat16')}"
    assert "--precision mixed_bfloat16, which this hardware has units for" in line
