"""The kinds of `RunConfig`'s fields: one rule for a value and for its flag.

Each field of `zerograd_tf.runs.config.RunConfig` is declared with `option`:
its default, its flag group, its kind and its help text. The kind is the one
rule for the field: `check` validates a value (`RunConfig` construction) and
`parse` reads the text of its command-line flag (`zerograd_tf.runs.options`
builds the parsers from these declarations), so both refuse the same values
with the same message. `document` writes the fields' `Args:` entries of
`RunConfig`'s docstring from the same help texts.

Imports neither TensorFlow nor Keras.
"""

import dataclasses
import fractions
import math
import numbers
import re


class Invalid(ValueError):
    """A value that a kind refuses; its message says why ("must be ..., got ...")."""


def is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


class Kind:
    """A field's type and valid values.

    Args:
        optional: whether `None` ("decided from the data") is valid too.
            Defaults to False.
    """

    metavar = None

    def __init__(self, optional=False):
        self.optional = optional

    def describe(self):
        """The valid values, as "must be ..." ends."""
        raise NotImplementedError

    def accepts(self, value):
        raise NotImplementedError

    def convert(self, text):
        """A value from a flag's text (may raise `ValueError`)."""
        return text

    def check(self, value):
        """`value`, if valid.

        Raises:
            Invalid: naming the valid values and `value`.
        """
        if (value is None and self.optional) or (value is not None and self.accepts(value)):
            return value
        raise Invalid(f"must be {self.describe()}, got {value!r}")

    def parse(self, text):
        """The value of a flag's text, checked as `check` does.

        Raises:
            Invalid: naming the valid values and the text.
        """
        try:
            value = self.convert(text)
        except (ValueError, ArithmeticError):
            raise Invalid(f"must be {self.describe()}, got {text!r}") from None
        return self.check(value)


class Text(Kind):
    """Any text (a data set name, a folder)."""

    def describe(self):
        return "a text"

    def accepts(self, value):
        return isinstance(value, str)


class Switch(Kind):
    """On or off: `True` or `False`."""

    def describe(self):
        return "True or False"

    def accepts(self, value):
        return isinstance(value, bool)


class Shape(Kind):
    """A tuple of integers (an image shape)."""

    def describe(self):
        return "a tuple of integers"

    def accepts(self, value):
        return isinstance(value, tuple) and all(is_int(n) for n in value)


class Integer(Kind):
    """An integer >= `minimum`.

    Examples:
        >>> Integer(1).parse("3")
        3
        >>> Integer(1).parse("0")
        Traceback (most recent call last):
        ...
        zerograd_tf.runs.fields.Invalid: must be an integer >= 1, got 0
    """

    def __init__(self, minimum, optional=False):
        super().__init__(optional)
        self.minimum = minimum

    def describe(self):
        return f"an integer >= {self.minimum}"

    def accepts(self, value):
        return is_int(value) and value >= self.minimum

    def convert(self, text):
        return int(text)


class AllOrCount(Integer):
    """A count >= 1, or `None` for all; the flag says all with 0."""

    def __init__(self):
        super().__init__(1, optional=True)

    def parse(self, text):
        value = Integer(0).parse(text)
        return value or None


class Number(Kind):
    """A finite number above `minimum` (or equal to it, unless `strict`).

    Args:
        minimum: the bound. Defaults to 0.
        strict: whether `minimum` itself is refused. Defaults to True.
        optional: whether `None` is valid. Defaults to False.
        description: the valid values in words. Defaults to `None`: "a
            number > minimum" (or >=).
    """

    def __init__(self, minimum=0, strict=True, optional=False, description=None):
        super().__init__(optional)
        self.minimum, self.strict = minimum, strict
        self.description = description or (
            f"a number {'>' if strict else '>='} {minimum:g}")

    def describe(self):
        return self.description

    def accepts(self, value):
        return is_number(value) and (value > self.minimum if self.strict
                                     else value >= self.minimum)

    def convert(self, text):
        return float(text)


class Choice(Kind):
    """One of the names `choices`."""

    def __init__(self, choices, optional=False):
        super().__init__(optional)
        self.choices = tuple(choices)
        self.metavar = "{" + ",".join(self.choices) + "}"

    def describe(self):
        return f"one of {', '.join(self.choices)}"

    def accepts(self, value):
        return value in self.choices


class Names(Kind):
    """One or more of `choices`, comma-separated (`"pgd,autoattack"`)."""

    def __init__(self, choices):
        super().__init__()
        self.choices = tuple(choices)

    def describe(self):
        return f"one or more of {', '.join(self.choices)} (comma-separated)"

    def accepts(self, value):
        names = str(value).split(",")
        return isinstance(value, str) and all(n in self.choices for n in names)

    def convert(self, text):
        return ",".join(part.strip() for part in str(text).split(",") if part.strip())


class NumberOrWord(Kind):
    """A number of `number`'s kind, or the word `word` (`quantile="auto"`)."""

    def __init__(self, word, number, description):
        super().__init__()
        self.word, self.number, self.description = word, number, description

    def describe(self):
        return self.description

    def accepts(self, value):
        return value == self.word or self.number.accepts(value)

    def convert(self, text):
        return text if text == self.word else self.number.convert(text)


class UpTo(Number):
    """A finite number in [low, high) (`quantile`)."""

    def __init__(self, low, high):
        super().__init__(low, strict=False)
        self.high = high

    def accepts(self, value):
        return super().accepts(value) and value < self.high


class Fraction(Number):
    """A number in (0, 1) (`auto_slide`, `co_quantile_step`).

    Examples:
        >>> Fraction().parse("0.2")
        0.2
    """

    def __init__(self, optional=False):
        super().__init__(0, strict=True, optional=optional, description="a number in (0, 1)")

    def accepts(self, value):
        return super().accepts(value) and value < 1


class Epsilon(Kind):
    """A radius in (0, 1]; its flag also takes 0-255 units and fractions.

    The text rule: a value in (0, 1] is a fraction of the pixel range [0, 1];
    a value in (1, 255] is in 0-255 units and is divided by 255. So `1` means
    the whole range, and one grey level is `1/255`.

    Examples:
        >>> Epsilon().parse("8/255") == Epsilon().parse("8") == 8 / 255
        True
        >>> Epsilon().parse("0.3")
        0.3
    """

    def describe(self):
        return "a number in (0, 1]"

    def accepts(self, value):
        return is_number(value) and 0 < value <= 1

    def parse(self, text):
        text = str(text).strip()
        try:
            value = float(fractions.Fraction(text)) if re.fullmatch(
                r"[0-9.]+(/[0-9.]+)?", text) else float(text)
        except (ValueError, ZeroDivisionError):
            raise Invalid(f"must be a number such as 8/255, 8 or 0.3; got {text!r}") from None
        if value > 1:
            value = value / 255.0
        if not 0 < value <= 1:
            raise Invalid(f"must be in (0, 1] (a fraction of the pixel range), or in (1, 255] "
                          f"(0-255 units, divided by 255); got {text!r}")
        return value


def option(default, group, kind, help, default_text=None):
    """A `RunConfig` field: its default, flag group, kind and help.

    Args:
        default: the field's default (and its flag's).
        group: the title of its flag's group in `--help`, or `None` for a
            field without a flag.
        kind: its `Kind`: the valid values, and how its flag is read.
        help: what it means, in words for both the docstring and `--help`;
            `field` names in backticks become `--flag`s in `--help`.
        default_text: what a `None` default means. Defaults to `None`.

    Returns:
        A `dataclasses.field`.
    """
    return dataclasses.field(default=default, metadata={
        "group": group, "kind": kind, "help": help, "default_text": default_text})


def check(config):
    """Checks every field of `config` by its kind.

    Raises:
        Invalid: with the field's name as `field` attribute.
    """
    for field in dataclasses.fields(config):
        try:
            field.metadata["kind"].check(getattr(config, field.name))
        except Invalid as error:
            error.field = field.name
            raise


def _valid(kind):
    valid = None if isinstance(kind, Text) else kind.describe()  # any text: nothing to say
    if valid and kind.optional:
        valid += ", or `None`"
    return valid


def _default(field):
    meta = field.metadata
    return f"`{field.default!r}`" + (f": {meta['default_text']}" if meta["default_text"] else "")


def entry(field):
    """A field's `Args:` entry of a docstring (without the name)."""
    valid = _valid(field.metadata["kind"])
    return (f"{field.metadata['help']}{'; ' + valid if valid else ''}. "
            f"Defaults to {_default(field)}.")


def document(cls, width=88):
    """Writes an `Args:` section, one entry per field (`entry`), into `cls`'s docstring.

    A class decorator: the section goes before the docstring's `Raises:`.
    """
    import textwrap

    head, tail = cls.__doc__.split("\n    Raises:\n", 1)
    lines = ["    Args:"]
    for field in dataclasses.fields(cls):
        lines += textwrap.wrap(f"{field.name}: {entry(field)}", width, initial_indent=" " * 8,
                               subsequent_indent=" " * 12, break_on_hyphens=False)
    cls.__doc__ = head + "\n" + "\n".join(lines) + "\n\n    Raises:\n" + tail
    return cls


def table(cls):
    """The fields of `cls` as a Markdown table: field, flag, meaning, valid values, default."""
    rows = ["| field | flag | meaning | valid | default |", "| --- | --- | --- | --- | --- |"]
    for field in dataclasses.fields(cls):
        meta = field.metadata
        flag = "–" if meta["group"] is None else "`--" + field.name.replace("_", "-") + "`"
        if isinstance(meta["kind"], Switch) and field.default is not False:
            no_flag = "`--no-" + field.name.replace("_", "-") + "`"
            flag = no_flag if field.default else f"{flag}, {no_flag}"
        cells = [f"`{field.name}`", flag, meta["help"], _valid(meta["kind"]) or "text",
                 _default(field)]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)
