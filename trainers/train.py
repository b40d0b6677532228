"""zerograd-train: train a robust classifier, with TensorBoard logs,
checkpoints that resume, and a final robust-accuracy report (AutoAttack).

    zerograd-train                                   # the default method on the MNIST subset
    zerograd-train --dataset cifar10 --epsilon 8/255 --method zerograd --quantile 0.35
    tensorboard --logdir runs

Outputs in --output: model.keras, history.json, config.json, report.json,
logs/ (TensorBoard) and, until training has finished, checkpoint/ (resume state).
"""

# A thin program: parse, call the library (`zerograd_tf.runs.training`), print.
# TensorFlow, Keras and the library's models are imported after parsing
# (`training.prepare`), so that --help and option errors answer without them.
import sys

from zerograd_tf import _programs
from zerograd_tf._names import DataError
from zerograd_tf.runs import options, training
from zerograd_tf.runs.training import PROG, TrainingDiverged


def build_parser():
    parser = options.config_parser(PROG, description=__doc__.split("\n\n")[0])
    group = parser.add_argument_group("output")
    group.add_argument("--output", default=None,
                       help="output directory (default runs/<dataset>-<method>)")
    group.add_argument("--logdir", default=None,
                       help="TensorBoard directory (default <output>/logs)")
    group.add_argument("--resume", action="store_true",
                       help="resume the run in --output (also automatic when it holds "
                            "a checkpoint of the same configuration)")
    group.add_argument("--overwrite", action="store_true",
                       help="delete whatever --output holds and start afresh")
    group.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                       help="Keras fit verbosity (2: one line per epoch)")
    return parser


def setup(argv=None):
    """Parses `argv` into a `RunConfig` and the run's options, then `prepare`s.

    Returns:
        As `prepare`.

    Raises:
        options.UsageError, datasets.DataError: with a message for the user.
    """
    args = build_parser().parse_args(argv)
    config = options.config_from_args(args)
    prepared = training.prepare(config, output=args.output, logdir=args.logdir,
                                resume=args.resume, overwrite=args.overwrite,
                                verbose=args.verbose)
    # The program's own process-wide settings (the library changes none).
    _programs.seed_process(prepared["config"].seed)
    return prepared


def run(argv=None):
    """Trains as the command line says and returns the report."""
    return training.run_prepared(setup(argv))


def main(argv=None):
    _programs.prepare_process()
    try:
        run(argv)
    except (options.UsageError, DataError) as error:
        print(f"{PROG}: error: {options.with_flags(error)}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"{PROG}: error: {options.with_flags(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; run the same command again (or add --resume) to "
              "continue from the last finished epoch.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
