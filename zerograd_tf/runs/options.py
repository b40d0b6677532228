"""Command-line options shared by zerograd-train, zerograd-tune and the benchmarks.

`add_*_options` add flags to an `argparse` parser; `config_from_args` turns
the parsed flags into a `zerograd_tf.runs.config.RunConfig`. Flags and
`RunConfig` fields share their names (`--val-size` is `val_size`), and a
flag's default is its field's (`config_defaults`): one source for both.
"""

import argparse
import dataclasses
import os
import re

from zerograd_tf._names import (
    ARCHITECTURES, ATTACKS, DEFAULT_DATASET, LR_SCHEDULES, STRATEGIES, TFDS_DATASETS)
from zerograd_tf.runs import config as config_lib
from zerograd_tf.runs.config import (
    CO_MONITOR_ACTIONS, METHODS, OPTIMIZERS, ConfigError, RunConfig)


def config_defaults():
    """Each `RunConfig` field's default: the default of its flag.

    Examples:
        >>> config_defaults()["quantile"], config_defaults()["batch_size"]
        (0.35, 128)
    """
    return {f.name: f.default for f in dataclasses.fields(RunConfig)}


DEFAULTS = config_defaults()


class UsageError(ValueError):
    """A bad command-line value; reported as one line, exit status 2."""


class HelpFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to an option's help unless the help gives it.

    An option whose default is decided later (`None`) must say so in its own
    help text; a flag's `False` and a suppressed default add nothing.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, argparse.SUPPRESS) or action.nargs == 0
                or not action.option_strings):
            return text
        if isinstance(default, (tuple, list)):
            default = " ".join(map(str, default))
        return f"{text} (default: {default})" if text else f"(default: {default})"


class ArgumentParser(argparse.ArgumentParser):
    """An `argparse` parser whose errors are one line (and a pointer to --help).

    argparse prints the whole usage block before its message; the programs
    promise one line on standard error and exit status 2.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_epsilon(text):
    """`--epsilon`: `config.parse_epsilon`, its error naming the flag.

    Raises:
        UsageError: when it is not a number or fraction in (0, 1] after
            conversion.
    """
    try:
        return config_lib.parse_epsilon(text)
    except ConfigError as error:
        raise usage_error(error) from None


def positive_float(name):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}")
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {text!r}")
        return value
    return parse


def int_at_least(name, minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum}, got {value}")
        return value
    return parse


def attack_list(name):
    """An argparse type: comma-separated attack names (`pgd,autoattack`)."""
    def parse(text):
        names = [part.strip() for part in str(text).split(",") if part.strip()]
        unknown = [n for n in names if n not in ATTACKS]
        if not names or unknown:
            raise argparse.ArgumentTypeError(
                f"{name} must be one or more of {', '.join(ATTACKS)} (comma-separated), "
                f"got {text!r}")
        return ",".join(names)
    return parse


def _quantile(text):
    """`--quantile`: a number in [0, 1), or `"auto"`."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < 1:  # NaN fails too
        raise argparse.ArgumentTypeError(
            f"--quantile must be a number in [0, 1) or 'auto', got {text!r}")
    return value


def add_data_options(parser):
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset", default=DEFAULTS["dataset"],
        help=f"'{DEFAULT_DATASET}' (embedded MNIST subset, default), a TFDS name "
             f"({', '.join(TFDS_DATASETS)}), or a path to an .npz file with "
             "x_train, y_train [, x_test, y_test]")
    group.add_argument("--data-dir", default=DEFAULTS["data_dir"],
                       help="TFDS data directory (default: TFDS's, ~/tensorflow_datasets)")
    group.add_argument("--no-download", dest="download", action="store_false",
                       help="never let TFDS download (offline use; default: TFDS may "
                            "download a missing data set)")
    group.add_argument("--val-size", type=float, default=DEFAULTS["val_size"],
                       help="examples held out from the training data for validation "
                            "(a count, or a fraction if < 1)")
    group.add_argument("--augment", action=argparse.BooleanOptionalAction, default=DEFAULTS["augment"],
                       help="pad-4 crop + flip augmentation (default: on for CIFAR/SVHN)")


def add_method_options(parser):
    group = parser.add_argument_group("method")
    group.add_argument("--method", choices=METHODS, default=DEFAULTS["method"],
                       help="the adversarial training method")
    group.add_argument("--epsilon", type=str, default=DEFAULTS["epsilon"],
                       help="radius: 8/255 or 0.3 (a fraction of the pixel range), or 8 "
                            "(a value in (1, 255] is in 0-255 units: 8/255) (default: 0.1 "
                            "for grayscale data, 8/255 for colour data)")
    group.add_argument("--alpha", type=positive_float("--alpha"), default=DEFAULTS["alpha"],
                       help="step size as a multiple of epsilon (default: the method's, "
                            "e.g. 2 for zerograd, 1.25 for fgsm_rs)")
    group.add_argument("--quantile", type=_quantile, default=DEFAULTS["quantile"],
                       help=f"ZeroGrad quantile q, in [0, 1), or 'auto' (starts at {DEFAULTS['quantile']} and "
                            "rises when the held-out checks see catastrophic overfitting; "
                            "needs --val-size > 0)")
    group.add_argument("--zero-iters", type=int_at_least("--zero-iters", 1), default=DEFAULTS["zero_iters"],
                       help="ZeroGrad's zeroed sign steps per example")
    group.add_argument("--samples", type=int_at_least("--samples", 1), default=DEFAULTS["samples"],
                       help="MultiGrad random starts n")
    group.add_argument("--threshold", type=int_at_least("--threshold", 1), default=DEFAULTS["threshold"],
                       help="MultiGrad agreeing signs th (default: n, unanimous)")
    group.add_argument("--pgd-steps", type=int_at_least("--pgd-steps", 1), default=DEFAULTS["pgd_steps"],
                       help="steps of PGD training")
    group.add_argument("--gradalign-lambda", type=float, default=DEFAULTS["gradalign_lambda"],
                       help="GradAlign's regulariser weight lambda >= 0 (the reference's "
                            "value at epsilon 8/255; it uses more at larger epsilon)")
    group.add_argument("--epsilon-warmup", type=float, default=DEFAULTS["epsilon_warmup"],
                       help="epochs over which epsilon ramps up from 0 (default: 0, or "
                            "a third of the epochs for --method pgd)")


def add_model_options(parser):
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULTS["model"],
                       help=f"one of {', '.join(ARCHITECTURES)} (default: "
                            "small_cnn for 28x28 data, preact_resnet18 otherwise)")
    group.add_argument("--width", type=int_at_least("--width", 1), default=DEFAULTS["width"],
                       help="width multiplier (wide_resnet: widening factor, default 10)")
    group.add_argument("--depth", type=int_at_least("--depth", 10), default=DEFAULTS["depth"],
                       help="wide_resnet depth, 6n + 4")


def add_training_options(parser):
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int_at_least("--epochs", 1), default=DEFAULTS["epochs"],
                       help="training epochs (default: 10 for 28x28 data, 30 otherwise)")
    group.add_argument("--batch-size", type=int_at_least("--batch-size", 1), default=DEFAULTS["batch_size"],
                       help="global batch size (split across replicas)")
    group.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULTS["optimizer"],
                       help="sgd (momentum 0.9, weight decay 5e-4, as the reference; default "
                            "for colour data) or adam (default for 28x28 data)")
    group.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=DEFAULTS["lr_schedule"],
                       help="cyclic (triangular, peak at mid-training), piecewise (/10 at 50%% "
                            "and 75%%) or constant")
    group.add_argument("--lr-max", type=positive_float("--lr-max"), default=DEFAULTS["lr_max"],
                       help="peak learning rate (default: 0.2 for sgd, 5e-3 for adam)")
    group.add_argument("--weight-decay", type=float, default=DEFAULTS["weight_decay"],
                       help="decoupled weight decay, >= 0 (0 = none)")
    group.add_argument("--seed", type=int_at_least("--seed", 0), default=DEFAULTS["seed"],
                       help="seed of the weights, data order, validation split and attacks")
    group.add_argument("--jit", action=argparse.BooleanOptionalAction, default=DEFAULTS["jit"],
                       help="XLA-compile the train step (default: Keras 'auto', i.e. "
                            "only with a GPU/TPU)")
    group.add_argument("--mixed-precision", action="store_true",
                       help="mixed_float16 compute (GPUs)")
    group.add_argument("--strategy", choices=STRATEGIES, default=DEFAULTS["strategy"],
                       help="tf.distribute strategy: one device (default), all local GPUs "
                            "(mirrored), several hosts from TF_CONFIG (multiworker), or a TPU; "
                            "--batch-size is the global batch, split across replicas")


def add_validation_options(parser):
    group = parser.add_argument_group("validation and final evaluation")
    group.add_argument("--val-pgd-steps", type=int_at_least("--val-pgd-steps", 0),
                       default=DEFAULTS["val_pgd_steps"], help="PGD steps of the per-epoch validation attack (0 = off)")
    group.add_argument("--val-pgd-size", type=int_at_least("--val-pgd-size", 1),
                       default=DEFAULTS["val_pgd_size"], help="size of the fixed validation subset")
    group.add_argument("--val-freq", type=int_at_least("--val-freq", 1), default=DEFAULTS["val_freq"],
                       help="validate every N epochs")
    group.add_argument("--eval-steps", type=int_at_least("--eval-steps", 1), default=DEFAULTS["eval_steps"],
                       help="steps of the final PGD")
    group.add_argument("--eval-restarts", type=int_at_least("--eval-restarts", 1), default=DEFAULTS["eval_restarts"],
                       help="restarts of the final PGD")
    group.add_argument("--eval-alpha", type=positive_float("--eval-alpha"), default=DEFAULTS["eval_alpha"],
                       help="final PGD step size as a multiple of epsilon")
    group.add_argument("--eval-size", type=_eval_size, default=DEFAULTS["eval_size"],
                       help="evaluate the first N test examples (0 = all)")
    group.add_argument("--eval-attack", type=attack_list("--eval-attack"),
                       default=DEFAULTS["eval_attack"],
                       help="final attacks, comma-separated, each on the examples still "
                            f"robust after the previous ones: {', '.join(ATTACKS)} "
                            "(autoattack = apgd-ce,apgd-t,square)")
    group.add_argument("--eval-apgd-steps", type=int_at_least("--eval-apgd-steps", 1),
                       default=DEFAULTS["eval_apgd_steps"], help="iterations of the final APGD attacks")
    group.add_argument("--eval-square-queries",
                       type=int_at_least("--eval-square-queries", 1),
                       default=DEFAULTS["eval_square_queries"],
                       help="queries of the final Square attack")
    group.add_argument("--eval-batch-size", type=int_at_least("--eval-batch-size", 1),
                       default=DEFAULTS["eval_batch_size"],
                       help="examples per attacked batch of the final evaluation")


def _eval_size(text):
    """`--eval-size`: a count >= 1, or 0 for all the examples (None)."""
    value = int_at_least("--eval-size", 0)(text)
    return value or None


def _frequency(text):
    if text == "epoch":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"--co-frequency must be 'epoch' or a number of steps >= 1, got {text!r}")
    return value


def add_monitor_options(parser):
    group = parser.add_argument_group("catastrophic-overfitting monitor and diagnostics")
    group.add_argument("--co-monitor", choices=CO_MONITOR_ACTIONS, default=DEFAULTS["co_monitor"],
                       help="detect catastrophic overfitting on a held-out batch and warn, "
                            "stop (restoring the last healthy weights) or adapt (restore and "
                            "raise the ZeroGrad quantile)")
    group.add_argument("--co-frequency", type=_frequency, default=DEFAULTS["co_frequency"],
                       help="check each 'epoch' or every N steps")
    group.add_argument("--co-quantile-step", type=positive_float("--co-quantile-step"),
                       default=DEFAULTS["co_quantile_step"], help="quantile increase of --co-monitor adapt")
    group.add_argument("--co-size", type=int_at_least("--co-size", 1), default=DEFAULTS["co_size"],
                       help="held-out examples of the monitor and diagnostics")
    group.add_argument("--co-check-size", type=int_at_least("--co-check-size", 1), default=DEFAULTS["co_check_size"],
                       help="examples of a routine check (the first of --co-size; all of them "
                            "decide when it signals CO); default: all --co-size examples")
    group.add_argument("--co-pgd-steps", type=int_at_least("--co-pgd-steps", 1), default=DEFAULTS["co_pgd_steps"],
                       help="PGD steps of the monitor's checks")
    group.add_argument("--diagnostics", action="store_true",
                       help="log gradient statistics, gradient alignment and the FGSM-PGD gap "
                            "to TensorBoard each epoch")


def config_parser(prog, description=None):
    """A parser of every `RunConfig` flag (`zerograd-train`'s, without output flags).

    Args:
        prog: the program's name, in messages.
        description: the `--help` description. Defaults to `None`.

    Returns:
        An `ArgumentParser`.
    """
    parser = ArgumentParser(prog=prog, description=description)
    add_data_options(parser)
    add_method_options(parser)
    add_model_options(parser)
    add_training_options(parser)
    add_validation_options(parser)
    add_monitor_options(parser)
    return parser


def flag_of(field):
    """The command-line flag of a `RunConfig` field (`val_size` -> `--val-size`)."""
    return "--" + field.replace("_", "-")


def with_flags(message):
    """A library message for a program's user: `field` names become --flags.

    Examples:
        >>> with_flags("`val_size` must leave training data; `y_test` is wrong")
        '--val-size must leave training data; `y_test` is wrong'
    """
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    return re.sub(r"`(\w+)`", lambda m: flag_of(m.group(1)) if m.group(1) in fields
                  else m.group(0), str(message))


def usage_error(error):
    """A `ConfigError` as the one-line message of a program (naming the flag)."""
    return UsageError(f"{flag_of(error.field)} {error.problem}.")


def config_from_args(args):
    """The `RunConfig` of parsed command-line flags (data-dependent fields unset).

    Raises:
        UsageError: for invalid values, naming the flag.
    """
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    if values.get("epsilon") is not None:
        values["epsilon"] = parse_epsilon(values["epsilon"])
    try:
        return RunConfig(**values)
    except ConfigError as error:
        raise usage_error(error) from None


def explicit_fields(parser, argv):
    """The `RunConfig` fields that `argv` sets explicitly, parsed by `parser`.

    For programs that take `zerograd-train` flags on top of settings of
    their own (the benchmarks): only the flags given override.

    Raises:
        UsageError: for an invalid epsilon.
    """
    # argparse fills in a default only for an attribute the namespace lacks:
    # a namespace that already holds a marker everywhere shows what was given.
    unset = object()
    namespace = argparse.Namespace(**{dest: unset for dest in vars(parser.parse_args([]))})
    given = {k: v for k, v in vars(parser.parse_args(argv, namespace=namespace)).items()
             if v is not unset}
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    values = {k: v for k, v in given.items() if k in fields}
    if values.get("epsilon") is not None:
        values["epsilon"] = parse_epsilon(values["epsilon"])
    return values


def default_output(dataset, method):
    base = os.path.splitext(os.path.basename(dataset.rstrip("/")))[0]
    return os.path.join("runs", f"{re.sub(r'[^A-Za-z0-9_.-]', '_', base)}-{method}")
