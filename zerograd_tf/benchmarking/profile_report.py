"""The profile tables of docs/benchmarks.md and docs/precision.md, from the
summaries `benchmarks/profile_step.py --save` stores (no profiler needed)."""

import json
import os

from zerograd_tf.benchmarking.study_docs import machine_text

# The saved profiles, before and after each change (docs/benchmarks.md).
CHANGES = [
    ("fgsm_rs_small_cnn_jit-off.json", "FGSM-RS, small_cnn (reference)"),
    ("zerograd_bisect_small_cnn_jit-off_mask-eager.json",
     "ZeroGrad, small_cnn, mask as separate ops (before)"),
    ("zerograd_bisect_small_cnn_jit-off.json", "ZeroGrad, small_cnn, mask as one XLA function"),
    ("fgsm_rs_preact_resnet18_jit-off_keras-bn.json",
     "FGSM-RS, PreAct ResNet-18, Keras' BatchNormalization (before)"),
    ("fgsm_rs_preact_resnet18_jit-off.json", "FGSM-RS, PreAct ResNet-18, FusedBatchNormalization"),
    ("fgsm_rs_preact_resnet18_jit-on_keras-bn.json",
     "the same under XLA, Keras' BatchNormalization (before)"),
    ("fgsm_rs_preact_resnet18_jit-on.json", "the same under XLA, FusedBatchNormalization"),
]
# The bfloat16 step against its float32 step (docs/precision.md).
PRECISION = [
    ("fgsm_rs_conv3_jit-off.json", "FGSM-RS, conv3, float32"),
    ("fgsm_rs_conv3_jit-off_mixed_bfloat16.json", "FGSM-RS, conv3, mixed_bfloat16"),
]
_PARTS = [("input_gradient", "input gradient"),
          ("per_example_quantile", "ZeroGrad quantile"), ("zerograd_mask", "ZeroGrad mask"),
          ("random_start", "random start"), ("weight_gradient", "weight gradient"),
          ("other", "other")]


def _load(folder, name):
    with open(os.path.join(folder, name)) as f:
        return json.load(f)


def profile_table(folder, profiles=CHANGES):
    """Self time per step by part of the step, and the top op types, of each
    saved profile.

    Args:
        folder: where the summaries are (`benchmarks/results/profile`).
        profiles: `(file name, row label)` pairs; a file not in `folder`
            is left out. Defaults to `CHANGES`.

    Returns:
        str, Markdown: the table and a note naming the machines.
    """
    header = ["step (batch 128; graph mode unless XLA)", "wall", "op self time",
              *[label for _, label in _PARTS], "most expensive op types"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    machines = set()
    for name, label in profiles:
        if not os.path.exists(os.path.join(folder, name)):
            continue
        entry = _load(folder, name)
        scopes = entry["by_scope_ms"]
        top = ", ".join(f"{op} {ms:.1f}" for op, ms in list(entry["by_type_ms"].items())[:4])
        lines.append("| " + " | ".join(
            [label, f"{entry['step_ms']:.1f}", f"{entry['total_ms']:.1f}",
             *[f"{scopes[key]:.1f}" if key in scopes else "–" for key, _ in _PARTS],
             top]) + " |")
        machines.add(machine_text(entry["machine"]))
    return "\n".join(lines + [
        "", "Milliseconds per step: the median wall time without the profiler, then the "
        "self time of TensorFlow's ops under it (xprof), in total and by part of the step. "
        "The ops of a step run in parallel on the cores, so their self times can add up to "
        "more than the wall time, and a nested XLA function (ZeroGrad's compiled mask) is not "
        "among them: its cost shows in the wall time. Measured on "
        f"{'; '.join(sorted(machines))}."])


def precision_profile_table(folder, profiles=PRECISION):
    """`profile_table` of a float32 and a bfloat16 step, and how much faster
    the convolution ops alone became.

    Args:
        folder: where the summaries are (`benchmarks/results/profile`).
        profiles: the float32 and the bfloat16 `(file name, row label)`.
            Defaults to `PRECISION` (the conv3 FGSM-RS step).

    Returns:
        str, Markdown.
    """
    table = profile_table(folder, profiles)
    names = [name for name, _ in profiles]
    if not all(os.path.exists(os.path.join(folder, name)) for name in names):
        return table
    # (Profiles saved before `convolution_ms` existed: their most expensive
    # op types, among which every convolution kernel of these steps is.)
    f32, bf16 = (entry.get("convolution_ms", sum(
        ms for op, ms in entry["by_type_ms"].items() if "Conv2D" in op))
        for entry in (_load(folder, name) for name in names))
    return (table + f"\n\nThe convolution ops alone (forward and both backward kernels, self "
            f"time): {f32:.1f} ms per step in float32, {bf16:.1f} ms in bfloat16 "
            f"({f32 / bf16:.2f}× faster).")
