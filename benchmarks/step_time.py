"""Cost of one training step of every method, and of `per_example_quantile`.

    python benchmarks/step_time.py                       # the full CPU benchmark
    python benchmarks/step_time.py --models small_cnn --jit off --steps 20
    python benchmarks/step_time.py --batch-size 512 --jit on   # e.g. on a GPU
    python benchmarks/step_time.py --models conv3 --precisions float32 mixed_bfloat16

A step is what `fit` runs per batch: Keras' compiled `train_function` (input
gradient, perturbation, weight update). All methods of a model are timed in
the same process, interleaved round by round after a warm-up, so ratios stay
meaningful on a noisy machine; each is reported as the median of `--steps`
rounds, in milliseconds and as ratios to the clean and the FGSM-RS step.
Every precision (Keras dtype policy, `--precisions`) of a model and
`jit_compile` mode is timed in the same rounds as the others, so that the
"× float32" column (a method's step in that precision over its float32
step) compares steps that saw the same machine. Peak resident memory during
training steps is measured per method and precision in a fresh process (a
process's memory peak cannot be split between methods), in graph mode. The
micro-benchmark times
`per_example_quantile` alone for every formulation, with and without XLA.

Writes `benchmarks/results/step_time.json` and prints Markdown tables.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A program's own environment, before TensorFlow is imported (user values kept).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zerograd_tf as zg  # noqa: E402
from zerograd_tf import io_utils, validation  # noqa: E402
from zerograd_tf.benchmarking.machine import machine_record  # noqa: E402
from zerograd_tf.benchmarking.step_cost import (  # noqa: E402
    METHODS, NETWORKS, PRECISIONS, compiled_model, entry_precision, train_step_runner)

HERE = os.path.dirname(os.path.abspath(__file__))
# Many models per process: TensorFlow's retracing warnings are expected here.
tf.get_logger().setLevel("ERROR")


def entry_key(entry):
    return entry["model"], entry["jit"], entry_precision(entry)


def time_methods(methods, model_name, jit, batch_size, steps, warmup,
                 precisions=("float32",)):
    """Median step time (ms) of each method in each precision,
    `{precision: {method: ms}}`, every (method, precision) interleaved with
    the others round by round."""
    runners = {}
    for precision in precisions:
        for method in methods:
            model = compiled_model(method, model_name, jit, precision=precision)
            runners[precision, method] = train_step_runner(model, batch_size)
            for _ in range(warmup):
                runners[precision, method]()
    samples = {key: [] for key in runners}
    for _ in range(steps):
        for key, run in runners.items():
            start = time.perf_counter()
            run()
            samples[key].append(1e3 * (time.perf_counter() - start))
    return {p: {m: statistics.median(samples[p, m]) for m in methods} for p in precisions}


def peak_memory_mib(method, model_name, jit, batch_size, steps=5, precision="float32"):
    """Peak resident memory while a fresh process runs training steps.

    The model is built and its step compiled and run twice first; then RSS is
    sampled every 2 ms during `steps` more steps. (The process's lifetime
    peak, `ru_maxrss`, is set by graph tracing and hides the differences
    between methods.)
    """
    code = (
        "import sys, threading, time, psutil; sys.path.insert(0, %r)\n"
        "from zerograd_tf.benchmarking import step_cost as s\n"
        "m = s.compiled_model(%r, %r, %r, precision=%r); f = s.train_step_runner(m, %d)\n"
        "f(); f()\n"
        "p = psutil.Process(); peak = [p.memory_info().rss]; done = []\n"
        "def sample():\n"
        "    while not done:\n"
        "        peak[0] = max(peak[0], p.memory_info().rss); time.sleep(0.002)\n"
        "t = threading.Thread(target=sample); t.start()\n"
        "[f() for _ in range(%d)]; done.append(1); t.join()\n"
        "print(peak[0])\n"
    ) % (os.path.dirname(HERE), method, model_name, jit, precision, batch_size, steps)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=1800)
    if result.returncode != 0:
        return None
    return int(result.stdout.strip().splitlines()[-1]) / 2**20


def time_quantiles(shapes, repeats):
    results = []
    rng = np.random.default_rng(0)
    for shape in shapes:
        t = tf.constant(np.abs(rng.standard_normal(shape)).astype(np.float32))
        for method in zg.QUANTILE_METHODS:
            for jit in (False, True):
                fn = tf.function(lambda v, m=method: zg.per_example_quantile(v, 0.35, method=m),
                                 jit_compile=jit)
                for _ in range(3):
                    fn(t).numpy()
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    fn(t).numpy()
                    times.append(1e3 * (time.perf_counter() - start))
                results.append({"shape": list(shape), "method": method, "jit": jit,
                                "ms": statistics.median(times)})
    return results


def time_input_check(batch_size, shapes, repeats=20):
    """Milliseconds of `fit`'s one-time check of the first batch's values.

    `AdversarialModel.fit` reads one batch of its dataset and checks that
    the values are finite and in [0, 1], once per `fit` call (no per-step
    cost); this is that check, on a batch of each shape.
    """
    rng = np.random.default_rng(0)
    results = []
    for shape in shapes:
        x = rng.uniform(0, 1, (batch_size, *shape)).astype(np.float32)
        dataset = tf.data.Dataset.from_tensor_slices((x, np.zeros(batch_size, np.int32)))
        dataset = dataset.batch(batch_size)
        validation.warn_if_first_batch_outside_unit_range(dataset)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            validation.warn_if_first_batch_outside_unit_range(dataset)
            times.append(1e3 * (time.perf_counter() - start))
        results.append({"shape": [batch_size, *shape], "ms_per_fit": statistics.median(times)})
    return results


def markdown(report):
    """The Markdown tables of a report: one per (model, jit, precision)
    entry, with a "× float32" column in a lower precision's table when the
    same model and mode were measured in float32 too."""
    float32 = {(e["model"], e["jit"]): e["ms"] for e in report["steps"]
               if entry_precision(e) == "float32"}
    lines = []
    for entry in report["steps"]:
        times, precision = entry["ms"], entry_precision(entry)
        clean, rs = times.get("clean"), times.get("fgsm_rs")
        base = float32.get((entry["model"], entry["jit"])) if precision != "float32" else None
        header = ["method", "ms / step", "× clean", "× FGSM-RS",
                  *(["× float32"] if base else []), "peak RSS in steps (MiB)"]
        lines += [f"**{entry['model']}**, batch {report['batch_size']}, "
                  f"jit_compile={entry['jit']}, {precision}", "",
                  "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for method, ms in times.items():
            memory = entry.get("peak_rss_mib", {}).get(method)
            cells = [method, f"{ms:.1f}", f"{ms / clean:.2f}" if clean else "–",
                     f"{ms / rs:.2f}" if rs else "–"]
            if base:
                cells.append(f"{ms / base[method]:.2f}" if base.get(method) else "–")
            cells.append(f"{memory:.0f}" if memory else "–")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if report.get("quantile"):
        lines += ["**per_example_quantile**, q = 0.35 (ms)", "",
                  "| shape | method | graph | XLA |", "| --- | --- | --- | --- |"]
        rows = {}
        for r in report["quantile"]:
            rows.setdefault((tuple(r["shape"]), r["method"]), {})[r["jit"]] = r["ms"]
        for (shape, method), v in rows.items():
            lines.append(f"| {shape} | {method} | {v[False]:.2f} | {v[True]:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--models", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"],
                        choices=list(PRECISIONS),
                        help="Keras dtype policies to time, each model and mode's "
                             "precisions interleaved in the same rounds (default: float32 "
                             "mixed_bfloat16); peak memory is measured per precision")
    parser.add_argument("--jit", choices=("off", "on", "both"), default="both")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed rounds (>= 20 for reports)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    parser.add_argument("--no-quantile", dest="quantile", action="store_false")
    parser.add_argument("--quantile-repeats", type=int, default=50)
    parser.add_argument("--quantile-shapes", nargs="+", default=["128x3072", "512x3072"],
                        help="shapes of the micro-benchmark, as BxN")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "step_time.json"))
    parser.add_argument("--memory-only", action="store_true",
                        help="re-measure only the memory of --methods in the entries of "
                             "--output (every timing and the other methods' memory kept)")
    parser.add_argument("--input-check-only", action="store_true",
                        help="measure only fit's one-time input check and merge it into "
                             "--output")
    parser.add_argument("--fresh", action="store_true",
                        help="re-measure everything instead of keeping the entries already "
                             "in --output (same batch size, steps and methods)")
    parser.add_argument("--replace", action="store_true",
                        help="re-measure the requested --models and --jit modes, keeping the "
                             "other entries of --output")
    args = parser.parse_args(argv)

    # Every entry records the machine it was measured on: entries of earlier
    # runs are kept, so one machine field for the file would misattribute them.
    machine = {**machine_record(),
               "devices": [d.name for d in tf.config.list_logical_devices()]}
    report = {"batch_size": args.batch_size, "timed_steps": args.steps,
              "steps": [], "quantile": []}
    if args.input_check_only:
        with open(args.output) as f:
            kept = json.load(f)
        kept["input_check"] = time_input_check(args.batch_size, [(28, 28, 1), (32, 32, 3)])
        for row in kept["input_check"]:
            row["machine"] = machine
        _write(kept, args.output)
        print(json.dumps(kept["input_check"], indent=1))
        return 0
    previous = _previous_entries(args)
    if previous:  # kept unless re-measured below
        report["quantile"] = _previous_quantile(args)
        with open(args.output) as f:
            input_check = json.load(f).get("input_check")
        if input_check:
            report["input_check"] = input_check
    jits = {"off": [False], "on": [True], "both": [False, True]}[args.jit]
    precisions = list(dict.fromkeys(args.precisions))
    requested = {(m, j, p) for m in args.models for j in jits for p in precisions}
    if args.replace:
        previous = {key: e for key, e in previous.items() if key not in requested}
    if args.memory_only:
        for (model_name, jit, precision), entry in previous.items():
            if not jit and (model_name, jit, precision) in requested:
                entry["peak_rss_mib"] = {
                    **entry.get("peak_rss_mib", {}),
                    **{m: peak_memory_mib(m, model_name, jit, args.batch_size,
                                          precision=precision)
                       for m in args.methods}}
                entry["memory_machine"] = machine
        requested, model_names = set(), []
    else:
        model_names = args.models
    # Entries of other models/modes/precisions measured earlier with the same
    # settings stay.
    report["steps"] = [e for key, e in previous.items() if key not in requested]
    for model_name in model_names:
        for jit in jits:
            # All precisions of one model and mode are timed together
            # (interleaved in the same rounds, so that "× float32" compares
            # steps of one session): kept from --output only when all are.
            kept = all((model_name, jit, p) in previous for p in precisions)
            missing = [] if kept else precisions
            measured = {}
            if missing:
                ms = time_methods(args.methods, model_name, jit, args.batch_size, args.steps,
                                  args.warmup, missing)
                for precision in missing:
                    entry = {"model": model_name, "jit": jit, "precision": precision,
                             "machine": machine, "ms": ms[precision]}
                    if args.memory and not jit:  # graph mode only: XLA would compile twice
                        entry["peak_rss_mib"] = {
                            m: peak_memory_mib(m, model_name, jit, args.batch_size,
                                               precision=precision)
                            for m in args.methods}
                    measured[precision] = entry
            group = [measured.get(p) or previous[model_name, jit, p] for p in precisions]
            report["steps"] += group
            if measured:
                print(markdown({**report, "steps": group, "quantile": []}), flush=True)
            _write(report, args.output)  # after every group: a long run can be resumed
    if args.quantile:
        shapes = [tuple(int(v) for v in shape.split("x")) for shape in args.quantile_shapes]
        report["quantile"] = time_quantiles(shapes, args.quantile_repeats)
        for row in report["quantile"]:
            row["machine"] = machine
    order = {key: i for i, key in enumerate(
        (m, j, p) for m in NETWORKS for j in (False, True) for p in PRECISIONS)}
    report["steps"].sort(key=lambda e: order.get(entry_key(e), len(order)))
    _write(report, args.output)
    print(report["markdown"])
    return 0


def _previous_entries(args):
    """Entries of an earlier run with the same settings, to keep (unless
    --fresh), by (model, jit, precision) (an entry without a precision is
    float32): with --replace every entry not re-measured, with --memory-only
    every entry (its timings are not re-measured), else those of the same
    methods."""
    if args.fresh or not os.path.exists(args.output):
        return {}
    with open(args.output) as f:
        old = json.load(f)
    if old.get("batch_size") != args.batch_size or old.get("timed_steps") != args.steps:
        return {}
    return {entry_key(e): e for e in old.get("steps", [])
            if args.replace or args.memory_only or set(e["ms"]) == set(args.methods)}


def _previous_quantile(args):
    with open(args.output) as f:
        return json.load(f).get("quantile", [])


def _write(report, path):
    report["markdown"] = markdown(report)
    io_utils.write_json_atomic(path, report)


if __name__ == "__main__":
    sys.exit(main())
