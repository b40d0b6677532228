"""How ZeroGrad's quantile threshold ties when the input gradient comes from bfloat16.

    python benchmarks/precision_ties.py   # the parity study's finished ZeroGrad-family runs

ZeroGrad zeroes, per example, the input-gradient elements whose magnitude is
below the q-quantile of |grad|. A bfloat16 backward pass rounds the gradient
to 8 mantissa bits, so many magnitudes are equal, and the threshold can fall
on a run of equal values: then fewer than a fraction q of the elements are
zeroed, and which ones depends on rounding. For each trained model of the
parity study (`benchmarks/results/precision_parity/`, weights kept on disk)
whose method masks that way (ZeroGrad, and ZeroGrad on N-FGSM), this
computes the input gradient of the first `--size` test examples as the
training attack does (the model's attack objective, at the clean input, or
for ZeroGrad on N-FGSM at the input plus one fixed draw of its noise),
once as the model computes (bfloat16) and once on its float32 copy, and
records per precision: the mean zeroed fraction, the fraction of examples
whose threshold is tied (at least two elements equal to it), the mean
fraction of elements equal to the threshold, the mean fraction of distinct
magnitudes, and the fraction of exactly-zero gradient elements.

Writes `benchmarks/results/precision_ties.json`, which `readme_tables.py`
renders into docs/precision.md. A run whose weights are not on this machine
keeps the entry an earlier measurement gave it (with that entry's machine).
"""

import argparse
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A program's own environment, before TensorFlow is imported (user values kept).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zerograd_tf import dtype_policies, io_utils, objectives  # noqa: E402
from zerograd_tf.attacks import ops  # noqa: E402
from zerograd_tf.benchmarking import study_records  # noqa: E402
from zerograd_tf.benchmarking.machine import machine_record  # noqa: E402
from zerograd_tf.benchmarking.study_plan import StudyPlan  # noqa: E402
from zerograd_tf.runs import pipeline  # noqa: E402
from zerograd_tf.runs.config import RunConfig  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))
PLAN = os.path.join(HERE, "studies", "precision_parity.json")
# The methods whose training attack ranks |grad| against a quantile.
RANKING_METHODS = ("zerograd", "zerograd_n_fgsm")
tf.get_logger().setLevel("ERROR")


def tie_statistics(gradient, q):
    """Per-batch means of the threshold statistics of `gradient` (N, ...).

    Example:

    >>> g = np.array([[1.0, 1.0, 1.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    >>> s = tie_statistics(g, 0.5)
    >>> s["tied_examples"], s["zeroed_fraction"]
    (0.5, 0.25)
    """
    magnitude = np.abs(np.reshape(gradient, (len(gradient), -1))).astype(np.float64)
    threshold = np.quantile(magnitude, q, axis=1, method="linear", keepdims=True)
    at_threshold = magnitude == threshold
    distinct = [len(np.unique(row)) / row.size for row in magnitude]
    return {"zeroed_fraction": float(np.mean(magnitude < threshold)),
            "tied_examples": float(np.mean(at_threshold.sum(axis=1) >= 2)),
            "at_threshold_fraction": float(np.mean(at_threshold)),
            "distinct_fraction": float(np.mean(distinct)),
            "zero_fraction": float(np.mean(magnitude == 0))}


def attack_point(model, x, seed=0):
    """Where the model's training attack takes the input gradient it ranks:
    the clean input for ZeroGrad, the input plus its noise (one fixed draw,
    projected into [0, 1]) for ZeroGrad on N-FGSM."""
    if not hasattr(model, "noise_magnitude"):
        return x
    radius = model.noise_magnitude * float(model.epsilon)
    return x + ops.project(x, ops.uniform_noise(tf.shape(x), radius, ops.as_seed(seed)))


def gradients(model, x, y):
    """The attack objective's input gradient at `attack_point` (as the
    model computes, and on its float32 copy, at the same point)."""
    as_trained = model.attack_objective()
    copy, loss = dtype_policies.attacked_model(model)
    copy = objectives.model_objective(copy, loss=loss, training=model.attack_training)
    x, y = attack_point(model, tf.constant(x)), tf.constant(y)
    return {"mixed_bfloat16": ops.loss_and_gradient(as_trained, x, y)[1].numpy(),
            "float32": ops.loss_and_gradient(copy, x, y)[1].numpy()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=os.path.join(HERE, "results", "precision_parity"))
    parser.add_argument("--data-dir", default=SHARED)
    parser.add_argument("--size", type=int, default=500, help="test examples (500)")
    parser.add_argument("--output", default=os.path.join(HERE, "results",
                                                         "precision_ties.json"))
    args = parser.parse_args(argv)
    if args.size < 1:
        parser.error(f"--size must be >= 1, got {args.size}")
    plan = StudyPlan.from_file(PLAN)
    machine = machine_record()
    # The weights stay on the machine that trained them: a run measured
    # before keeps its entry (and that entry's machine) when they are gone.
    previous = {}
    if os.path.exists(args.output):
        with open(args.output) as f:
            report = json.load(f)
        for entry in report["entries"]:
            previous[entry["setting"], entry["method"], entry["seed"]] = {
                "machine": report["machine"], **entry}
    entries, loaded = [], {}
    records = [r for r in study_records.load_records(args.results)
               if r["config"]["method"] in RANKING_METHODS]
    for i, record in enumerate(records):
        weights = os.path.join(args.results, record["setting"], "weights",
                               f"{record['method']}_seed{record['seed']}.weights.h5")
        if not os.path.exists(weights):
            key = (record["setting"], record["method"], record["seed"])
            if key in previous:
                entries.append(previous[key])
            continue
        setting = record["setting"]
        if setting not in loaded:
            data = plan.load_data(setting, plan.dataset_path(setting, args.data_dir))
            loaded[setting] = (data, plan.monitor_and_evaluation(
                setting, data, final_size=args.size)[1])
        data, (x, y) = loaded[setting]
        config = RunConfig.from_dict(record["config"])
        keras.backend.clear_session()
        model = pipeline.build_model(config, data)
        model.build((None, *data.input_shape))
        with warnings.catch_warnings():  # the saved optimizer state is not needed
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(weights)
        q = float(config.quantile)
        stats = {name: tie_statistics(g, q) for name, g in gradients(model, x, y).items()}
        entries.append({"setting": setting, "method": record["method"], "seed": record["seed"],
                        "quantile": q, "num_examples": len(x), **stats, "machine": machine})
        print(f"precision_ties: {i + 1}/{len(records)} {setting} {record['method']} seed "
              f"{record['seed']}", file=sys.stderr, flush=True)
    io_utils.write_json_atomic(args.output, {"entries": entries, "machine": machine})
    return 0


if __name__ == "__main__":
    sys.exit(main())
