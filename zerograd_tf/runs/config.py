"""`RunConfig`: everything that defines a training run, typed and validated.

`zerograd-train` builds one from its command line, the tuner and the
benchmarks build one directly, and `python -c` users do the same:

    from zerograd_tf.runs.config import RunConfig
    config = RunConfig(method="zerograd", epsilon=0.3, quantile=0.7, epochs=5)

A configuration made by hand may leave data-dependent settings at `None`
(epsilon, model, epochs, optimizer, ...); `resolved(data)` fills them from
the data and returns the complete configuration that `config.json` records.
"""

import dataclasses
import fractions
import math
import re
import numbers
from typing import Optional, Union

from zerograd_tf._names import ARCHITECTURES, ATTACKS, LR_SCHEDULES, STRATEGIES

METHODS = ("zerograd", "multigrad", "fgsm", "fgsm_rs", "n_fgsm", "pgd", "gradalign", "clean")
OPTIMIZERS = ("sgd", "adam")
CO_MONITOR_ACTIONS = ("off", "warn", "stop", "adapt")
# The final evaluation of `zerograd-train` and the default of `zerograd-eval`.
DEFAULT_EVAL_ATTACK = "autoattack"
# ZeroGrad's quantile q when none is given (the programs', the tuner's).
DEFAULT_QUANTILE = 0.35
# Examples per attacked batch of the final evaluation and of `zerograd-eval`.
DEFAULT_EVAL_BATCH_SIZE = 256


class ConfigError(ValueError):
    """An invalid setting; `field` names it, `problem` says what is wrong.

    `str(error)` reads "`field` problem"; the programs print the flag
    instead of the field name.
    """

    def __init__(self, field, problem):
        super().__init__(f"`{field}` {problem}")
        self.field = field
        self.problem = problem


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The settings of one adversarial training run (`zerograd-train`'s options).

    Every field has the default of the matching `zerograd-train` flag
    (`--val-size` is `val_size`). `None` means "decided from the data" (see
    `resolved`). Construction validates every field; an invalid one raises
    `ConfigError` naming it.

    Args:
        dataset: `"mnist10k"` (embedded), a TFDS name or an `.npz` path.
            Defaults to `"mnist10k"`.
        data_dir: TFDS data directory. Defaults to `None`.
        download: let TFDS download. Defaults to True.
        val_size: examples held out for validation (a fraction if < 1).
            Defaults to 1000.
        augment: pad-4 crop + flip; `None` means on for CIFAR/SVHN.
        method: one of `METHODS`. Defaults to `"zerograd"`.
        epsilon: radius in (0, 1]; `None` means 0.1 for grayscale data and
            8/255 for colour data.
        alpha: step size as a multiple of epsilon; `None` means the
            method's default.
        quantile: ZeroGrad's q in [0, 1), or `"auto"` (see
            `zerograd_tf.callbacks.AutoQuantile`; needs `val_size` > 0).
            Defaults to 0.35.
        zero_iters: ZeroGrad steps. Defaults to 1.
        samples: MultiGrad's random starts. Defaults to 3.
        threshold: MultiGrad's agreeing signs, in [1, samples]; `None`
            means `samples`.
        pgd_steps: steps of PGD training. Defaults to 10.
        gradalign_lambda: GradAlign's regulariser weight, >= 0. Defaults to
            0.2 (the reference's at epsilon = 8/255; it uses more at larger
            radii).
        epsilon_warmup: epochs of linear epsilon warm-up; `None` means a
            third of the epochs for `"pgd"`, else 0.
        model: an architecture name; `None` means `small_cnn` for 28x28
            data, `preact_resnet18` otherwise.
        width: width multiplier; `None` means 10 for `wide_resnet`, else 1.
        depth: `wide_resnet` depth, 6n + 4. Defaults to 28.
        epochs: `None` means 10 for 28x28 data, 30 otherwise.
        batch_size: the global batch size. Defaults to 128.
        optimizer: `"sgd"` or `"adam"`; `None` means adam for 28x28 data.
        lr_schedule: one of `zerograd_tf.schedules.LR_SCHEDULES`. Defaults to `"cyclic"`.
        lr_max: peak learning rate; `None` means 0.2 (sgd) or 5e-3 (adam).
        weight_decay: >= 0. Defaults to 5e-4.
        seed: >= 0. Defaults to 0.
        jit: XLA; `None` means Keras' `"auto"`.
        mixed_precision: mixed_float16 compute. Defaults to False.
        strategy: one of `zerograd_tf.distribution.STRATEGIES`. Defaults to `"default"`.
        val_pgd_steps: PGD steps of the per-epoch validation (0 = off).
            Defaults to 10.
        val_pgd_size: size of the fixed validation subset. Defaults to 500.
        val_freq: validate every N epochs. Defaults to 1.
        eval_steps: steps of the final PGD. Defaults to 50.
        eval_restarts: restarts of the final PGD. Defaults to 10.
        eval_alpha: the final PGD step as a multiple of epsilon. Defaults
            to 0.25.
        eval_size: evaluate the first N examples only; `None` means all.
            Defaults to 500 (AutoAttack's cost grows with the robust
            examples; 500 keeps the quick start within two minutes on a
            2-core CPU, at a standard error of about 1.2 points).
        eval_attack: final attacks, comma-separated names of
            `zerograd_tf.ATTACKS`. Defaults to `"autoattack"` (APGD-CE,
            APGD-T, Square).
        eval_apgd_steps: iterations of the final APGD. Defaults to 100.
        eval_square_queries: queries of the final Square. Defaults to 5000.
        eval_batch_size: examples per attacked batch of the final
            evaluation. Defaults to 256.
        co_monitor: `"off"`, `"warn"`, `"stop"` or `"adapt"`. Defaults to
            `"off"`.
        co_frequency: `"epoch"` or a number of steps. Defaults to `"epoch"`.
        co_quantile_step: the quantile increase of `"adapt"`. Defaults to 0.1.
        co_size: held-out examples of the monitor. Defaults to 500.
        co_check_size: examples of the monitor's routine checks (the first
            `co_size` decide when they signal CO); `None` means all.
            Defaults to `None`.
        co_pgd_steps: PGD steps of the monitor's checks. Defaults to 10.
        diagnostics: log the CO diagnostics. Defaults to False.
        input_shape: filled by `resolved` from the data.
        num_classes: filled by `resolved` from the data.

    Raises:
        ConfigError: for an invalid setting.

    Examples:
        >>> config = RunConfig(method="fgsm_rs", epsilon=0.3, epochs=2)
        >>> config.method, config.quantile
        ('fgsm_rs', 0.35)
        >>> RunConfig(quantile=1.0)
        Traceback (most recent call last):
        ...
        zerograd_tf.runs.config.ConfigError: `quantile` must be a number in [0, 1) or 'auto', got 1.0
    """

    dataset: str = "mnist10k"
    data_dir: Optional[str] = None
    download: bool = True
    val_size: float = 1000
    augment: Optional[bool] = None
    method: str = "zerograd"
    epsilon: Optional[float] = None
    alpha: Optional[float] = None
    quantile: Union[float, str] = DEFAULT_QUANTILE
    zero_iters: int = 1
    samples: int = 3
    threshold: Optional[int] = None
    pgd_steps: int = 10
    gradalign_lambda: float = 0.2
    epsilon_warmup: Optional[float] = None
    model: Optional[str] = None
    width: Optional[int] = None
    depth: int = 28
    epochs: Optional[int] = None
    batch_size: int = 128
    optimizer: Optional[str] = None
    lr_schedule: str = "cyclic"
    lr_max: Optional[float] = None
    weight_decay: float = 5e-4
    seed: int = 0
    jit: Optional[bool] = None
    mixed_precision: bool = False
    strategy: str = "default"
    val_pgd_steps: int = 10
    val_pgd_size: int = 500
    val_freq: int = 1
    eval_steps: int = 50
    eval_restarts: int = 10
    eval_alpha: float = 0.25
    eval_size: Optional[int] = 500
    eval_attack: str = DEFAULT_EVAL_ATTACK
    eval_apgd_steps: int = 100
    eval_square_queries: int = 5000
    eval_batch_size: int = DEFAULT_EVAL_BATCH_SIZE
    co_monitor: str = "off"
    co_frequency: Union[str, int] = "epoch"
    co_quantile_step: float = 0.1
    co_size: int = 500
    co_check_size: Optional[int] = None
    co_pgd_steps: int = 10
    diagnostics: bool = False
    input_shape: Optional[tuple] = None
    num_classes: Optional[int] = None

    # ------------------------------------------------------------------
    def __post_init__(self):
        self._choice("method", METHODS)
        self._choice("lr_schedule", LR_SCHEDULES)
        self._choice("strategy", STRATEGIES)
        self._choice("co_monitor", CO_MONITOR_ACTIONS)
        self._choice("optimizer", OPTIMIZERS, optional=True)
        self._choice("model", ARCHITECTURES, optional=True)
        for name, minimum in (("zero_iters", 1), ("samples", 1), ("pgd_steps", 1),
                              ("depth", 10), ("batch_size", 1), ("seed", 0),
                              ("val_pgd_steps", 0), ("val_pgd_size", 1), ("val_freq", 1),
                              ("eval_steps", 1), ("eval_restarts", 1),
                              ("eval_apgd_steps", 1), ("eval_square_queries", 1),
                              ("eval_batch_size", 1),
                              ("co_size", 1), ("co_pgd_steps", 1)):
            self._int(name, minimum)
        for name in ("threshold", "width", "epochs", "eval_size", "num_classes",
                     "co_check_size"):
            self._int(name, 1, optional=True)
        for name in ("alpha", "lr_max"):
            self._positive(name, optional=True)
        for name in ("eval_alpha", "co_quantile_step"):
            self._positive(name)
        if self.epsilon is not None and not (_is_number(self.epsilon) and 0 < self.epsilon <= 1):
            raise ConfigError("epsilon", f"must be a number in (0, 1], got {self.epsilon!r}")
        if self.quantile != "auto" and not (_is_number(self.quantile) and 0 <= self.quantile < 1):
            raise ConfigError("quantile",
                              f"must be a number in [0, 1) or 'auto', got {self.quantile!r}")
        if self.quantile == "auto" and self.co_monitor != "off":
            raise ConfigError("co_monitor", "must be 'off' with quantile 'auto', which runs "
                                            f"its own monitor (got {self.co_monitor!r})")
        if not (_is_number(self.val_size) and self.val_size >= 0):
            raise ConfigError("val_size", "must be a count >= 0, or a fraction in (0, 1), "
                                          f"got {self.val_size!r}")
        if not (_is_number(self.gradalign_lambda) and self.gradalign_lambda >= 0):
            raise ConfigError("gradalign_lambda",
                              f"must be a number >= 0, got {self.gradalign_lambda!r}")
        if not (_is_number(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError("weight_decay", f"must be a number >= 0, got {self.weight_decay!r}")
        if self.epsilon_warmup is not None and not (
                _is_number(self.epsilon_warmup) and self.epsilon_warmup >= 0):
            raise ConfigError("epsilon_warmup",
                              f"must be a number of epochs >= 0, got {self.epsilon_warmup!r}")
        if self.threshold is not None and self.threshold > self.samples:
            raise ConfigError("threshold", f"must be in [1, samples={self.samples}], got "
                                           f"{self.threshold}")
        if self.model == "wide_resnet" and (self.depth - 4) % 6:
            raise ConfigError("depth", "of wide_resnet must be 6n + 4 (16, 22, 28, 34), got "
                                       f"{self.depth}")
        if self.co_monitor == "adapt" and self.method != "zerograd":
            raise ConfigError("co_monitor", "'adapt' raises the ZeroGrad quantile, so it "
                                            f"needs method 'zerograd' (got {self.method!r}); "
                                            "use 'warn' or 'stop'")
        frequency = self.co_frequency
        if frequency != "epoch" and not (_is_int(frequency) and frequency >= 1):
            raise ConfigError("co_frequency",
                              f"must be 'epoch' or a number of steps >= 1, got {frequency!r}")
        names = [n for n in str(self.eval_attack).split(",") if n]
        if not names or any(n not in ATTACKS for n in names):
            raise ConfigError("eval_attack", f"must be one or more of {', '.join(ATTACKS)} "
                                             f"(comma-separated), got {self.eval_attack!r}")

    def _choice(self, name, choices, optional=False):
        value = getattr(self, name)
        if (value is None and optional) or value in choices:
            return
        raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")

    def _int(self, name, minimum, optional=False):
        value = getattr(self, name)
        if (value is None and optional) or (_is_int(value) and value >= minimum):
            return
        raise ConfigError(name, f"must be an integer >= {minimum}, got {value!r}")

    def _positive(self, name, optional=False):
        value = getattr(self, name)
        if (value is None and optional) or (_is_number(value) and value > 0):
            return
        raise ConfigError(name, f"must be a number > 0, got {value!r}")

    # ------------------------------------------------------------------
    def replace(self, **changes):
        """A copy with `changes` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def resolved(self, data):
        """The complete configuration for `data` (an `ImageData`).

        Fills every data-dependent default and records the data's
        `input_shape` and `num_classes`.

        Raises:
            ConfigError: for settings that are invalid for this data.
        """
        gray = data.input_shape[-1] == 1
        small = gray and data.input_shape[0] <= 28
        model = self.model or ("small_cnn" if data.input_shape[0] <= 28 else "preact_resnet18")
        optimizer = self.optimizer or ("adam" if small else "sgd")
        epochs = self.epochs or (10 if small else 30)
        warmup = self.epsilon_warmup
        if warmup is None:
            warmup = epochs / 3 if self.method == "pgd" else 0.0
        if warmup > epochs:
            raise ConfigError("epsilon_warmup", f"must be in [0, epochs={epochs}], got {warmup}")
        if self.method == "zerograd" and self.quantile == "auto" and (
                data.x_val is None or len(data.x_val) == 0):
            raise ConfigError("val_size", "must be > 0 with quantile 'auto', which checks "
                                          "held-out examples for catastrophic overfitting")
        return self.replace(
            epsilon=self.epsilon if self.epsilon is not None else default_epsilon(data),
            augment=bool(data.augment if self.augment is None else self.augment),
            input_shape=tuple(data.input_shape), num_classes=data.num_classes,
            epsilon_warmup=float(warmup), model=model, optimizer=optimizer, epochs=epochs,
            width=self.width or (10 if model == "wide_resnet" else 1),
            lr_max=self.lr_max or (5e-3 if optimizer == "adam" else 0.2))

    def to_dict(self):
        """The configuration as JSON-serialisable data (what `config.json` holds)."""
        values = dataclasses.asdict(self)
        if values["input_shape"] is not None:
            values["input_shape"] = list(values["input_shape"])
        return values

    @classmethod
    def from_dict(cls, values):
        """The configuration a `to_dict` (or a saved `config.json`) describes.

        Keys this version does not know are ignored; missing keys take their
        defaults.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in dict(values).items() if k in known}
        if values.get("input_shape") is not None:
            values["input_shape"] = tuple(values["input_shape"])
        return cls(**values)


def default_epsilon(data):
    """0.1 for grayscale digits/clothes, 8/255 for colour images.

    0.1 rather than MNIST's customary 0.3: on the 8,000 embedded digits,
    single-step training at 0.3 overfits catastrophically within a few
    epochs (see the README's CO study), while 0.1 trains robustly in a minute.
    """
    return 0.1 if data.input_shape[-1] == 1 else 8 / 255


def parse_epsilon(text):
    """An epsilon from text: `8/255`, `8` (meaning 8/255, as the reference) or `0.3`.

    The one rule of the programs and the tuner: a value in (0, 1] is a
    fraction of the pixel range [0, 1]; a value in (1, 255] is in 0-255
    units and is divided by 255. So `1` means the whole range, and one grey
    level is `1/255`.

    Args:
        text: the text (or a number).

    Returns:
        The radius, a float in (0, 1].

    Raises:
        ConfigError: naming `epsilon`, when it is not a number or fraction
            in (0, 1] after conversion.

    Examples:
        >>> parse_epsilon("8/255") == 8 / 255, parse_epsilon("8") == 8 / 255
        (True, True)
        >>> parse_epsilon("0.3")
        0.3
    """
    text = str(text).strip()
    try:
        value = float(fractions.Fraction(text)) if re.fullmatch(
            r"[0-9.]+(/[0-9.]+)?", text) else float(text)
    except (ValueError, ZeroDivisionError):
        raise ConfigError("epsilon", f"must be a number such as 8/255, 8 or 0.3; "
                                     f"got {text!r}") from None
    if value > 1:
        value = value / 255.0
    if not 0 < value <= 1:
        raise ConfigError("epsilon", f"must be in (0, 1] (a fraction of the pixel range), or "
                                     f"in (1, 255] (0-255 units, divided by 255); got {text!r}")
    return value
