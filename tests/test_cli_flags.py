"""Every CLI flag reaches its consumer: parse -> RunConfig (or the program's
options) -> the object that uses the value (table-driven).

A flag added without a row here fails `test_every_flag_has_a_row`."""

import dataclasses

import keras
import numpy as np
import pytest

import zerograd_tf as zg
from conftest import make_npz
from zerograd_tf import datasets
from zerograd_tf.runs import options, pipeline, training, tuning
from zerograd_tf.runs.config import RunConfig
from zerograd_tf.trainers import evaluate as eval_program
from zerograd_tf.trainers import train as train_program
from zerograd_tf.tuning import search as tune_program

# flag -> (arguments, the RunConfig field's value). Non-default values all.
TRAIN_FLAGS = {
    "--dataset": (["--dataset", "x.npz"], "x.npz"),
    "--data-dir": (["--data-dir", "/d"], "/d"),
    "--no-download": (["--no-download"], False),
    "--val-size": (["--val-size", "0.2"], 0.2),
    "--augment": (["--augment"], True),
    "--method": (["--method", "multigrad"], "multigrad"),
    "--epsilon": (["--epsilon", "8/255"], 8 / 255),
    "--alpha": (["--alpha", "1.5"], 1.5),
    "--quantile": (["--quantile", "0.6"], 0.6),
    "--auto-slide": (["--method", "zerograd", "--quantile", "auto", "--auto-slide", "0.2"], 0.2),
    "--zero-iters": (["--method", "zerograd", "--zero-iters", "2"], 2),
    "--samples": (["--samples", "5"], 5),
    "--threshold": (["--threshold", "2"], 2),
    "--pgd-steps": (["--pgd-steps", "3"], 3),
    "--gradalign-lambda": (["--gradalign-lambda", "0.7"], 0.7),
    "--epsilon-warmup": (["--epsilon-warmup", "1.5"], 1.5),
    "--model": (["--model", "conv3"], "conv3"),
    "--width": (["--width", "2"], 2),
    "--depth": (["--depth", "16"], 16),
    "--epochs": (["--epochs", "4"], 4),
    "--batch-size": (["--batch-size", "16"], 16),
    "--optimizer": (["--optimizer", "sgd"], "sgd"),
    "--lr-schedule": (["--lr-schedule", "piecewise"], "piecewise"),
    "--lr-max": (["--lr-max", "0.05"], 0.05),
    "--weight-decay": (["--weight-decay", "0.01"], 0.01),
    "--seed": (["--seed", "7"], 7),
    "--jit": (["--no-jit"], False),
    "--precision": (["--precision", "mixed_bfloat16"], "mixed_bfloat16"),
    "--strategy": (["--strategy", "mirrored"], "mirrored"),
    "--val-pgd-steps": (["--val-pgd-steps", "3"], 3),
    "--val-pgd-size": (["--val-pgd-size", "64"], 64),
    "--val-freq": (["--val-freq", "2"], 2),
    "--eval-steps": (["--eval-steps", "3"], 3),
    "--eval-restarts": (["--eval-restarts", "2"], 2),
    "--eval-alpha": (["--eval-alpha", "0.5"], 0.5),
    "--eval-size": (["--eval-size", "12"], 12),
    "--eval-attack": (["--eval-attack", "pgd,square"], "pgd,square"),
    "--eval-apgd-steps": (["--eval-apgd-steps", "7"], 7),
    "--eval-square-queries": (["--eval-square-queries", "9"], 9),
    "--eval-batch-size": (["--eval-batch-size", "8"], 8),
    "--co-monitor": (["--co-monitor", "warn"], "warn"),
    "--co-frequency": (["--co-frequency", "5"], 5),
    "--co-quantile-step": (["--co-quantile-step", "0.2"], 0.2),
    "--co-size": (["--co-size", "50"], 50),
    "--co-check-size": (["--co-check-size", "20"], 20),
    "--co-pgd-steps": (["--co-pgd-steps", "4"], 4),
    "--diagnostics": (["--diagnostics"], True),
}
PROGRAM_FLAGS = {"--output", "--logdir", "--resume", "--overwrite", "--verbose", "--help"}


def test_every_flag_has_a_row():
    flags = {a.option_strings[0] for a in train_program.build_parser()._actions
             if a.option_strings}
    assert flags - PROGRAM_FLAGS - {"-h"} == set(TRAIN_FLAGS)


@pytest.mark.parametrize("flag", sorted(TRAIN_FLAGS))
def test_train_flag_reaches_the_run_config(flag):
    argv, expected = TRAIN_FLAGS[flag]
    config = options.config_from_args(train_program.build_parser().parse_args(argv))
    field = flag[2:].replace("-", "_") if flag != "--no-download" else "download"
    assert getattr(config, field) == pytest.approx(expected)
    named = {a[2:].replace("-", "_") for a in argv if a.startswith("--")}
    others = {f.name: f.default for f in dataclasses.fields(RunConfig)
              if f.name != field and f.name not in named}
    assert {k: getattr(config, k) for k in others} == others  # and nothing else


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = make_npz(tmp_path_factory.mktemp("flags") / "d.npz", n_train=64, n_test=24)
    return datasets.load_image_data(path, val_size=16)


def _resolved(argv, data):
    args = train_program.build_parser().parse_args(["--model", "conv3", *argv])
    return options.config_from_args(args).resolved(data)


# Method flags -> the model's constructor arguments.
@pytest.mark.parametrize("argv, keyword, expected", [
    (["--quantile", "0.6"], "quantile", 0.6),
    (["--method", "zerograd", "--zero-iters", "2"], "zero_iters", 2),
    (["--alpha", "1.5", "--epsilon", "0.2"], "alpha_factor", 1.5),
    (["--method", "multigrad", "--samples", "5", "--threshold", "4"], "threshold", 4),
    (["--method", "multigrad", "--samples", "5"], "samples", 5),
    (["--method", "pgd", "--pgd-steps", "3"], "steps", 3),
    (["--method", "gradalign", "--gradalign-lambda", "0.7"], "gradalign_lambda", 0.7),
    (["--val-pgd-steps", "3"], "validation_pgd_steps", 3),
    (["--seed", "7"], "seed", 7),
    (["--epsilon", "0.2"], "epsilon", 0.2),
])
def test_method_flags_reach_the_model(data, argv, keyword, expected):
    kwargs = pipeline.method_arguments(_resolved(argv, data))
    assert kwargs[keyword] == pytest.approx(expected)


# Training flags -> the optimizer, its schedule, the model and the batches.
def test_training_flags_reach_the_optimizer_model_and_data(data):
    config = _resolved(["--optimizer", "sgd", "--lr-max", "0.05", "--weight-decay", "0.01",
                        "--lr-schedule", "piecewise", "--epochs", "4", "--batch-size", "16",
                        "--no-jit", "--precision", "mixed_float16"], data)
    model = pipeline.build_model(config, data)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)  # mixed precision
    optimizer = model.optimizer.inner_optimizer
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.weight_decay == pytest.approx(0.01)
    schedule = optimizer._learning_rate
    assert type(schedule).__name__ == "PiecewiseLR"
    assert schedule.lr_max == pytest.approx(0.05) and schedule.total_steps == 4 * pipeline.steps_per_epoch(config, len(data.x_train))
    assert model.jit_compile is False
    assert model.classifier.layers[-2].dtype_policy.name == "mixed_float16"
    x, _ = next(iter(pipeline.train_dataset(config, data)))
    assert x.shape[0] == 16


# Evaluation flags -> evaluate_robustness's arguments.
def test_eval_flags_reach_the_final_evaluation(data, monkeypatch):
    seen = {}

    def fake(model, dataset, epsilon, **kwargs):
        seen.update(kwargs, epsilon=epsilon, examples=sum(len(y) for _, y in dataset))
        return {"clean_accuracy": 1.0, "robust_accuracy": 1.0}

    monkeypatch.setattr(zg, "evaluate_robustness", fake)
    config = _resolved(["--epsilon", "0.2", "--eval-steps", "3", "--eval-restarts", "2",
                        "--eval-alpha", "0.5", "--eval-size", "12", "--eval-attack",
                        "pgd,square", "--eval-apgd-steps", "7", "--eval-square-queries", "9",
                        "--eval-batch-size", "8", "--seed", "3"], data)
    training.final_evaluation(None, config, data, backup_path="progress.json")
    assert seen == {"steps": 3, "restarts": 2, "alpha": pytest.approx(0.1),
                    "attack": ["pgd", "square"], "apgd_steps": 7, "square_queries": 9,
                    "batch_size": 8, "seed": 3, "verbose": 0, "epsilon": 0.2, "examples": 12,
                    "backup_path": "progress.json"}


# zerograd-eval: every flag -> evaluate_robustness's arguments (or the data).
def test_every_eval_flag_reaches_evaluate_robustness(monkeypatch, tmp_path):
    seen = {}

    def fake(model, dataset, epsilon, **kwargs):
        seen.update(kwargs, epsilon=epsilon, examples=sum(len(y) for _, y in dataset),
                    batch=max(len(y) for _, y in dataset))
        return {"clean_accuracy": 1.0, "robust_accuracy": 1.0}

    x = np.zeros((40, 4, 4, 1), np.uint8)
    y = np.zeros(40, np.uint8)
    monkeypatch.setattr(zg, "evaluate_robustness", fake)
    monkeypatch.setattr(eval_program, "load_model", lambda path: object())
    monkeypatch.setattr(eval_program, "load_split", lambda *a: (x, y, "test split"))
    monkeypatch.setattr(eval_program, "check_compatible", lambda *a: None)
    report, json_path = eval_program.evaluate(
        ["m.keras", "--epsilon", "0.2", "--attack", "pgd,apgd-t", "--steps", "3",
         "--restarts", "2", "--apgd-steps", "7", "--apgd-restarts", "2", "--apgd-targets",
         "3", "--square-queries", "9", "--verbose", "0", "--alpha", "0.5", "--batch-size",
         "8", "--limit", "30", "--seed", "4", "--precision", "as_trained", "--json", "-",
         "--backup", str(tmp_path / "progress.json")])
    assert json_path == "-"
    assert seen == {"steps": 3, "restarts": 2, "attack": ["pgd", "apgd-t"], "apgd_steps": 7,
                    "apgd_restarts": 2, "apgd_targets": 3, "square_queries": 9,
                    "batch_size": 8, "seed": 4, "verbose": 0, "alpha": pytest.approx(0.1),
                    "precision": "as_trained", "backup_path": str(tmp_path / "progress.json"),
                    "epsilon": 0.2, "examples": 30, "batch": 8}


# zerograd-tune: every flag -> `tuning.search`'s arguments or its RunConfig.
def test_every_tune_flag_reaches_the_search(monkeypatch, tmp_path):
    seen = {}

    class Stop(Exception):
        pass

    def fake(dataset, **kwargs):
        seen.update(kwargs, dataset=dataset)
        raise Stop

    monkeypatch.setattr(tuning, "search", fake)
    parser = tune_program.build_parser()
    argv = ["--dataset", "x.npz", "--tuner", "hyperband", "--max-trials", "3",
            "--search-method", "search", "--quantile-range", "0.1", "0.5",
            "--alpha-range", "1", "2", "--lr-range", "0.001", "0.01",
            "--directory", str(tmp_path / "d"), "--project-name", "p", "--logdir",
            str(tmp_path / "l"), "--overwrite", "--verbose", "0"]
    for flag, (args, _) in TRAIN_FLAGS.items():
        if flag not in ("--dataset",) and parser._option_string_actions.get(args[0]):
            argv += args
    with pytest.raises(Stop):
        tune_program.main(argv)
    assert (seen["dataset"], seen["tuner"], seen["max_trials"], seen["method"],
            seen["quantile_range"], seen["alpha_range"], seen["lr_range"], seen["project_name"],
            seen["overwrite"], seen["verbose"]) == (
        "x.npz", "hyperband", 3, "search", (0.1, 0.5), (1.0, 2.0), (0.001, 0.01), "p", True, 0)
    given = {a.dest for a in parser._actions} & set(options.config_defaults())
    config = tuning.run_config_of("x.npz", "zerograd", seen["epochs"],
                                  {k: seen[k] for k in given - {"dataset", "epochs"}})
    for flag, (args, expected) in TRAIN_FLAGS.items():
        if parser._option_string_actions.get(args[0]):
            field = flag[2:].replace("-", "_") if flag != "--no-download" else "download"
            assert getattr(config, field) == pytest.approx(expected), flag
    assert config.strategy == "mirrored"  # --strategy is no longer ignored
