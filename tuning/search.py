"""zerograd-tune: KerasTuner search of ZeroGrad's quantile and step size.

    zerograd-tune --tuner random --max-trials 10 --epochs 5
    zerograd-tune --dataset cifar10 --epsilon 8/255 --tuner bayesian --max-trials 20 --train-best

The objective is the final validation robust accuracy (PGD-k on a fixed
validation subset once a trial has trained), maximised. An interrupted search
resumes where it stopped (finished trials are not run again). In
`<directory>/<project-name>/` it writes `best_hyperparameters.json` and
`trials.md` / `trials.json` (quantile, alpha, clean and PGD accuracy, time of
every trial). The search itself is `zerograd_tf.runs.tuning.search`.
"""

# A thin program: parse, call the library (`zerograd_tf.runs.tuning`), print.
# TensorFlow, Keras and KerasTuner are imported after parsing, where used, so
# that --help and option errors answer without them.
import contextlib
import json
import os
import sys

from zerograd_tf import _programs
from zerograd_tf._names import DataError
from zerograd_tf.runs import config as config_lib, options, run_dir, training, tuning
from zerograd_tf.runs.config import ConfigError as RunConfigError
from zerograd_tf.runs.tuning import PROG, TUNERS


def build_parser():
    parser = options.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0])
    group = parser.add_argument_group("search")
    group.add_argument("--tuner", default="random", choices=TUNERS,
                       help=f"one of {', '.join(TUNERS)}")
    group.add_argument("--max-trials", type=options.int_at_least("--max-trials", 1), default=10,
                       help="trials of random and Bayesian search (Hyperband budgets epochs)")
    group.add_argument("--search-method", default="zerograd",
                       choices=("zerograd", "multigrad", "search"),
                       help="fixed method, or 'search' to choose between both")
    group.add_argument("--quantile-range", type=float, nargs=2, default=(0.0, 0.9),
                       help="range of ZeroGrad's quantile q, within [0, 1)")
    group.add_argument("--alpha-range", type=float, nargs=2, default=(0.5, 2.5),
                       help="range of alpha as a multiple of epsilon")
    group.add_argument("--lr-range", type=float, nargs=2, default=None,
                       help="also search the peak learning rate (log scale)")
    group.add_argument("--directory", default="tuning_runs",
                       help="where KerasTuner keeps its searches")
    group.add_argument("--project-name", default=None,
                       help="the search's folder in --directory (default: <dataset>-<method>)")
    group.add_argument("--logdir", default=None,
                       help="TensorBoard logs per trial (default: none)")
    group.add_argument("--overwrite", action="store_true",
                       help="start the search afresh instead of resuming it")
    group.add_argument("--train-best", action="store_true",
                       help="retrain the best configuration with zerograd-train")
    group.add_argument("--output", default=None,
                       help="zerograd-train --output of --train-best (default: "
                            "<directory>/<project>/best_run)")
    group.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                       help="Keras fit verbosity of each trial")
    for title in (config_lib.DATA, config_lib.MODEL, config_lib.TRAINING):
        options.add_config_options(parser, title)
    options.add_config_options(parser, "method (fixed during the search)",
                               ("epsilon", "samples"))
    options.add_config_options(parser, config_lib.EVALUATION)
    return parser


# `zerograd-train` flags of zerograd-tune that are not arguments of `search`.
SEARCH_ARGUMENTS = ("dataset", "epochs")


def train_options_of(args):
    """The `RunConfig` fields that zerograd-tune's flags set (all of them)."""
    fields = options.config_defaults()
    return {k: v for k, v in vars(args).items() if k in fields and k not in SEARCH_ARGUMENTS}


def main(argv=None):
    _programs.prepare_process()
    args = build_parser().parse_args(argv)
    train_options = train_options_of(args)
    try:
        # Before any work: folders that cannot be written.
        for flag, path in (("--directory", args.directory), ("--logdir", args.logdir),
                           ("--output", args.output)):
            if path:
                run_dir.check_directory(path, flag)
        # KerasTuner's and Keras' progress: on standard error, the results on
        # standard output.
        with contextlib.redirect_stdout(sys.stderr):
            tuner, best = tuning.search(
                args.dataset, tuner=args.tuner, max_trials=args.max_trials,
                epochs=args.epochs, method=args.search_method,
                quantile_range=tuple(args.quantile_range), alpha_range=tuple(args.alpha_range),
                lr_range=None if args.lr_range is None else tuple(args.lr_range),
                directory=args.directory, project_name=args.project_name, logdir=args.logdir,
                overwrite=args.overwrite, verbose=args.verbose, **train_options)
    except RunConfigError as error:
        print(f"{PROG}: error: {options.usage_error(error)}", file=sys.stderr)
        return 2
    except (options.UsageError, DataError, ValueError) as error:
        print(f"{PROG}: error: {options.with_flags(error)}", file=sys.stderr)
        return 2
    except tuning.SearchFailed as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    folder = os.path.join(tuner.directory, tuner.project_name)
    print(tuning.write_summary(tuner, folder))
    print(f"best: {json.dumps(best.values)}   ({folder}/best_hyperparameters.json)")
    if args.train_best:
        values = best.values
        best_options = {"alpha": values["alpha"], **train_options}
        if "quantile" in values and values["method"] == "zerograd":
            best_options["quantile"] = values["quantile"]
        if "lr_max" in values:
            best_options["lr_max"] = values["lr_max"]
        try:
            config = tuning.run_config_of(args.dataset, values["method"], args.epochs, best_options)
            training.run_config(config, output=args.output
                                     or os.path.join(folder, "best_run"))
        except RunConfigError as error:
            print(f"{PROG}: error: {options.usage_error(error)}", file=sys.stderr)
            return 2
        except run_dir.DifferentRun as error:
            # Not zerograd-train's "pass --overwrite": here it restarts the search.
            held = ("the run of an earlier best" if args.output is None
                    else "a run of another configuration")
            print(f"{PROG}: error: {error.output} holds {held} ({error.differences}); remove "
                  "that folder, or choose another --output.", file=sys.stderr)
            return 2
        except (options.UsageError, DataError) as error:
            print(f"{PROG}: error: {options.with_flags(error)}", file=sys.stderr)
            return 2
        except training.TrainingDiverged as error:
            print(f"{PROG}: error: {options.with_flags(error)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
