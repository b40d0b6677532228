"""`RunConfig`: one typed, validated run configuration for every entry point."""

import dataclasses
import json

import pytest

from conftest import make_npz
from zerograd_tf.runs import options
from zerograd_tf.trainers import train as train_program
from zerograd_tf.runs.config import ConfigError, RunConfig
from zerograd_tf import datasets


@pytest.mark.parametrize("field, value, problem", [
    ("epsilon", 0.0, "must be a number in (0, 1]"),
    ("quantile", 1.0, "must be a number in [0, 1)"),
    ("method", "fgsm2", "must be one of zerograd"),
    ("weight_decay", -1.0, "must be a number >= 0"),
    ("batch_size", 0, "must be an integer >= 1"),
    ("val_size", float("nan"), "must be a count >= 0"),
    ("eval_attack", "pgd,fab", "must be one or more of pgd"),
    ("co_frequency", 0, "must be 'epoch' or a number of steps"),
])
def test_invalid_fields_are_named(field, value, problem):
    with pytest.raises(ConfigError) as info:
        RunConfig(**{field: value})
    assert info.value.field == field
    assert str(info.value).startswith(f"`{field}` {problem}")
    # The programs name the flag instead.
    assert str(options.usage_error(info.value)).startswith(
        f"--{field.replace('_', '-')} {problem}")


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="`threshold` must be in \\[1, samples=3\\]"):
        RunConfig(method="multigrad", threshold=4)
    with pytest.raises(ConfigError, match="`co_monitor` 'adapt' .* needs method 'zerograd'"):
        RunConfig(method="fgsm_rs", co_monitor="adapt")
    with pytest.raises(ConfigError, match="`depth` of wide_resnet must be 6n \\+ 4"):
        RunConfig(model="wide_resnet", depth=27)


def test_resolved_fills_the_data_dependent_defaults(tmp_path):
    gray = datasets.load_image_data(make_npz(tmp_path / "g.npz"), val_size=16)
    colour = datasets.load_image_data(make_npz(tmp_path / "c.npz", shape=(32, 32, 3)),
                                      val_size=16)
    small = RunConfig().resolved(gray)
    assert (small.epsilon, small.model, small.optimizer, small.epochs, small.lr_max) == \
        (0.1, "small_cnn", "adam", 10, 5e-3)
    assert small.input_shape == (12, 12, 1) and small.num_classes == 3
    big = RunConfig(method="pgd").resolved(colour)
    assert (big.model, big.optimizer, big.epochs, big.lr_max) == \
        ("preact_resnet18", "sgd", 30, 0.2)
    assert big.epsilon == pytest.approx(8 / 255) and big.epsilon_warmup == 10
    with pytest.raises(ConfigError, match="`epsilon_warmup` must be in \\[0, epochs=2\\]"):
        RunConfig(epochs=2, epsilon_warmup=3).resolved(gray)


def test_dict_round_trip_and_the_command_line_build_the_same_object(tmp_path):
    data_path = make_npz(tmp_path / "d.npz")
    data = datasets.load_image_data(data_path, val_size=16)
    args = train_program.build_parser().parse_args(
        ["--dataset", data_path, "--epsilon", "8/255", "--method", "multigrad", "--samples",
         "4", "--eval-attack", "pgd,autoattack"])
    from_cli = options.config_from_args(args).resolved(data)
    by_hand = RunConfig(dataset=data_path, epsilon=8 / 255, method="multigrad",
                        samples=4, eval_attack="pgd,autoattack").resolved(data)
    assert from_cli == by_hand
    restored = RunConfig.from_dict(json.loads(json.dumps(from_cli.to_dict())))
    assert restored == from_cli
    assert {f.name for f in dataclasses.fields(RunConfig)} <= set(from_cli.to_dict())
    # Every RunConfig field is a zerograd-train option (and vice versa).
    cli = set(vars(train_program.build_parser().parse_args([])))
    fields = {f.name for f in dataclasses.fields(RunConfig)} - {"input_shape", "num_classes"}
    assert fields <= cli
    assert cli - fields == {"output", "logdir", "resume", "overwrite", "verbose"}


def test_the_command_line_reports_a_bad_value_by_its_flag(tmp_path, capsys):
    data = make_npz(tmp_path / "d.npz")
    assert train_program.main(["--dataset", data, "--weight-decay", "-1",
                               "--output", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["zerograd-train: error: --weight-decay must be a number >= 0, got -1.0."]
    assert not (tmp_path / "r").exists()
