"""Where a training step's time goes: `tf.profiler` over the step of one method.

    python benchmarks/profile_step.py --method zerograd_bisect --model small_cnn
    python benchmarks/profile_step.py --method fgsm_rs --jit on --logdir /tmp/prof

Builds the model and step exactly as `benchmarks/step_time.py` does, runs a
warm-up, then records `--steps` steps with `tf.profiler.experimental`. The
trace lands in `--logdir` (open it in TensorBoard's Profile tab, from the
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
"""

import argparse
import collections
import glob
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from zerograd_tf import _env  # noqa: F401,E402  (before TensorFlow)

import tensorflow as tf  # noqa: E402

from benchmarks import step_time  # noqa: E402

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


def summarise(rows, steps, top=12):
    """Markdown tables: self time per step by scope, and by op type."""
    rows = [r for r in rows if r["type"] != "IDLE"]
    total = sum(r["total_self_time"] for r in rows) or 1.0
    by_scope = collections.Counter()
    by_type = collections.Counter()
    for r in rows:
        by_scope[category(r["operation"] or "")] += r["total_self_time"]
        by_type[r["type"]] += r["total_self_time"]
    lines = ["| part of the step | ms / step | share |", "| --- | --- | --- |"]
    for name in (*SCOPES, "weight_gradient", "other"):
        if by_scope[name]:
            lines.append(f"| {name} | {by_scope[name] / steps / 1e3:.2f} | "
                         f"{100 * by_scope[name] / total:.0f} % |")
    lines.append(f"| **total (device self time)** | {total / steps / 1e3:.2f} | 100 % |")
    lines += ["", "| op type | ms / step | share |", "| --- | --- | --- |"]
    for name, value in by_type.most_common(top):
        lines.append(f"| {name} | {value / steps / 1e3:.2f} | {100 * value / total:.0f} % |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="zerograd_bisect", choices=list(step_time.METHODS))
    parser.add_argument("--model", default="small_cnn", choices=step_time.MODELS)
    parser.add_argument("--jit", choices=["off", "on"], default="off")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--logdir", default=None,
                        help="where the trace goes (a temporary folder if not given)")
    args = parser.parse_args(argv)
    logdir = args.logdir or tempfile.mkdtemp(prefix="zerograd_profile_")
    model = step_time.build(args.method, args.model, args.jit == "on")
    step = step_time.make_step(model, args.batch_size)
    for _ in range(args.warmup):
        step()
    tf.profiler.experimental.start(logdir)
    for _ in range(args.steps):
        step()
    tf.profiler.experimental.stop()
    print(f"trace: {logdir} (TensorBoard's Profile tab)")
    rows = op_stats(logdir)
    if rows is None:
        print("install `xprof` to print the per-scope summary here")
        return 0
    print(f"\n{args.method}, {args.model}, batch {args.batch_size}, jit_compile="
          f"{args.jit == 'on'}, {args.steps} steps\n")
    print(summarise(rows, args.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
