"""zerograd-eval: clean and robust accuracy (AutoAttack by default) of a saved model.

    zerograd-eval runs/mnist10k-zerograd_n_fgsm/model.keras --dataset mnist10k
    zerograd-eval model.keras --dataset cifar10 --epsilon 8/255 --attack pgd --steps 50 \
        --restarts 10
    zerograd-eval model.keras --json - > report.json      # the JSON report alone on stdout

Evaluates the test split of a data set, or the whole file for an .npz that
holds only x_test/y_test (or only x_train/y_train). By default, a model in
a zerograd-train run folder is evaluated on the examples the run's final
evaluation drew from (its config.json: the test split, or the run's
held-out examples), any other on the embedded MNIST digits. The report
goes to standard output, progress to standard error.
"""

# TensorFlow, Keras and the library: imported after parsing (`evaluate`),
# where used, so that --help and option errors answer without them.
import contextlib
import json
import os
import sys
import zipfile

from zerograd_tf import _programs, io_utils
from zerograd_tf._names import ATTACKS, DEFAULT_DATASET, EVAL_PRECISIONS, DataError
from zerograd_tf.runs import fields, options, run_dir
from zerograd_tf.runs.config import DEFAULT_EVAL_ATTACK, DEFAULT_EVAL_BATCH_SIZE

PROG = "zerograd-eval"


def build_parser():
    parser = options.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a saved .keras model, or a zerograd-train run folder "
                                      "(its model.keras)")
    parser.add_argument("--dataset", default=None,
                        help="embedded 'mnist10k', a TFDS name, or an .npz path (default: "
                             "the run's, for a model in a zerograd-train run folder; "
                             f"else {DEFAULT_DATASET})")
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data directory (default: the run's, when --dataset is "
                             "not given either and the model is in a zerograd-train run "
                             "folder; else TFDS's, ~/tensorflow_datasets)")
    parser.add_argument("--no-download", dest="download", action="store_false",
                        help="never let TFDS download (offline use; default: TFDS may "
                             "download a missing data set)")
    parser.add_argument("--epsilon", type=options.flag_type(fields.Epsilon(), "--epsilon"),
                        default=None,
                        help="radius, as zerograd-train --epsilon: 8/255, 0.3, or 8 "
                             "(0-255 units) (default: the run's for a model in a "
                             "zerograd-train run folder, else the model's own)")
    parser.add_argument("--attack", type=options.attack_list("--attack"),
                        default=DEFAULT_EVAL_ATTACK,
                        help="attacks, comma-separated, each on the examples still robust "
                             f"after the previous ones: {', '.join(ATTACKS)} "
                             "(autoattack = apgd-ce,apgd-t,square)")
    parser.add_argument("--steps", type=options.int_at_least("--steps", 1), default=50,
                        help="PGD steps")
    parser.add_argument("--restarts", type=options.int_at_least("--restarts", 1), default=10,
                        help="PGD restarts")
    parser.add_argument("--apgd-steps", type=options.int_at_least("--apgd-steps", 1),
                        default=100, help="APGD iterations")
    parser.add_argument("--apgd-restarts", type=options.int_at_least("--apgd-restarts", 1),
                        default=1, help="APGD restarts (APGD-T: per target class)")
    parser.add_argument("--apgd-targets", type=options.int_at_least("--apgd-targets", 1),
                        default=9, help="APGD-T target classes")
    parser.add_argument("--square-queries",
                        type=options.int_at_least("--square-queries", 1), default=5000,
                        help="Square attack queries")
    parser.add_argument("--epsilon-sweep", action="store_true",
                        help="also evaluate at epsilon/2 and 2*epsilon (at most 1) and flag "
                             "robust accuracy that rises with epsilon (gradient masking)")
    parser.add_argument("--verbose", type=int, choices=(0, 1), default=1,
                        help="1 shows a progress bar per attack")
    parser.add_argument("--alpha", type=options.positive_float("--alpha"), default=0.25,
                        help="step size as a multiple of epsilon (0.25, i.e. 2/255 at 8/255)")
    parser.add_argument("--batch-size", type=options.int_at_least("--batch-size", 1),
                        default=DEFAULT_EVAL_BATCH_SIZE, help="examples per attacked batch")
    parser.add_argument("--limit", type=options.int_at_least("--limit", 1), default=None,
                        help="evaluate the first N examples only (default: all; AutoAttack on "
                             "a whole test split takes hours on a CPU, zerograd-train's final "
                             "evaluation uses 500)")
    parser.add_argument("--seed", type=options.int_at_least("--seed", 0), default=0,
                        help="seed of the attacks' random starts")
    parser.add_argument("--precision", choices=EVAL_PRECISIONS, default="float32",
                        help="float32 (default) attacks a float32 copy of a model trained in "
                             "mixed precision, with the same weights (the honest number: "
                             "docs/precision.md); as_trained attacks the model as it computes")
    parser.add_argument("--backup", default=None,
                        help="a JSON file in which the evaluation at --epsilon saves its "
                             "progress after every attack stage; the same command run again "
                             "after a kill continues from it (removed at the end; default: "
                             "none)")
    parser.add_argument("--json", default=None,
                        help="also write the report to this file; '-' prints only the JSON "
                             "report on standard output, the table on standard error "
                             "(default: print the table and the JSON)")
    return parser


def run_split(run, data_dir=None, download=True):
    """`(x, y, description)` a run's final evaluation used: the test split,
    or the held-out examples of a data set without one (loaded and split as
    zerograd-train loads them)."""
    from zerograd_tf.runs import pipeline

    data = pipeline.load_data(run.replace(
        download=download, data_dir=run.data_dir if data_dir is None else data_dir))
    x, y, split = data.evaluation_split()
    return x, y, ("test split" if split == "test"
                  else "validation split (the run's held-out examples)")


def load_split(dataset, data_dir=None, download=True):
    """`(x, y, description)` of the split to evaluate."""
    from zerograd_tf import datasets, tfds_data

    if datasets.names_a_file(dataset) or dataset == datasets.DEFAULT_DATASET:
        path = datasets.embedded_path() if dataset == datasets.DEFAULT_DATASET else dataset
        x_train, y_train, x_test, y_test = datasets.load_npz(path, require_train=False)
        if x_test is not None:
            return x_test, y_test, "test split"
        return x_train, y_train, "whole file (it has no test split)"
    if dataset not in datasets.TFDS_DATASETS:
        raise DataError(
            f"unknown dataset {dataset!r}: use {datasets.DEFAULT_DATASET!r}, one of "
            f"{', '.join(datasets.TFDS_DATASETS)}, or an .npz path.")
    _, _, x_test, y_test, _ = tfds_data.load_tfds(dataset, data_dir, download)
    return x_test, y_test, "test split"


def run_of(model_path, data_dir=None):
    """The `RunConfig` of the zerograd-train run whose folder holds the model.

    Args:
        model_path: a run folder, or a model file in one.
        data_dir: the `--data-dir` given here, which replaces the run's.
            Defaults to None (the run's, checked only for a TFDS data set).

    Returns:
        The run's `RunConfig` (from its `config.json`), or None when no
        `config.json` lies beside the model or it is not a zerograd-train
        configuration (it names no method, data set and epsilon).

    Raises:
        UsageError: the configuration cannot be read, or names a data path
            (relative to where zerograd-train ran) that is not found here.

    Example:

    >>> import json, os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with open(os.path.join(folder, "config.json"), "w") as f:
    ...         json.dump({"method": "fgsm_rs", "dataset": "mnist10k", "epsilon": 0.1}, f)
    ...     print(run_of(folder).dataset)
    mnist10k
    """
    folder = model_path if os.path.isdir(model_path) else os.path.dirname(model_path)
    config_path = os.path.join(folder or ".", "config.json")
    if not os.path.isfile(config_path):
        return None
    from zerograd_tf.datasets import names_a_file
    from zerograd_tf.runs.config import ConfigError, RunConfig

    unreadable = options.UsageError(
        f"{config_path} is not a readable zerograd-train configuration: pass --dataset.")
    try:
        with open(config_path, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError):
        raise unreadable from None
    if not (isinstance(saved, dict) and {"method", "dataset", "epsilon"} <= set(saved)):
        return None
    try:
        config = RunConfig.from_dict(saved)
    except (ConfigError, TypeError, ValueError):
        raise unreadable from None
    tfds = not names_a_file(config.dataset) and config.dataset != DEFAULT_DATASET
    for path, what in [(config.dataset if names_a_file(config.dataset) else None, "data set"),
                       (config.data_dir if tfds and data_dir is None else None, "--data-dir")]:
        if path is not None and not os.path.isabs(path) and not os.path.exists(path):
            raise options.UsageError(
                f"{config_path}: the run's {what} {path} is not found from here (a path "
                "relative to where zerograd-train ran): pass "
                + ("--data-dir or " if what == "--data-dir" else "") + "--dataset.")
    return config


def load_model(path):
    if os.path.isdir(path):
        # A zerograd-train run directory: its model.
        inner = os.path.join(path, "model.keras")
        if not os.path.isfile(inner):
            raise options.UsageError(
                f"{path} is a directory and holds no model.keras (an unfinished run?); "
                "give a saved .keras model file.")
        path = inner
    if not os.path.isfile(path):
        raise options.UsageError(f"no such model file: {path}")
    if path.endswith(".keras") and not zipfile.is_zipfile(path):
        raise options.UsageError(
            f"{path} is not a Keras model: a .keras file is a zip archive, and this one "
            "is not (a damaged or renamed file?).")
    import keras

    try:
        return keras.models.load_model(path)
    except Exception as error:
        raise options.UsageError(f"cannot load {path} as a Keras model ({error}).") from None


def check_compatible(model, x, y, source):
    """Checks image shape and label range against the model, where it knows them."""
    import zerograd_tf as zg
    from zerograd_tf import datasets

    inner = model.classifier if isinstance(model, zg.AdversarialModel) else model
    try:
        expected, num_classes = tuple(inner.input_shape[1:]), inner.output_shape[-1]
    except (AttributeError, ValueError):  # subclassed models know no shapes
        return
    if tuple(x.shape[1:]) != expected:
        raise DataError(
            f"{source}: images have shape {tuple(x.shape[1:])} but the model expects "
            f"{expected}.")
    datasets.check_labels_in_range(y, num_classes, source)


def evaluate(argv=None):
    args = build_parser().parse_args(argv)
    epsilon = args.epsilon
    # Option errors before the work (and before TensorFlow is imported).
    if args.json and args.json != "-":
        run_dir.check_file(args.json, "--json")
    if args.backup:
        run_dir.check_file(args.backup, "--backup")
    # Without --dataset, a model in a zerograd-train run folder is evaluated
    # on the examples of the run's own final evaluation (all of them).
    # (A missing model is load_model's error to report.)
    run = (run_of(args.model, args.data_dir)
           if args.dataset is None and os.path.exists(args.model) else None)
    args.dataset = args.dataset or (run.dataset if run else DEFAULT_DATASET)
    # TensorFlow, and the library's Keras classes registered (for load_model).
    zg = _programs.load_library()
    import numpy as np

    from zerograd_tf import batching, evaluation

    model = load_model(args.model)
    # A saved float32 value, written as its shortest decimal (0.1, not
    # 0.10000000149011612): the same float32 when the attacks cast it.
    held = (float(str(np.float32(model.epsilon))) if hasattr(model, "epsilon") else None)
    if epsilon is None and run is not None:
        # The run's, as its final evaluation took it (a model saved during
        # the ε warm-up by an earlier version may hold less).
        epsilon = float(str(np.float32(run.epsilon)))
        if held is not None and not np.isclose(held, epsilon):
            print(f"{PROG}: --epsilon {epsilon:g} (the run's, from its config.json; the "
                  f"model holds {held:g})", file=sys.stderr)
    elif epsilon is None and held is not None:
        epsilon = held
    elif epsilon is None:
        raise options.UsageError(
            "the model has no saved epsilon (not a zerograd_tf model): pass --epsilon.")
    if run is None:
        x, y, split = load_split(args.dataset, args.data_dir, args.download)
    else:
        try:
            x, y, split = run_split(run, args.data_dir, args.download)
        except DataError as error:
            raise DataError(f"{str(error).rstrip('.')} (the run's data set, from its "
                            "config.json): pass --dataset.") from None
        print(f"{PROG}: --dataset {run.dataset} (the run's, from its config.json: its "
              f"{split})", file=sys.stderr)
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    check_compatible(model, x, y, args.dataset)
    attacked, loss = model, None
    if args.precision == "float32":
        from zerograd_tf import dtype_policies

        try:  # made once here: every evaluation below attacks this copy
            attacked, loss = dtype_policies.attacked_model(model)
        except ValueError:
            raise options.UsageError(
                "--precision float32: the model computes in lower precision and cannot be "
                "copied to float32 (a subclassed network); pass --precision as_trained.") from None
        if attacked is not model:
            print(f"{PROG}: attacking a float32 copy of the model (--precision float32)",
                  file=sys.stderr)
    dataset = batching.make_dataset(x, y, args.batch_size)
    settings = dict(steps=args.steps, restarts=args.restarts, attack=args.attack.split(","),
                    apgd_steps=args.apgd_steps, apgd_restarts=args.apgd_restarts,
                    apgd_targets=args.apgd_targets, square_queries=args.square_queries,
                    batch_size=args.batch_size, seed=args.seed, verbose=args.verbose,
                    precision=args.precision, **({} if loss is None else {"loss": loss}))
    from zerograd_tf.evaluation.backup import BackupError

    try:
        with contextlib.redirect_stdout(sys.stderr):  # progress bars: stdout is for results
            report = zg.evaluate_robustness(attacked, dataset, epsilon,
                                            alpha=args.alpha * epsilon,
                                            backup_path=args.backup, **settings)
    except BackupError as error:
        raise options.UsageError(f"--backup {error.problem}; remove it or choose another "
                                 "--backup.") from None
    report = {"model": args.model, "dataset": args.dataset, "split": split,
              **report}
    if args.epsilon_sweep:
        others = [epsilon / 2] + ([min(1.0, 2 * epsilon)] if epsilon < 1 else [])
        with contextlib.redirect_stdout(sys.stderr):
            sweep = evaluation.epsilon_sweep(attacked, dataset, others,
                                             relative_alpha=args.alpha, **settings)
        radii = sorted([epsilon, *sweep["epsilons"]])
        accuracy = dict(zip(sweep["epsilons"], sweep["robust_accuracy"]))
        accuracy[epsilon] = float(report["robust_accuracy"])
        values = [accuracy[r] for r in radii]
        violations = [list(pair) for pair in evaluation.rising_pairs(radii, values)]
        report["epsilon_sweep"] = {"epsilons": radii, "robust_accuracy": values,
                                   "monotone": not violations, "violations": violations}
    return report, args.json


def format_table(report):
    from zerograd_tf.evaluation import masking

    rows = [("model", report["model"]), ("data", f"{report['dataset']} ({report['split']})"),
            ("examples", report["num_examples"]), ("epsilon", f"{report['epsilon']:.4g}"),
            ("attacked in", report["precision"]),
            ("clean accuracy", f"{report['clean_accuracy']:.4f}")]
    for entry in report["attacks"]:
        detail = (f"{entry['robust_accuracy']:.4f}  ({entry['num_attacked']} attacked, "
                  f"{entry['num_broken']} broken, {entry['seconds']:.1f} s)")
        label = entry["label"]
        if entry["name"] == "pgd" and "alpha" in report:
            label += f" (alpha {report['alpha']:.4g})"  # the APGD attacks choose their own
        rows.append((f"after {label}", detail))
    rows += [("robust accuracy", f"{report['robust_accuracy']:.4f}"
              + ("  (worst case per example)" if len(report["attacks"]) > 1 else "")),
             ("clean loss", f"{report['clean_loss']:.4f}"),
             ("robust loss", f"{report['robust_loss']:.4f}"),
             ("seconds", f"{report['seconds']:.1f}")]
    summary = masking.square_only_summary(report)
    if summary:
        rows.append(summary)
    sweep = report.get("epsilon_sweep")
    if sweep:
        rows.append(("epsilon sweep", ", ".join(
            f"{e:.4g}: {a:.4f}" for e, a in zip(sweep["epsilons"], sweep["robust_accuracy"]))))
        if not sweep["monotone"]:
            rows.append(("warning", "robust accuracy rises with epsilon ("
                         + ", ".join(f"{a:.4g} -> {b:.4g}" for a, b in sweep["violations"])
                         + "): the attack misses examples at the larger radius "
                           "(gradient masking?)"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv=None):
    _programs.prepare_process()
    try:
        report, json_path = evaluate(argv)
    except (options.UsageError, DataError) as error:
        print(f"{PROG}: error: {options.with_flags(error)}", file=sys.stderr)
        return 2
    if json_path == "-":  # standard output holds the JSON report alone
        print(format_table(report), file=sys.stderr)
        print(json.dumps(report))
        return 0
    print(format_table(report))
    print(json.dumps(report))
    if json_path:
        io_utils.write_json_atomic(json_path, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
