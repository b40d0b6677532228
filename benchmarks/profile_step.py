"""Where a training step's time goes: `tf.profiler` over the step of one method.

    python benchmarks/profile_step.py --method zerograd_bisect --model small_cnn
    python benchmarks/profile_step.py --method fgsm_rs --jit on --logdir /tmp/prof
    python benchmarks/profile_step.py --method zerograd_bisect --mask-jit off --save
    python benchmarks/profile_step.py --method fgsm_rs --model conv3 --precision mixed_bfloat16

Builds the model and step exactly as `benchmarks/step_time.py` does (with
`zerograd_tf.benchmarking.step_cost`), runs a warm-up, then records
`--steps` steps with `tf.profiler.experimental`. The trace lands in
`--logdir` (open it in TensorBoard's Profile tab, from the
`tensorboard-plugin-profile` package). When the `xprof` package is
installed, the script also reads the trace itself and prints the device
self-time per step grouped by the name scopes the package gives its ops:

- `input_gradient`: the forward and backward pass for ∇ₓL (the attack's),
- `per_example_quantile`: ZeroGrad's quantile; `zerograd_mask`: the rest of its mask
  (the whole mask when it runs as one nested XLA function, the default),
- `random_start`: the uniform random start,
- `weight_gradient`: the backward pass of the training loss (`gradient_tape/...`),
- `other`: the training forward pass, the optimizer, metrics and the rest,

then the most expensive operation types. In graph mode every TensorFlow op is
listed; under XLA the compiled cluster shows as one op, so profile graph mode
to attribute time inside the step.

Two switches reproduce what the step cost before the changes that
docs/benchmarks.md describes: `--mask-jit off` runs ZeroGrad's mask as
separate graph-mode ops (`zerograd_tf.attacks.zerograd(mask_jit=False)`)
and `--keras-batchnorm` builds the residual networks with Keras'
`BatchNormalization` instead of the package's fused layer. `--save` writes
the summary with its machine record to `benchmarks/results/profile/`, from
which `readme_tables.py` writes the profile tables of docs/benchmarks.md and
docs/precision.md (`--precision` profiles a step under a Keras dtype policy).
"""

import argparse
import collections
import functools
import glob
import json
import os
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

from zerograd_tf import architectures, attacks  # noqa: E402
from zerograd_tf.benchmarking import step_cost  # noqa: E402
from zerograd_tf.benchmarking.machine import machine_record  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "profile")

# Order matters: the first scope found in an op's name claims it.
SCOPES = ("per_example_quantile", "zerograd_mask", "random_start", "input_gradient")


def category(op_name):
    for scope in SCOPES:
        if f"/{scope}" in op_name or op_name.startswith(scope):
            return scope
    if "gradient_tape/" in op_name:
        return "weight_gradient"
    return "other"


def op_stats(logdir):
    """Rows of xprof's framework_op_stats tool for the newest trace, or None."""
    try:
        from xprof.convert import raw_to_tool_data
    except ImportError:
        return None
    paths = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True),
                   key=os.path.getmtime)
    if not paths:
        return None
    data, _ = raw_to_tool_data.xspace_to_tool_data([paths[-1]], "framework_op_stats", {})
    table = json.loads(data)
    table = table[0] if isinstance(table, list) else table
    columns = [c["id"] for c in table["cols"]]
    return [dict(zip(columns, [c.get("v") if c else None for c in row["c"]]))
            for row in table["rows"]]


def aggregate(rows, steps, top=12):
    """Milliseconds of self time per step: in total, by scope, by op type
    (the `top` most expensive), and of every convolution op (forward and
    backward, `convolution_ms`)."""
    rows = [r for r in rows if r["type"] != "IDLE"]
    by_scope = collections.Counter()
    by_type = collections.Counter()
    for r in rows:
        by_scope[category(r["operation"] or "")] += r["total_self_time"]
        by_type[r["type"]] += r["total_self_time"]
    ms = lambda us: us / steps / 1e3  # noqa: E731  (xprof reports microseconds)
    return {"total_ms": ms(sum(r["total_self_time"] for r in rows)),
            "convolution_ms": ms(sum(value for name, value in by_type.items()
                                     if "Conv2D" in name)),
            "by_scope_ms": {name: ms(by_scope[name])
                            for name in (*SCOPES, "weight_gradient", "other") if by_scope[name]},
            "by_type_ms": {name: ms(value) for name, value in by_type.most_common(top)}}


def summarise(summary):
    """Markdown tables of an `aggregate` summary (with the median wall time
    of a step, `step_ms`, when given)."""
    total = summary["total_ms"] or 1.0
    lines = []
    if "step_ms" in summary:
        # Op self times overlap (the ops of a step run in parallel on the
        # cores) and leave out a nested XLA function: compare wall times.
        lines += [f"median step (wall, without the profiler): {summary['step_ms']:.2f} ms", ""]
    lines += ["| part of the step | ms / step | share |", "| --- | --- | --- |"]
    for name, value in summary["by_scope_ms"].items():
        lines.append(f"| {name} | {value:.2f} | {100 * value / total:.0f} % |")
    lines.append(f"| **total (op self time)** | {total:.2f} | 100 % |")
    lines += ["", "| op type | ms / step | share |", "| --- | --- | --- |"]
    for name, value in summary["by_type_ms"].items():
        lines.append(f"| {name} | {value:.2f} | {100 * value / total:.0f} % |")
    return "\n".join(lines)


def result_name(args):
    """The file name of a saved profile, from its settings."""
    parts = [args.method, args.model, f"jit-{args.jit}"]
    if args.precision != "float32":
        parts.append(args.precision)
    if args.mask_jit == "off":
        parts.append("mask-eager")
    if args.keras_batchnorm:
        parts.append("keras-bn")
    return "_".join(parts) + ".json"


def parse_args(argv=None):
    """The command line's settings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="zerograd_bisect", choices=list(step_cost.METHODS))
    parser.add_argument("--model", default="small_cnn", choices=step_cost.NETWORKS)
    parser.add_argument("--jit", choices=["off", "on"], default="off")
    parser.add_argument("--precision", choices=list(step_cost.PRECISIONS), default="float32",
                        help="the dtype policy of the network and the model (float32)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--mask-jit", choices=["off", "on"], default="on",
                        help="ZeroGrad's mask as one XLA function (on, the default) or as "
                             "separate ops")
    parser.add_argument("--keras-batchnorm", action="store_true",
                        help="Keras' BatchNormalization in the residual networks")
    parser.add_argument("--logdir", default=None,
                        help="where the trace goes (a temporary folder if not given)")
    parser.add_argument("--save", action="store_true",
                        help=f"write the summary to {os.path.relpath(RESULTS)}/")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logdir = args.logdir or tempfile.mkdtemp(prefix="zerograd_profile_")
    # The two "before" switches replace a module attribute for this process
    # only (a benchmark program, never the library).
    if args.mask_jit == "off":
        attacks.zerograd = functools.partial(attacks.zerograd, mask_jit=False)
    if args.keras_batchnorm:
        architectures.FusedBatchNormalization = keras.layers.BatchNormalization
    model = step_cost.compiled_model(args.method, args.model, args.jit == "on",
                                     precision=args.precision)
    step = step_cost.train_step_runner(model, args.batch_size)
    for _ in range(args.warmup):
        step()
    # The step's wall time without the profiler: op self times overlap
    # (parallel ops) and leave out a nested XLA function (ZeroGrad's mask).
    wall = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        wall.append(1e3 * (time.perf_counter() - start))
    tf.profiler.experimental.start(logdir)
    for _ in range(args.steps):
        step()
    tf.profiler.experimental.stop()
    print(f"trace: {logdir} (TensorBoard's Profile tab)")
    rows = op_stats(logdir)
    if rows is None:
        print("install `xprof` to print the per-scope summary here")
        return 0
    summary = {"step_ms": statistics.median(wall), **aggregate(rows, args.steps)}
    print(f"\n{args.method}, {args.model}, {args.precision}, batch {args.batch_size}, "
          f"jit_compile={args.jit == 'on'}, mask_jit={args.mask_jit == 'on'}, keras_batchnorm="
          f"{args.keras_batchnorm}, {args.steps} steps\n")
    print(summarise(summary))
    if args.save:
        os.makedirs(RESULTS, exist_ok=True)
        path = os.path.join(RESULTS, result_name(args))
        record = {"method": args.method, "model": args.model, "jit": args.jit == "on",
                  "precision": args.precision,
                  "mask_jit": args.mask_jit == "on", "keras_batchnorm": args.keras_batchnorm,
                  "batch_size": args.batch_size, "steps": args.steps, **summary,
                  "machine": machine_record(("tensorflow", "keras", "xprof"))}
        with open(path, "w") as f:
            json.dump(record, f, indent=1)
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
