"""Command-line options shared by zerograd-train, zerograd-tune and the benchmarks.

The flags of `zerograd_tf.runs.config.RunConfig`'s fields are generated
from the fields' declarations (`zerograd_tf.runs.fields.option`): a flag's
name, group, default, help and parser all come from its field (`--val-size`
is `val_size`), and its parser applies the same rule as the field's
validation. `config_from_args` turns the parsed flags into a `RunConfig`.
"""

import argparse
import dataclasses
import os
import re

from zerograd_tf.runs import fields
from zerograd_tf.runs.config import GROUPS, ConfigError, RunConfig


def config_defaults():
    """Each `RunConfig` field's default: the default of its flag.

    Examples:
        >>> config_defaults()["quantile"], config_defaults()["batch_size"]
        (0.35, 128)
    """
    return {f.name: f.default for f in dataclasses.fields(RunConfig)}


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
    promise one line on standard error and exit status 2. A message that
    names its flag already ("--seed must be ...") is not prefixed with
    argparse's "argument --seed: ". Flags are taken by their whole names
    only (`--epoch` is not `--epochs`): an abbreviation in a saved command
    would change meaning when a longer flag is added.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        message = re.sub(r"^argument (--[\w-]+)(?:/--[\w-]+)?: (?=\1 )", "", message)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def flag_type(kind, flag):
    """An argparse `type`: `kind.parse`, its error naming `flag`.

    Examples:
        >>> flag_type(fields.Integer(1), "--steps")("0")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: --steps must be an integer >= 1, got 0
    """
    def parse(text):
        try:
            return kind.parse(text)
        except fields.Invalid as error:
            raise argparse.ArgumentTypeError(f"{flag} {error}") from None
    return parse


def positive_float(name):
    """An argparse `type`: a number > 0, errors naming `name`."""
    return flag_type(fields.Number(0), name)


def int_at_least(name, minimum):
    """An argparse `type`: an integer >= `minimum`, errors naming `name`."""
    return flag_type(fields.Integer(minimum), name)


def attack_list(name):
    """An argparse type: comma-separated attack names (`pgd,autoattack`)."""
    return flag_type(_field("eval_attack").metadata["kind"], name)


def _field(name):
    return next(f for f in dataclasses.fields(RunConfig) if f.name == name)


def cli_text(text):
    """A field's help as `--help` prints it: `field` names as flags, no backticks."""
    return with_flags(text).replace("`", "").replace("%", "%%")


def add_field_option(group, name):
    """Adds the flag of the `RunConfig` field `name` to `group` (a parser or group).

    Switches: a field that defaults to True gets `--no-<flag>`, one that
    defaults to `None` gets `--<flag>/--no-<flag>`, one that defaults to
    False gets `--<flag>`.
    """
    field = _field(name)
    meta = field.metadata
    flag = flag_of(name)
    text = cli_text(meta["help"])
    if meta["default_text"]:
        text += f" (default: {cli_text(meta['default_text'])})"
    if isinstance(meta["kind"], fields.Switch):
        if field.default is True:
            group.add_argument("--no-" + flag[2:], dest=name, action="store_false", help=text)
        else:
            group.add_argument(flag, default=field.default, help=text, action=(
                argparse.BooleanOptionalAction if field.default is None else "store_true"))
        return
    group.add_argument(flag, type=flag_type(meta["kind"], flag), default=field.default,
                       metavar=meta["kind"].metavar, help=text)


def add_config_options(parser, title, names=None):
    """Adds a group of `RunConfig` flags to `parser`.

    Args:
        parser: an `argparse.ArgumentParser`.
        title: the group's title; one of `config.GROUPS` adds its fields.
        names: the fields to add instead. Defaults to `None`: those of
            `title`.

    Returns:
        The argument group.
    """
    group = parser.add_argument_group(title)
    if names is None:
        names = [f.name for f in dataclasses.fields(RunConfig) if f.metadata["group"] == title]
    for name in names:
        add_field_option(group, name)
    return group


def config_parser(prog, description=None):
    """A parser of every `RunConfig` flag (`zerograd-train`'s, without output flags).

    Args:
        prog: the program's name, in messages.
        description: the `--help` description. Defaults to `None`.

    Returns:
        An `ArgumentParser`.
    """
    parser = ArgumentParser(prog=prog, description=description)
    for title in GROUPS:
        add_config_options(parser, title)
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
    names = config_defaults()
    return re.sub(r"`(\w+)`", lambda m: flag_of(m.group(1)) if m.group(1) in names
                  else m.group(0), str(message))


def usage_error(error):
    """A `ConfigError` as the one-line message of a program (naming the flag)."""
    return UsageError(f"{flag_of(error.field)} {error.problem}.")


def config_from_args(args):
    """The `RunConfig` of parsed command-line flags (data-dependent fields unset).

    Raises:
        UsageError: for invalid values, naming the flag.
    """
    values = {k: v for k, v in vars(args).items() if k in config_defaults()}
    try:
        return RunConfig(**values)
    except ConfigError as error:
        raise usage_error(error) from None


def explicit_fields(parser, argv):
    """The `RunConfig` fields that `argv` sets explicitly, parsed by `parser`.

    For programs that take `zerograd-train` flags on top of settings of
    their own (the benchmarks): only the flags given override.
    """
    # argparse fills in a default only for an attribute the namespace lacks:
    # a namespace that already holds a marker everywhere shows what was given.
    unset = object()
    namespace = argparse.Namespace(**{dest: unset for dest in vars(parser.parse_args([]))})
    given = {k: v for k, v in vars(parser.parse_args(argv, namespace=namespace)).items()
             if v is not unset}
    return {k: v for k, v in given.items() if k in config_defaults()}


def default_output(dataset, method):
    """The default `--output` of a run: `runs/<dataset>-<method>`."""
    base = os.path.splitext(os.path.basename(dataset.rstrip("/")))[0]
    return os.path.join("runs", f"{re.sub(r'[^A-Za-z0-9_.-]', '_', base)}-{method}")
