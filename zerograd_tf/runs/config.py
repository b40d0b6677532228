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
from typing import Optional, Union

from zerograd_tf.precision import PRECISIONS, resolve_precision
from zerograd_tf._names import (
    ARCHITECTURES, ATTACKS, DEFAULT_DATASET, DEFAULT_QUANTILE, LR_SCHEDULES, STRATEGIES,
    TFDS_DATASETS)
from zerograd_tf.runs import fields
from zerograd_tf.runs.fields import (
    AllOrCount, Choice, Epsilon, Fraction, Integer, Names, Number, NumberOrWord, Shape, Switch,
    Text, UpTo, option)

METHODS = ("zerograd", "multigrad", "fgsm", "fgsm_rs", "n_fgsm", "zerograd_n_fgsm", "pgd",
           "gradalign", "clean")
OPTIMIZERS = ("sgd", "adam")
CO_MONITOR_ACTIONS = ("off", "warn", "stop", "adapt")
# The final evaluation of `zerograd-train` and the default of `zerograd-eval`.
DEFAULT_EVAL_ATTACK = "autoattack"
# ZeroGrad's quantile q when none is given (the programs', the tuner's).
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


# The groups of the fields' flags in `--help`, in order.
DATA, METHOD, MODEL, TRAINING = "data", "method", "model", "training"
EVALUATION = "validation and final evaluation"
MONITOR = "catastrophic-overfitting monitor and diagnostics"
GROUPS = (DATA, METHOD, MODEL, TRAINING, EVALUATION, MONITOR)


@fields.document
@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The settings of one adversarial training run (`zerograd-train`'s options).

    Every field is declared once, with `zerograd_tf.runs.fields.option`:
    its default, its help, and its kind, which validates the field and
    parses its `zerograd-train` flag (`--val-size` is `val_size`); the
    flag's `--help` is the field's help. `None` means "decided from the data"
    (see `resolved`). Construction validates every field; an invalid one
    raises `ConfigError` naming it. The `Args:` section, one entry per
    field, is written from the declarations on import (`help(RunConfig)`
    shows it; the documentation's table of fields is made the same way).

    Raises:
        ConfigError: for an invalid setting.

    Examples:
        >>> config = RunConfig(method="fgsm_rs", epsilon=0.3, epochs=2)
        >>> config.method, config.quantile
        ('fgsm_rs', 0.35)
        >>> try:
        ...     RunConfig(quantile=1.0)
        ... except ConfigError as error:
        ...     print(error)
        `quantile` must be a number in [0, 1) or 'auto', got 1.0
    """

    dataset: str = option(
        DEFAULT_DATASET, DATA, Text(),
        f"'{DEFAULT_DATASET}' (the embedded MNIST subset), a TFDS name "
        f"({', '.join(TFDS_DATASETS)}), or a path to an .npz file with x_train, y_train "
        "[, x_test, y_test]")
    data_dir: Optional[str] = option(None, DATA, Text(optional=True), "TFDS data directory",
                                     "TFDS's, ~/tensorflow_datasets")
    download: bool = option(True, DATA, Switch(), "TFDS may download a missing data set; "
                                                  "--no-download forbids it (offline use)")
    val_size: float = option(
        1000, DATA, Number(0, strict=False, description="a count >= 0, or a fraction in (0, 1)"),
        "examples held out from the training data for validation (a count, or a fraction "
        "if < 1)")
    augment: Optional[bool] = option(None, DATA, Switch(optional=True),
                                     "pad-4 crop + flip augmentation", "on for CIFAR/SVHN")
    method: str = option("zerograd_n_fgsm", METHOD, Choice(METHODS),
                         "the adversarial training method (zerograd_n_fgsm: ZeroGrad's mask on "
                         "N-FGSM's step; why it is the default: docs/study.md)")
    epsilon: Optional[float] = option(
        None, METHOD, Epsilon(optional=True),
        "the radius, a fraction of the pixel range (the flag also takes 8/255, or 8: a value "
        "in (1, 255] is in 0-255 units and divided by 255)",
        "0.1 for grayscale data, 8/255 for colour data")
    alpha: Optional[float] = option(None, METHOD, Number(0, optional=True),
                                    "step size as a multiple of epsilon",
                                    "the method's: 1 for zerograd_n_fgsm, n_fgsm, fgsm and "
                                    "gradalign, 1.25 for fgsm_rs, 2 for zerograd and "
                                    "multigrad, 2.5 / pgd_steps for pgd")
    quantile: Union[float, str] = option(
        DEFAULT_QUANTILE, METHOD, NumberOrWord("auto", UpTo(0, 1),
                                               "a number in [0, 1) or 'auto'"),
        f"ZeroGrad's (and zerograd_n_fgsm's) quantile q; 'auto' (zerograd only) starts at "
        f"{DEFAULT_QUANTILE} and rises when the "
        "held-out checks see catastrophic overfitting (see "
        "zerograd_tf.callbacks.AutoQuantile; needs `val_size` > 0)")
    auto_slide: Optional[float] = option(
        None, METHOD, Fraction(optional=True),
        "with quantile 'auto': act also when the held-out PGD accuracy slides away slowly, "
        "losing this fraction of its best (zerograd_tf.callbacks.AutoQuantile's "
        "slide_drop)", "off")
    zero_iters: int = option(1, METHOD, Integer(1), "ZeroGrad's zeroed sign steps per example")
    samples: int = option(3, METHOD, Integer(1), "MultiGrad's random starts n")
    threshold: Optional[int] = option(None, METHOD, Integer(1, optional=True),
                                      "MultiGrad's agreeing signs th, at most `samples`",
                                      "n, unanimous")
    pgd_steps: int = option(10, METHOD, Integer(1), "steps of PGD training")
    gradalign_lambda: float = option(
        0.2, METHOD, Number(0, strict=False),
        "GradAlign's regulariser weight lambda (0.2 is the reference's at epsilon 8/255; it "
        "uses more at larger radii)")
    epsilon_warmup: Optional[float] = option(
        None, METHOD, Number(0, strict=False, optional=True,
                             description="a number of epochs >= 0"),
        "epochs over which epsilon ramps up linearly from 0",
        "a third of the epochs for `method` pgd, else 0")
    model: Optional[str] = option(None, MODEL, Choice(ARCHITECTURES, optional=True),
                                  "the classifier's architecture",
                                  "small_cnn for 28x28 data, preact_resnet18 otherwise")
    width: Optional[int] = option(None, MODEL, Integer(1, optional=True), "width multiplier",
                                  "10 for wide_resnet, else 1")
    depth: int = option(28, MODEL, Integer(10), "wide_resnet depth, 6n + 4")
    epochs: Optional[int] = option(None, TRAINING, Integer(1, optional=True), "training epochs",
                                   "10 for 28x28 grayscale data, 30 otherwise")
    batch_size: int = option(128, TRAINING, Integer(1),
                             "the global batch size (split across replicas)")
    optimizer: Optional[str] = option(None, TRAINING, Choice(OPTIMIZERS, optional=True),
                                      "sgd (momentum 0.9, as the reference) or adam",
                                      "adam for 28x28 grayscale data, sgd otherwise")
    lr_schedule: str = option("cyclic", TRAINING, Choice(LR_SCHEDULES),
                              "the learning rate's schedule: cyclic (triangular, peak at "
                              "mid-training), piecewise (/10 at 50 % and 75 %) or constant")
    lr_max: Optional[float] = option(None, TRAINING, Number(0, optional=True),
                                     "peak learning rate", "0.2 for sgd, 5e-3 for adam")
    weight_decay: float = option(5e-4, TRAINING, Number(0, strict=False),
                                 "decoupled weight decay (0: none)")
    seed: int = option(0, TRAINING, Integer(0),
                       "seed of the weights, data order, validation split and attacks")
    jit: Optional[bool] = option(None, TRAINING, Switch(optional=True),
                                 "XLA-compile the train step",
                                 "Keras' 'auto', i.e. only with a GPU/TPU")
    precision: str = option(
        "auto", TRAINING, Choice(PRECISIONS),
        "compute precision (a Keras dtype policy): float32; mixed_bfloat16 (CPUs with "
        "bfloat16 units, TPUs); mixed_float16 (GPUs); auto = float32 (bfloat16 missed the "
        "robustness-parity target on MNIST and CIFAR-10: docs/precision.md). Inputs, delta and "
        "evaluation stay float32")
    strategy: str = option(
        "default", TRAINING, Choice(STRATEGIES),
        "tf.distribute strategy: one device (default), all local GPUs (mirrored), several "
        "hosts from TF_CONFIG (multiworker), or a TPU; `batch_size` is the global batch, "
        "split across replicas")
    val_pgd_steps: int = option(10, EVALUATION, Integer(0),
                                "PGD steps of the per-epoch validation attack (0: off)")
    val_pgd_size: int = option(500, EVALUATION, Integer(1), "size of the fixed validation subset")
    val_freq: int = option(1, EVALUATION, Integer(1), "validate every N epochs")
    eval_steps: int = option(50, EVALUATION, Integer(1), "steps of the final PGD")
    eval_restarts: int = option(10, EVALUATION, Integer(1), "restarts of the final PGD")
    eval_alpha: float = option(0.25, EVALUATION, Number(0),
                               "the final PGD's step size as a multiple of epsilon")
    eval_size: Optional[int] = option(
        500, EVALUATION, AllOrCount(),
        "evaluate the first N test examples (all: 0 on the command line, None in Python); "
        "AutoAttack's cost grows with the robust examples")
    eval_attack: str = option(
        DEFAULT_EVAL_ATTACK, EVALUATION, Names(ATTACKS),
        "final attacks, comma-separated, each on the examples still robust after the "
        f"previous ones: {', '.join(ATTACKS)} (autoattack = apgd-ce,apgd-t,square)")
    eval_apgd_steps: int = option(100, EVALUATION, Integer(1),
                                  "iterations of the final APGD attacks")
    eval_square_queries: int = option(5000, EVALUATION, Integer(1),
                                      "queries of the final Square attack")
    eval_batch_size: int = option(DEFAULT_EVAL_BATCH_SIZE, EVALUATION, Integer(1),
                                  "examples per attacked batch of the final evaluation")
    co_monitor: str = option(
        "off", MONITOR, Choice(CO_MONITOR_ACTIONS),
        "detect catastrophic overfitting on held-out examples and warn, stop (restoring the "
        "last healthy weights) or adapt (restore and raise the ZeroGrad quantile)")
    co_frequency: Union[str, int] = option(
        "epoch", MONITOR, NumberOrWord("epoch", Integer(1),
                                       "'epoch' or a number of steps >= 1"),
        "check at each epoch's end ('epoch'), or there and also every N steps")
    co_quantile_step: float = option(0.1, MONITOR, Fraction(),
                                     "the quantile increase of `co_monitor` adapt")
    co_size: int = option(500, MONITOR, Integer(1),
                          "held-out examples of the monitor and diagnostics")
    co_check_size: Optional[int] = option(
        None, MONITOR, Integer(1, optional=True),
        "examples of a routine check (the first of `co_size`; all of them decide when it "
        "signals catastrophic overfitting)", "all `co_size` examples")
    co_pgd_steps: int = option(10, MONITOR, Integer(1), "PGD steps of the monitor's checks")
    diagnostics: bool = option(False, MONITOR, Switch(),
                               "log gradient statistics, gradient alignment and the FGSM-PGD "
                               "gap to TensorBoard each epoch")
    input_shape: Optional[tuple] = option(None, None, Shape(optional=True),
                                          "the data's image shape, filled by `resolved`")
    num_classes: Optional[int] = option(None, None, Integer(1, optional=True),
                                        "the data's classes, filled by `resolved`")

    # ------------------------------------------------------------------
    def __post_init__(self):
        try:
            fields.check(self)
        except fields.Invalid as error:
            raise ConfigError(error.field, str(error)) from None
        if self.quantile == "auto" and self.co_monitor != "off":
            raise ConfigError("co_monitor", "must be 'off' with quantile 'auto', which runs "
                                            f"its own monitor (got {self.co_monitor!r})")
        if self.auto_slide is not None and self.quantile != "auto":
            raise ConfigError("auto_slide", "acts on quantile 'auto' only (got quantile "
                                            f"{self.quantile!r})")
        if self.zero_iters != 1 and self.method != "zerograd":
            raise ConfigError("zero_iters", "acts on method 'zerograd' only (got method "
                                            f"{self.method!r})")
        if self.quantile == "auto" and self.method == "zerograd_n_fgsm":
            raise ConfigError("quantile", "'auto' is ZeroGrad's: it needs method 'zerograd' "
                                          "(the default method is zerograd_n_fgsm, which takes "
                                          "a number in [0, 1))")
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
            precision=resolve_precision(self.precision),
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
        defaults. A file of 0.1.0 gets what it meant (`upgraded`).
        """
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in upgraded(values).items() if k in known}
        if values.get("input_shape") is not None:
            values["input_shape"] = tuple(values["input_shape"])
        return cls(**values)


def upgraded(values):
    """A saved configuration's values in this version's terms.

    0.1.0's `mixed_precision` (a switch for mixed_float16) becomes
    `precision`: `"mixed_float16"` or `"float32"`.

    Args:
        values: a dict as `RunConfig.to_dict` wrote it (any version).

    Returns:
        A new dict.

    Example:

    >>> from zerograd_tf.runs.config import upgraded
    >>> upgraded({"mixed_precision": False, "seed": 1})
    {'seed': 1, 'precision': 'float32'}
    """
    values = dict(values)
    if "mixed_precision" in values:
        switch = values.pop("mixed_precision")
        values.setdefault("precision", "mixed_float16" if switch else "float32")
    return values


def default_epsilon(data):
    """0.1 for grayscale digits/clothes, 8/255 for colour images.

    0.1 rather than MNIST's customary 0.3: on the 8,000 embedded digits,
    single-step training at 0.3 overfits catastrophically within a few
    epochs (docs/study.md measures 0.25: FGSM-RS overfitted in 4 of its 5
    MNIST runs), while 0.1 trains robustly in a minute.
    """
    return 0.1 if data.input_shape[-1] == 1 else 8 / 255


def parse_epsilon(text):
    """An epsilon from text: `8/255`, `8` (meaning 8/255, as the reference) or `0.3`.

    The one rule of the programs and the tuner (`fields.Epsilon`): a value
    in (0, 1] is a fraction of the pixel range [0, 1]; a value in (1, 255]
    is in 0-255 units and is divided by 255. So `1` means the whole range,
    and one grey level is `1/255`.

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
    try:
        return Epsilon().parse(text)
    except fields.Invalid as error:
        raise ConfigError("epsilon", str(error)) from None
