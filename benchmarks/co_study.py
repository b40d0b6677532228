"""The catastrophic-overfitting (CO) study: which methods collapse, over seeds.

    python benchmarks/co_study.py                      # both settings, every method, 5 seeds
    python benchmarks/co_study.py --settings mnist --methods fgsm_rs zerograd_q0.35
    python benchmarks/co_study.py --settings custom --dataset cifar10 -- \
        --model preact_resnet18 --epsilon 8/255 --epochs 30 --optimizer sgd \
        --lr-schedule cyclic --lr-max 0.2

Every run trains one method with one seed, measuring after each epoch the
clean, FGSM and PGD-10 accuracy on a fixed monitoring subset (the first 500
test examples), and at the end PGD-50-10 and AutoAttack (worst case per
example with PGD-50-10) on the whole test split. The methods that act on
catastrophic overfitting during training (`zerograd_auto`,
`fgsm_rs_early_stop`) check the held-out validation split, never the
test examples. Each finished run is written to
`<results>/<setting>/<method>_seed<k>.json` with its final weights in
`<results>/<setting>/weights/` (not committed: too large); a restarted
study skips the finished runs and resumes an unfinished one from the state
its last process left in `<results>/<setting>/partial/<method>_seed<k>/`
(not committed: the checkpoint of its last finished epoch, its per-epoch
rows and its finished evaluations; `zerograd_tf.benchmarking.partial_run`),
to the record the uninterrupted run would have written on that machine,
timings aside; it refuses (exit 2, the folder kept) to resume one under
other training options, data or software versions. A plan
that reuses another plan's methods (its `reuse` key) copies that plan's
finished runs with the same fields and seed (from the results folder of that
plan beside this one's), marked `reused_from`, instead of training them
again.
After every run, `epochs.csv` (one row per run and epoch), `runs.csv`,
`summary.md` and the plots are regenerated from all finished runs.

The study's epoch times are rough when other work shares the machine.
`--cost-only` (e.g. `--settings mnist --methods fgsm_rs zerograd_auto
--cost-only`, on a quiet machine) trains the same runs again without the
per-epoch measurement or the final evaluation, timing only their epochs
(the CO callbacks' checks included) into `<results>/cost/`; the
`zerograd_auto` target's cost then comes from those runs. With
`--cost-epochs K` it stops each run after its first K epochs (the same
recipe and schedule; the first, traced epoch is out of the mean as always):
where a run takes hours, its cost per epoch at a fraction of the time.

The CO rule (`zerograd_tf.monitoring.catastrophic_overfitting`): a run has
catastrophically overfitted when its final PGD-10 accuracy is below half of
the best PGD-10 accuracy of its earlier epochs while its final FGSM accuracy
is above that best value, which must be at least 5 %. The summaries apply the
rule to the stored per-epoch accuracies, so they always follow this text.
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A program's own environment, before TensorFlow is imported (user values kept).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from zerograd_tf import io_utils  # noqa: E402
from zerograd_tf.benchmarking import partial_run, study_plots, study_records  # noqa: E402
from zerograd_tf.benchmarking import study_run, study_tables  # noqa: E402
from zerograd_tf.benchmarking.machine import machine_record  # noqa: E402
from zerograd_tf.benchmarking.study_plan import StudyPlan  # noqa: E402
from zerograd_tf.runs import fields, options, pipeline  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# Many models per process: TensorFlow's retracing warnings are expected here.
tf.get_logger().setLevel("ERROR")
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))
# The study's settings, methods and seeds, as data (see the file's notes).
PLAN = os.path.join(HERE, "studies", "co_study_v2.json")
# The options that change what a run trains or measures each epoch (beside
# its RunConfig): an unfinished run resumes only under the same ones.
MEASUREMENT = ("monitor_size", "monitor_pgd_steps", "train_size")


class EpochTimer(keras.callbacks.Callback):
    """Times each epoch (for `--cost-only`: no measurement after it); with
    `epochs`, stops training after that many."""

    def __init__(self, epochs=None):
        super().__init__()
        self.seconds = []
        self._start = None
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        if self.epochs is not None and len(self.seconds) >= self.epochs:
            self.model.stop_training = True


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", default=PLAN,
                        help="the study's settings, methods and seeds (a JSON file; "
                             "benchmarks/studies/co_study_v2.json)")
    parser.add_argument("--settings", nargs="+", default=None,
                        help="settings of the plan, or 'custom' (default: every setting)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="methods of the plan (default: every method)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds 0..N-1 (default: the plan's)")
    parser.add_argument("--data-dir", default=SHARED,
                        help="folder of mnist10k.npz and cifar10_5k.npz (../shared/data)")
    parser.add_argument("--results", default=None,
                        help="folder of the run records (default: benchmarks/results/<the "
                             "plan file's name>, e.g. co_study_v2)")
    parser.add_argument("--dataset", default=None,
                        help="custom setting: an .npz path or TFDS name")
    parser.add_argument("--monitor-size", type=int, default=500)
    parser.add_argument("--monitor-pgd-steps", type=int, default=10)
    parser.add_argument("--final-steps", type=int, default=50)
    parser.add_argument("--final-restarts", type=int, default=10)
    parser.add_argument("--final-apgd-steps", type=int, default=100)
    parser.add_argument("--final-square-queries", type=int, default=5000)
    parser.add_argument("--as-trained-seeds", type=int, default=1,
                        help="for mixed-precision runs of seeds below N, also attack the "
                             "model as it computes (the reported number attacks a float32 "
                             "copy); default 1")
    parser.add_argument("--no-autoattack", action="store_true",
                        help="skip the final AutoAttack (+ PGD) worst-case evaluation")
    parser.add_argument("--final-size", type=int, default=None,
                        help="evaluate the first N examples of the evaluation split only")
    parser.add_argument("--train-size", type=int, default=None,
                        help="train on the first N examples only (smoke tests)")
    parser.add_argument("--no-plots", dest="plots", action="store_false")
    parser.add_argument("--tables-only", action="store_true",
                        help="only regenerate the tables and plots from the finished runs")
    parser.add_argument("--compare-with", default=None, metavar="RESULTS",
                        help="print, as JSON, how each finished run here compares with the "
                             "same run in the results folder RESULTS (trained again: are its "
                             "epochs identical?)")
    parser.add_argument("--cost-only", action="store_true",
                        help="only time the training epochs (no measurement, no evaluation) "
                             "into <results>/cost/, on a quiet machine: the zerograd_auto "
                             "target's cost then comes from these runs")
    # >= 2: the first epoch is traced, out of the mean.
    parser.add_argument("--cost-epochs", type=options.flag_type(fields.Integer(2), "--cost-epochs"),
                        default=None,
                        help="with --cost-only: time only the first K epochs of each run "
                             "(K >= 2; the first is traced, out of the mean)")
    parser.add_argument("flags", nargs=argparse.REMAINDER,
                        help="after '--': zerograd-train flags overriding the setting's")
    return parser


def overrides(args):
    """The RunConfig fields that the zerograd-train flags after '--' set."""
    return options.explicit_fields(options.config_parser("zerograd-train"),
                                   [f for f in args.flags if f != "--"])


def parse(argv=None):
    """`(args, plan)`; a setting or method the plan lacks exits with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plan = StudyPlan.from_file(args.plan)
    except (OSError, ValueError, KeyError) as error:
        parser.error(f"--plan: {error}")
    if args.dataset:  # the 'custom' setting: this data, zerograd-train's defaults
        plan.settings["custom"] = {"monitor_split": "test", "fields": {}}
    args.settings = args.settings or [s for s in plan.settings if s != "custom"]
    args.methods = args.methods or list(plan.methods)
    if args.cost_epochs is not None and not args.cost_only:
        parser.error("--cost-epochs times a --cost-only run: give --cost-only too")
    for name, chosen, valid in (("--settings", args.settings, plan.settings),
                                ("--methods", args.methods, plan.methods)):
        unknown = [c for c in chosen if c not in valid]
        if unknown:
            hint = " ('custom' needs --dataset)" if "custom" in unknown else ""
            parser.error(f"{name}: {', '.join(unknown)} not in {args.plan} "
                         f"(valid: {', '.join(valid)}){hint}")
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.results is None:
        name = os.path.splitext(os.path.basename(args.plan))[0]
        args.results = os.path.join(HERE, "results", name)
    args.overrides = overrides(args)  # zerograd-train's own one-line errors, exit 2
    return args, plan


def finished(path, plan, setting, method, seed, args, timing=False):
    """Whether `path` holds a finished run (with `timing`, its `--cost-only`
    timing); exits with status 2 when it is a run of another configuration
    than the plan's (another plan's results)."""
    if not os.path.exists(path):
        return False
    with open(path) as f:
        saved = json.load(f)
    if timing and "config" not in saved:  # timings before 2026-12-05 kept none
        return [saved.get(k) for k in ("setting", "method", "seed")] == [setting, method, seed]
    if timing and saved.get("cost_epochs") != args.cost_epochs:
        return False  # timed over other epochs: timed anew, not mixed
    saved = saved["config"]
    fields = plan.fields(setting, method, seed, args.overrides)
    different = sorted(k for k, v in fields.items() if saved.get(k) != v)
    if different:
        print(f"co_study: {path} holds a run of another configuration (differs in: "
              f"{', '.join(different)}); use another --results", file=sys.stderr)
        raise SystemExit(2)
    return True


def train_run(config, data, timer):
    """Trains one run afresh with `timer` (a callback that times the epochs)
    after the CO callbacks, whose checks are timed as part of the epoch;
    returns `(model, the acting CO callbacks)`."""
    scratch = tempfile.mkdtemp(prefix="co_study-")
    model, acting = study_run.model_and_monitors(config, data, scratch)
    pipeline.fit(model, config, data, callbacks=[*acting, timer])
    shutil.rmtree(scratch, ignore_errors=True)
    return model, acting


def cost_one(plan, setting, method, seed, data, args):
    """Times one run's training epochs alone (checks of the CO callbacks
    included) into `<results>/cost/<setting>/<method>_seed<seed>.json`."""
    path = study_records.record_path(os.path.join(args.results, "cost"), setting, method, seed)
    if finished(path, plan, setting, method, seed, args, timing=True):
        return False
    config = plan.run_config(setting, method, seed, data, args.overrides)
    timer = EpochTimer(args.cost_epochs)
    _, acting = train_run(config, data, timer)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    io_utils.write_json_atomic(path, {
        "setting": setting, "method": method, "seed": seed, "config": config.to_dict(),
        "cost_epochs": args.cost_epochs, "epochs_timed": len(timer.seconds),
        "epoch_seconds": timer.seconds,
        # The first epoch includes tracing and compilation, as in the study.
        "mean_epoch_seconds": statistics.fmean(timer.seconds[1:] or timer.seconds),
        "co_monitor": [{"checks": len(m.checks), "events": m.events} for m in acting],
        "machine": machine_record()})
    return True


def take_over(plan, setting, method, seed, args, path):
    """Copies the finished run of the plan that `plan` reuses (same fields,
    same seed) to `path`, marked `reused_from`; whether there was one."""
    other = plan.reused_from(setting, method, seed, args.overrides)
    if other is None:
        return False
    # The other plan's results folder beside this plan's.
    source = study_records.record_path(
        os.path.join(os.path.dirname(os.path.abspath(args.results)), other.name), setting,
        method, seed)
    if not os.path.exists(source):
        return False
    with open(source) as f:
        record = json.load(f)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    io_utils.write_json_atomic(path, {**record, "reused_from": other.name})
    return True


def run_one(plan, setting, method, seed, data, args, monitor, evaluation):
    """Trains (or resumes), evaluates and records one run, unless it is
    finished or taken over from the plan it reuses; whether it wrote a
    record. Its lock is held throughout, so two processes never work on one
    run; an unfinished run here is resumed rather than taken over."""
    path = study_records.record_path(args.results, setting, method, seed)
    directory = partial_path(args.results, setting, method, seed)
    with partial_run.lock(directory):
        if finished(path, plan, setting, method, seed, args):
            # A process killed between the record and the removal leaves this.
            partial_run.remove(directory)
            return False
        if not partial_run.unfinished(directory) and take_over(plan, setting, method, seed,
                                                               args, path):
            partial_run.remove(directory)  # at most a killed first write's temporaries
            return True
        config = plan.run_config(setting, method, seed, data, args.overrides)
        split = {k: v for k, v in plan.settings[setting].items()
                 if k not in ("fields", "method_fields", "note", "seeds", "first_seed")}
        measurement = {**{k: getattr(args, k) for k in MEASUREMENT}, "setting": split,
                       "monitor": study_run.fingerprint(*monitor)}
        partial = partial_run.PartialRun(directory,
                                         study_run.identity(config, data, measurement))
        record = study_run.train_and_evaluate(
            config, data, partial, monitor, evaluation,
            os.path.join(args.results, setting, "weights", f"{method}_seed{seed}.weights.h5"),
            monitor_pgd_steps=args.monitor_pgd_steps, final_steps=args.final_steps,
            final_restarts=args.final_restarts, apgd_steps=args.final_apgd_steps,
            square_queries=args.final_square_queries, autoattack=not args.no_autoattack,
            as_trained=seed < args.as_trained_seeds, verbose=1,
            label=f"{setting} {method} seed {seed}")
        io_utils.write_json_atomic(
            path, {"setting": setting, "method": method, "seed": seed, **record})
        partial.finish()
    return True


def partial_path(results, setting, method, seed):
    """The folder of an unfinished run (git-ignored; removed once its record is in)."""
    return os.path.join(results, setting, "partial", f"{method}_seed{seed}")


def compare(results, recorded):
    """Each finished run of `results` against the same run's record in the
    folder `recorded` (`study_records.reproduction`), with the machine."""
    runs = []
    for again in study_records.load_records(results):
        path = study_records.record_path(recorded, again["setting"], again["method"],
                                         again["seed"])
        if os.path.exists(path):
            with open(path) as f:
                runs.append(study_records.reproduction(json.load(f), again))
    return {"recorded": os.path.relpath(recorded, os.path.dirname(HERE)),
            "runs": runs, "machine": machine_record()}


def write_tables(records, results, methods=None):
    """epochs.csv, runs.csv and summary.md from all finished runs (rows in
    the order of `methods`)."""
    study_records.write_csv(records, results)
    text = study_tables.summary(records, study_records.load_costs(results), methods)
    with open(os.path.join(results, "summary.md"), "w") as f:
        f.write(text)
    return text


def main(argv=None):
    args, plan = parse(argv)
    os.makedirs(args.results, exist_ok=True)
    order = list(plan.methods)

    def tables():
        records = study_records.load_records(args.results)
        text = write_tables(records, args.results, order)
        if args.plots and records:
            study_plots.write_plots(records, args.results, order, plan.methods)
        return text

    if args.tables_only:
        print(tables())
        return 0
    if args.compare_with:
        print(json.dumps(compare(args.results, args.compare_with), indent=1))
        return 0
    runs = []
    loaded = {}
    for setting in args.settings:
        dataset = args.dataset or plan.dataset_path(setting, args.data_dir)
        data = plan.load_data(setting, dataset, args.overrides, args.train_size)
        loaded[setting] = (data, *plan.monitor_and_evaluation(
            setting, data, args.monitor_size, args.final_size))
        runs += plan.runs([setting], args.methods, args.seeds)
    # Progress (the runs' bar, each run's epochs and attacks) on standard
    # error; standard output is for the tables.
    with contextlib.redirect_stdout(sys.stderr):
        progress = keras.utils.Progbar(len(runs), unit_name="run")
        for i, (setting, method, seed) in enumerate(runs):
            data, monitor, evaluation = loaded[setting]
            try:
                if args.cost_only:
                    ran = cost_one(plan, setting, method, seed, data, args)
                else:
                    ran = run_one(plan, setting, method, seed, data, args, monitor, evaluation)
            except options.UsageError as error:  # a run it cannot resume or is in use
                print(f"co_study: {error}")
                return 2
            if (ran or i == len(runs) - 1) and not args.cost_only:
                tables()
            progress.update(i + 1)
    if args.cost_only:
        print(study_tables.summary(study_records.load_records(args.results),
                                   study_records.load_costs(args.results), order))
    else:
        print(tables())
    return 0


if __name__ == "__main__":
    sys.exit(main())
