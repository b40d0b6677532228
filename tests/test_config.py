"""`RunConfig`: one typed, validated run configuration for every entry point."""

import dataclasses
import json
import pathlib
import re

import pytest

from conftest import make_npz
from zerograd_tf.runs import fields, options
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
    with pytest.raises(ConfigError, match="needs method 'zerograd' \\(got 'zerograd_n_fgsm'\\)"):
        RunConfig(co_monitor="adapt")                 # the default method is not ZeroGrad
    with pytest.raises(ConfigError, match="`quantile` 'auto' is ZeroGrad's: it needs method"):
        RunConfig(quantile="auto")
    with pytest.raises(ConfigError, match="`depth` of wide_resnet must be 6n \\+ 4"):
        RunConfig(model="wide_resnet", depth=27)
    with pytest.raises(ConfigError, match="`auto_slide` acts on quantile 'auto' only"):
        RunConfig(auto_slide=0.2)
    # ZeroGrad's own hyperparameters are refused, not ignored, with another method (the
    # default is zerograd_n_fgsm since 0.2.0).
    with pytest.raises(ConfigError, match="`zero_iters` acts on method 'zerograd' only "
                                          "\\(got method 'zerograd_n_fgsm'\\)"):
        RunConfig(zero_iters=2)
    assert RunConfig(method="zerograd", zero_iters=2).zero_iters == 2


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
    with pytest.raises(SystemExit) as info:  # argparse's exit, as for every bad flag value
        train_program.main(["--dataset", data, "--weight-decay", "-1",
                            "--output", str(tmp_path / "r")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["zerograd-train: error: --weight-decay must be a number >= 0, got -1.0 "
                   "(see zerograd-train --help)"]
    assert not (tmp_path / "r").exists()


def test_the_programs_take_whole_flag_names_only(capsys):
    # An abbreviation would change meaning when a longer flag is added.
    from zerograd_tf.trainers import evaluate as eval_program
    from zerograd_tf.tuning import search as search_program

    for parser, flag in [(train_program.build_parser(), "--epoch"),
                         (eval_program.build_parser(), "--restart"),
                         (search_program.build_parser(), "--max-trial")]:
        with pytest.raises(SystemExit) as info:
            parser.parse_args([flag, "3"])
        assert info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"unrecognized arguments: {flag}" in err[0], err


# -- one declaration per field: its flag, help, docstring entry and docs row --

FIELDS_BLOCK = re.compile(r"(<!-- fields: RunConfig -->\n)(.*?)(<!-- end fields -->)", re.S)
CONFIG_PAGE = pathlib.Path(__file__).parent.parent / "docs" / "config.md"


def _help_of(parser):
    return {option: action.help for action in parser._actions
            for option in action.option_strings}


def test_every_field_has_a_flag_with_its_help_and_every_flag_a_field():
    parser = train_program.build_parser()
    helps = _help_of(parser)
    dests = {action.dest for action in parser._actions}
    for field in dataclasses.fields(RunConfig):
        if field.name in ("input_shape", "num_classes"):
            assert field.metadata["group"] is None
            continue
        # The flag's help is the field's own text, field names as flags.
        flag = options.flag_of(field.name)
        flag = flag if flag in helps else "--no-" + flag[2:]
        assert helps[flag].startswith(options.cli_text(field.metadata["help"])), flag
        assert field.metadata["help"] in RunConfig.__doc__.replace("\n            ", " ")
        assert field.name in dests
    program_options = {"help", "output", "logdir", "resume", "overwrite", "verbose"}
    assert dests - {f.name for f in dataclasses.fields(RunConfig)} == program_options


def test_the_docstring_says_each_fields_default_and_valid_values():
    doc = " ".join(RunConfig.__doc__.split())
    assert ("epsilon: the radius, a fraction of the pixel range" in doc
            and "a number in (0, 1], or `None`. Defaults to `None`: 0.1 for grayscale data"
            in doc)
    assert "batch_size: the global batch size (split across replicas); an integer >= 1. " \
           "Defaults to `128`." in doc


def test_the_documented_table_of_fields_matches_the_declarations():
    text = CONFIG_PAGE.read_text()
    match = FIELDS_BLOCK.search(text)
    assert match, "docs/config.md lost its <!-- fields: RunConfig --> block"
    assert match.group(2) == fields.table(RunConfig) + "\n", (
        "docs/config.md's table of fields is stale; write fields.table(RunConfig) into it")


@pytest.mark.parametrize("argv, field, problem", [
    (["--batch-size", "0"], "batch_size", "must be an integer >= 1, got 0"),
    (["--weight-decay", "-1"], "weight_decay", "must be a number >= 0, got -1.0"),
    (["--quantile", "1"], "quantile", "must be a number in [0, 1) or 'auto', got 1.0"),
    (["--method", "fgsm3"], "method", "must be one of zerograd"),
    (["--co-frequency", "0"], "co_frequency", "must be 'epoch' or a number of steps >= 1"),
    (["--auto-slide", "1"], "auto_slide", "must be a number in (0, 1), got 1.0"),
])
def test_a_flag_and_its_field_refuse_a_value_with_the_same_words(argv, field, problem, capsys):
    with pytest.raises(SystemExit):
        train_program.build_parser().parse_args(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"zerograd-train: error: {argv[0]} {problem}")
    value = _field(field).metadata["kind"].convert(argv[1])  # the text as a value, unchecked
    with pytest.raises(ConfigError, match=re.escape(problem)):
        RunConfig(**{field: value})


def _field(name):
    return next(f for f in dataclasses.fields(RunConfig) if f.name == name)


def test_the_documented_step_size_defaults_are_each_methods_own():
    """`alpha`'s documented default ("the method's: 1 for ...") names every
    method, each with the step its model takes when `--alpha` is not given."""
    import keras

    from zerograd_tf.runs.config import METHODS
    from zerograd_tf.runs.pipeline import adversarial_model_class, method_arguments

    (field,) = [f for f in dataclasses.fields(RunConfig) if f.name == "alpha"]
    text = field.metadata["default_text"].split("the method's: ")[1]
    documented = {}
    for part in re.split(r", (?=[\d.]+ (?:/ pgd_steps )?for )", text):
        value, names = part.split(" for ")
        factor = (2.5 / RunConfig().pgd_steps if value.endswith("/ pgd_steps")
                  else float(value))
        documented.update({name: factor for name in re.split(r", | and ", names)})
    assert set(documented) == set(METHODS) - {"clean"}
    for method, factor in documented.items():
        inputs = keras.Input((4, 4, 1))
        outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        config = RunConfig(method=method, epsilon=0.1)
        model = adversarial_model_class(method)(inputs, outputs, **method_arguments(config))
        assert model.alpha / model.epsilon == pytest.approx(factor), method
