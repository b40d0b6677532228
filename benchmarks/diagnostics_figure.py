"""The README's diagnostics figure: what changes when catastrophic overfitting sets in.

    python benchmarks/diagnostics_figure.py       # MNIST setting of the CO study, seed 0
    python benchmarks/diagnostics_figure.py --plan benchmarks/studies/co_study_v3.json \
        --methods fgsm_rs zerograd_q0.7 n_fgsm --output benchmarks/results/diagnostics_v3

Trains FGSM-RS and ZeroGrad (q = 0.35 and 0.7; `--methods`: any methods of
the plan) in a study's MNIST setting (the first study's by default: trained
on all 8,000 digits) and records, after every epoch, the statistics of
`zerograd_tf.AdversarialDiagnostics` on 500 test digits: FGSM and PGD-10
accuracy, gradient alignment, the fraction of tiny gradient elements, and the
training perturbation's size and zeroed fraction. Writes
`benchmarks/results/diagnostics_mnist.json` (the machine, plan, setting and
seed, and per method the rows) and `.png`.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A program's own environment, before TensorFlow is imported (user values kept).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zerograd_tf as zg  # noqa: E402
from zerograd_tf import io_utils  # noqa: E402
from zerograd_tf.benchmarking.machine import machine_record  # noqa: E402
from zerograd_tf.benchmarking.study_plan import StudyPlan  # noqa: E402
from zerograd_tf.runs import options, pipeline  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# Many models per process: TensorFlow's retracing warnings are expected here.
tf.get_logger().setLevel("ERROR")
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))
# The MNIST setting of the first CO study (trained on all 8,000 digits).
FIRST_PLAN = os.path.join(HERE, "studies", "co_study_v1.json")


class Recorder(zg.AdversarialDiagnostics):
    """The diagnostics callback, keeping its statistics in memory as well."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        stats = self.statistics()
        logs = logs or {}
        self.rows.append({
            "epoch": epoch + 1,
            "fgsm_accuracy": stats["fgsm_accuracy"], "pgd_accuracy": stats["pgd_accuracy"],
            "alignment": stats["alignment"], "small_fraction": stats["small_fraction"],
            "mean_abs_delta": float(logs.get("mean_abs_delta", np.nan)),
            "zeroed_fraction": float(logs.get("zeroed_fraction", np.nan)),
        })


def main(argv=None):
    parser = options.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", default=FIRST_PLAN,
                        help="the study whose setting and methods are run (co_study_v1.json)")
    parser.add_argument("--setting", default="mnist", help="a setting of the plan (mnist)")
    parser.add_argument("--methods", nargs="+",
                        default=["fgsm_rs", "zerograd_q0.35", "zerograd_q0.7"],
                        help="methods of the plan (fgsm_rs zerograd_q0.35 zerograd_q0.7)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=SHARED)
    parser.add_argument("--size", type=int, default=500,
                        help="test digits the statistics are measured on (500)")
    parser.add_argument("--train-size", type=int, default=None,
                        help="train on the first N digits only (smoke tests)")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "diagnostics_mnist"))
    parser.add_argument("flags", nargs=argparse.REMAINDER,
                        help="after '--': zerograd-train flags overriding the setting's")
    args = parser.parse_args(argv)
    try:
        plan = StudyPlan.from_file(args.plan)
    except (OSError, ValueError, KeyError) as error:
        parser.error(f"--plan: cannot read a study plan from {args.plan}: {error}")
    if args.setting not in plan.settings:
        parser.error(f"--setting: must be one of {', '.join(plan.settings)}, "
                     f"got {args.setting!r}")
    unknown = [m for m in args.methods if m not in plan.methods]
    if unknown:
        parser.error(f"--methods: {', '.join(unknown)} not in the plan (valid: "
                     f"{', '.join(plan.methods)})")

    overrides = options.explicit_fields(options.config_parser("zerograd-train"),
                                        [f for f in args.flags if f != "--"])
    data = plan.load_data(args.setting, plan.dataset_path(args.setting, args.data_dir),
                          train_size=args.train_size)
    _, (x, y) = plan.monitor_and_evaluation(args.setting, data, final_size=args.size)
    results = {}
    for method in args.methods:
        config = plan.run_config(args.setting, method, args.seed, data, overrides)
        keras.backend.clear_session()
        model = pipeline.build_model(config, data)
        recorder = Recorder(x, y, logdir=os.path.join(args.output + "_logs", method))
        pipeline.fit(model, config, data, callbacks=[recorder])
        results[method] = recorder.rows
        print(method, json.dumps(recorder.rows[-1]))
    io_utils.write_json_atomic(args.output + ".json", {
        "machine": machine_record(), "plan": os.path.basename(args.plan),
        "setting": args.setting, "seed": args.seed, "examples": len(x), "methods": results})
    plot(results, args.output + ".png",
         f"{args.setting}, ε = {config.epsilon:g}, seed {args.seed}: diagnostics on {len(x)} "
         f"held-out examples")
    return 0


def plot(results, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("pgd_accuracy", "PGD-10 accuracy (solid), FGSM (dotted)"),
              ("alignment", "gradient alignment"),
              ("small_fraction", "fraction of |∇ₓL| < 1e-6"),
              ("mean_abs_delta", "training mean |δ|")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for method, rows in results.items():
        epochs = [r["epoch"] for r in rows]
        for ax, (key, panel) in zip(axes, panels):
            line, = ax.plot(epochs, [r[key] for r in rows], marker="o", ms=3, label=method)
            if key == "pgd_accuracy":
                ax.plot(epochs, [r["fgsm_accuracy"] for r in rows], ls=":",
                        color=line.get_color())
            ax.set_title(panel, fontsize=9)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
