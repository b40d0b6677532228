"""Command-line options shared by zerograd-train, zerograd-tune and the benchmarks.

`add_*_options` add flags to an `argparse` parser; `resolve_config` turns the
parsed flags and the loaded data into a plain dict of every resolved option
(what `config.json` records), filling data-dependent defaults.
"""

import argparse
import fractions
import os
import re

from zerograd_tf import architectures, datasets, schedules, validation
from zerograd_tf.distribution import STRATEGIES
from zerograd_tf.evaluation import ATTACKS

METHODS = ("zerograd", "multigrad", "fgsm", "fgsm_rs", "n_fgsm", "pgd", "clean")
OPTIMIZERS = ("sgd", "adam")


class UsageError(ValueError):
    """A bad command-line value; reported as one line, exit status 2."""


def parse_epsilon(text):
    """Parses an epsilon: `8/255`, `8` (meaning 8/255, as the reference) or `0.3`.

    Raises:
        UsageError: when it is not a number or fraction in (0, 1] after
            conversion.
    """
    text = str(text).strip()
    try:
        value = float(fractions.Fraction(text)) if re.fullmatch(
            r"[0-9.]+(/[0-9.]+)?", text) else float(text)
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"--epsilon must be a number such as 8/255, 8 or 0.3; got {text!r}.")
    if value > 1:
        value = value / 255.0
    if not 0 < value <= 1:
        raise UsageError(f"--epsilon must be in (0, 1] (or 1-255 meaning /255); got {text!r}.")
    return value


def _positive_float(name):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}")
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {text!r}")
        return value
    return parse


def _int_at_least(name, minimum):
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
    try:
        return validation.check_quantile(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--quantile must be a number in [0, 1), got {text!r}")


def add_data_options(parser):
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset", default=datasets.DEFAULT_DATASET,
        help=f"'{datasets.DEFAULT_DATASET}' (embedded MNIST subset, default), a TFDS name "
             f"({', '.join(datasets.TFDS_DATASETS)}), or a path to an .npz file with "
             "x_train, y_train [, x_test, y_test]")
    group.add_argument("--data-dir", default=None, help="TFDS data directory")
    group.add_argument("--no-download", dest="download", action="store_false",
                       help="never let TFDS download (offline use)")
    group.add_argument("--val-size", type=float, default=1000,
                       help="examples held out from the training data for validation "
                            "(a count, or a fraction if < 1; default 1000)")
    group.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                       help="pad-4 crop + flip augmentation (default: on for CIFAR/SVHN)")


def add_method_options(parser):
    group = parser.add_argument_group("method")
    group.add_argument("--method", choices=METHODS, default="zerograd")
    group.add_argument("--epsilon", type=str, default=None,
                       help="radius: 8/255, 8 (= 8/255) or 0.3 (default: 0.1 for grayscale "
                            "data, 8/255 for colour data)")
    group.add_argument("--alpha", type=_positive_float("--alpha"), default=None,
                       help="step size as a multiple of epsilon (default: the method's, "
                            "e.g. 2 for zerograd, 1.25 for fgsm_rs)")
    group.add_argument("--quantile", type=_quantile, default=0.35, help="ZeroGrad q (0.35)")
    group.add_argument("--zero-iters", type=_int_at_least("--zero-iters", 1), default=1)
    group.add_argument("--samples", type=_int_at_least("--samples", 1), default=3,
                       help="MultiGrad random starts n (3)")
    group.add_argument("--threshold", type=_int_at_least("--threshold", 1), default=None,
                       help="MultiGrad agreeing signs th (default n)")
    group.add_argument("--pgd-steps", type=_int_at_least("--pgd-steps", 1), default=10,
                       help="steps of PGD training (10)")
    group.add_argument("--epsilon-warmup", type=float, default=None,
                       help="epochs over which epsilon ramps up from 0 (default: 0, or "
                            "a third of the epochs for --method pgd)")


def add_model_options(parser):
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=None,
                       help=f"one of {', '.join(architectures.ARCHITECTURES)} (default: "
                            "small_cnn for 28x28 data, preact_resnet18 otherwise)")
    group.add_argument("--width", type=_int_at_least("--width", 1), default=None,
                       help="width multiplier (wide_resnet: widening factor, default 10)")
    group.add_argument("--depth", type=_int_at_least("--depth", 10), default=28,
                       help="wide_resnet depth, 6n + 4 (28)")


def add_training_options(parser):
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=_int_at_least("--epochs", 1), default=None,
                       help="default: 10 for 28x28 data, 30 otherwise")
    group.add_argument("--batch-size", type=_int_at_least("--batch-size", 1), default=128)
    group.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                       help="sgd (momentum 0.9, weight decay 5e-4, as the reference; default "
                            "for colour data) or adam (default for 28x28 data)")
    group.add_argument("--lr-schedule", choices=schedules.LR_SCHEDULES, default="cyclic")
    group.add_argument("--lr-max", type=_positive_float("--lr-max"), default=None,
                       help="peak learning rate (default 0.2 for sgd, 5e-3 for adam)")
    group.add_argument("--weight-decay", type=float, default=5e-4)
    group.add_argument("--seed", type=_int_at_least("--seed", 0), default=0)
    group.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None,
                       help="XLA-compile the train step (default: Keras 'auto', i.e. "
                            "only with a GPU/TPU)")
    group.add_argument("--mixed-precision", action="store_true",
                       help="mixed_float16 compute (GPUs)")
    group.add_argument("--strategy", choices=STRATEGIES, default="default",
                       help="tf.distribute strategy: one device (default), all local GPUs "
                            "(mirrored), several hosts from TF_CONFIG (multiworker), or a TPU; "
                            "--batch-size is the global batch, split across replicas")


def add_validation_options(parser):
    group = parser.add_argument_group("validation and final evaluation")
    group.add_argument("--val-pgd-steps", type=_int_at_least("--val-pgd-steps", 0),
                       default=10, help="PGD steps of the per-epoch validation attack (10; 0 = off)")
    group.add_argument("--val-pgd-size", type=_int_at_least("--val-pgd-size", 1),
                       default=500, help="size of the fixed validation subset (500)")
    group.add_argument("--val-freq", type=_int_at_least("--val-freq", 1), default=1,
                       help="validate every N epochs (1)")
    group.add_argument("--eval-steps", type=_int_at_least("--eval-steps", 1), default=50)
    group.add_argument("--eval-restarts", type=_int_at_least("--eval-restarts", 1), default=10)
    group.add_argument("--eval-alpha", type=_positive_float("--eval-alpha"), default=0.25,
                       help="final PGD step size as a multiple of epsilon (0.25)")
    group.add_argument("--eval-size", type=_int_at_least("--eval-size", 1), default=None,
                       help="evaluate on the first N examples only (default: all)")
    group.add_argument("--eval-attack", type=attack_list("--eval-attack"), default="pgd",
                       help="final attacks, comma-separated, each on the examples still "
                            f"robust after the previous ones: {', '.join(ATTACKS)} "
                            "(autoattack = apgd-ce,apgd-t,square)")
    group.add_argument("--eval-apgd-steps", type=_int_at_least("--eval-apgd-steps", 1),
                       default=100, help="iterations of the final APGD attacks")
    group.add_argument("--eval-square-queries",
                       type=_int_at_least("--eval-square-queries", 1), default=5000,
                       help="queries of the final Square attack")


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
    group.add_argument("--co-monitor", choices=("off", "warn", "stop", "adapt"), default="off",
                       help="detect catastrophic overfitting on a held-out batch and warn, "
                            "stop (restoring the last healthy weights) or adapt (restore and "
                            "raise the ZeroGrad quantile)")
    group.add_argument("--co-frequency", type=_frequency, default="epoch",
                       help="check each 'epoch' or every N steps")
    group.add_argument("--co-quantile-step", type=_positive_float("--co-quantile-step"),
                       default=0.1, help="quantile increase of --co-monitor adapt")
    group.add_argument("--co-size", type=_int_at_least("--co-size", 1), default=500,
                       help="held-out examples of the monitor and diagnostics (500)")
    group.add_argument("--diagnostics", action="store_true",
                       help="log gradient statistics, gradient alignment and the FGSM-PGD gap "
                            "to TensorBoard each epoch")


def default_epsilon(data):
    """0.1 for grayscale digits/clothes, 8/255 for colour images.

    0.1 rather than MNIST's customary 0.3: on the 8,000 embedded digits,
    single-step training at 0.3 overfits catastrophically within a few
    epochs (see the README's CO study), while 0.1 trains robustly in a minute.
    """
    return 0.1 if data.input_shape[-1] == 1 else 8 / 255


def _is_small_gray(data):
    return data.input_shape[-1] == 1 and data.input_shape[0] <= 28


def resolve_config(args, data):
    """Every option resolved to a value, as a JSON-serialisable dict.

    Raises:
        UsageError: for option values that are invalid for this data.
    """
    small = _is_small_gray(data)
    epsilon = parse_epsilon(args.epsilon) if args.epsilon is not None else default_epsilon(data)
    model = args.model or ("small_cnn" if data.input_shape[0] <= 28 else "preact_resnet18")
    if model not in architectures.ARCHITECTURES:
        raise UsageError(
            f"unknown --model {model!r}: use one of {', '.join(architectures.ARCHITECTURES)}.")
    if model == "wide_resnet" and (args.depth - 4) % 6:
        raise UsageError(f"--depth of wide_resnet must be 6n + 4 (16, 22, 28, 34), got {args.depth}.")
    optimizer = args.optimizer or ("adam" if small else "sgd")
    epochs = args.epochs or (10 if small else 30)
    threshold = args.threshold
    if threshold is not None and threshold > args.samples:
        raise UsageError(f"--threshold must be in [1, --samples={args.samples}], got {threshold}.")
    warmup = args.epsilon_warmup
    if warmup is None:
        warmup = epochs / 3 if args.method == "pgd" else 0.0
    if not 0 <= warmup <= epochs:
        raise UsageError(f"--epsilon-warmup must be in [0, --epochs={epochs}], got {warmup}.")
    augment = data.augment if args.augment is None else args.augment
    if getattr(args, "co_monitor", "off") == "adapt" and args.method != "zerograd":
        raise UsageError("--co-monitor adapt raises the ZeroGrad quantile, so it needs "
                         f"--method zerograd (got {args.method}); use warn or stop.")
    return {
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "download": args.download,
        "val_size": args.val_size,
        "augment": bool(augment),
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "method": args.method,
        "epsilon": epsilon,
        "alpha": args.alpha,
        "quantile": args.quantile,
        "zero_iters": args.zero_iters,
        "samples": args.samples,
        "threshold": threshold,
        "pgd_steps": args.pgd_steps,
        "epsilon_warmup": warmup,
        "model": model,
        "width": args.width or (10 if model == "wide_resnet" else 1),
        "depth": args.depth,
        "epochs": epochs,
        "batch_size": args.batch_size,
        "optimizer": optimizer,
        "lr_schedule": args.lr_schedule,
        "lr_max": args.lr_max or (5e-3 if optimizer == "adam" else 0.2),
        "weight_decay": args.weight_decay,
        "seed": args.seed,
        "jit": args.jit,
        "mixed_precision": args.mixed_precision,
        "strategy": getattr(args, "strategy", "default"),
        "val_pgd_steps": args.val_pgd_steps,
        "val_pgd_size": args.val_pgd_size,
        "val_freq": args.val_freq,
        "eval_steps": args.eval_steps,
        "eval_restarts": args.eval_restarts,
        "eval_alpha": args.eval_alpha,
        "eval_size": args.eval_size,
        "eval_attack": args.eval_attack,
        "eval_apgd_steps": args.eval_apgd_steps,
        "eval_square_queries": args.eval_square_queries,
        "co_monitor": getattr(args, "co_monitor", "off"),
        "co_frequency": getattr(args, "co_frequency", "epoch"),
        "co_quantile_step": getattr(args, "co_quantile_step", 0.1),
        "co_size": getattr(args, "co_size", 500),
        "diagnostics": bool(getattr(args, "diagnostics", False)),
    }


def default_output(dataset, method):
    base = os.path.splitext(os.path.basename(dataset.rstrip("/")))[0]
    return os.path.join("runs", f"{re.sub(r'[^A-Za-z0-9_.-]', '_', base)}-{method}")
