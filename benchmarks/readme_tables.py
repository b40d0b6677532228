"""Writes the generated tables of the README and the docs from the committed result files.

    python benchmarks/readme_tables.py            # rewrite the tables in every document
    python benchmarks/readme_tables.py --check    # exit 1 if a document is out of date

A generated table sits between `<!-- generated: NAME -->` and
`<!-- end generated -->` lines of README.md or a page under docs/ (the
`DOCUMENTS`); NAME picks the generator below, which reads only committed
files under `benchmarks/results/`. `tests/test_readme.py` checks every
document, so a number in such a table cannot drift from its data.
"""

import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
README = os.path.join(ROOT, "README.md")
DOCUMENTS = [README, os.path.join(ROOT, "docs", "cli.md"),
             os.path.join(ROOT, "docs", "precision.md"),
             os.path.join(ROOT, "docs", "benchmarks.md"), os.path.join(ROOT, "docs", "study.md"),
             os.path.join(ROOT, "docs", "guides", "choosing_a_method.md")]
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, ROOT)
from zerograd_tf import precision  # noqa: E402
from zerograd_tf.benchmarking import (  # noqa: E402
    profile_report, study_default, study_docs, study_falls)
from zerograd_tf.benchmarking.step_cost import entry_precision  # noqa: E402
from zerograd_tf.benchmarking.study_docs import machine_text  # noqa: E402

ROBUST_MODELS = [
    ("mnist_fgsm_rs", "MNIST, FGSM-RS"),
    ("mnist_zerograd_q0.7", "MNIST, ZeroGrad q = 0.7"),
    ("mnist_n_fgsm", "MNIST, N-FGSM"),
    ("mnist_pgd10", "MNIST, PGD-10"),
    ("cifar10_zerograd_q0.5", "CIFAR-10, ZeroGrad q = 0.5"),
]
ROBUST_COLUMNS = [("pgd50_10", "our PGD-50-10"), ("apgd_ce", "APGD-CE"),
                  ("apgd_dlr", "APGD-DLR"), ("apgd_t", "APGD-T"), ("square", "Square"),
                  ("autoattack", "**our AutoAttack**"), ("art_autoattack", "ART AutoAttack")]


def robust_eval_table():
    """Robust accuracy (seconds) per model and attack, and the two targets."""
    with open(os.path.join(RESULTS, "robust_eval.json")) as f:
        entries = json.load(f)["entries"]
    by_model = {}
    for entry in entries:
        by_model.setdefault(entry["model"], {})[entry["evaluation"]] = entry
    header = ["model", "clean", *[label for _, label in ROBUST_COLUMNS],
              "ours ≤ ART + 0.5 pt", "ART s / our s"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    machines = set()
    for name, label in ROBUST_MODELS:
        row = by_model.get(name)
        if not row:
            continue
        first = next(iter(row.values()))
        cells = [label, f"{first['clean_accuracy']:.3f}"]
        for key, _ in ROBUST_COLUMNS:
            entry = row.get(key)
            if entry is None:
                cells.append("–")
            elif entry.get("completed", True):
                cells.append(f"{entry['robust_accuracy']:.3f} ({entry['seconds']:.0f} s)")
            else:
                cells.append(f"stopped unfinished after {entry['seconds']:.0f} s")
            if entry is not None:
                m = entry["machine"]
                machines.add(machine_text(m, [("ART", "adversarial-robustness-toolbox")]))
        ours, art = row.get("autoattack"), row.get("art_autoattack")
        if ours and art and not art.get("completed", True):
            cells += ["–", f"> {art['seconds'] / ours['seconds']:.1f}×"]
        elif ours and art:
            met = ours["robust_accuracy"] <= art["robust_accuracy"] + 0.005
            cells += ["met" if met else "**missed**",
                      f"{art['seconds'] / ours['seconds']:.1f}×"]
        else:
            cells += ["–", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    examples = sorted({e["num_examples"] for e in entries})
    lines += ["", f"Robust accuracy (seconds) on the first {', '.join(map(str, examples))} "
                  f"examples; measured on {'; '.join(sorted(machines))}.", "",
              "| model | our AutoAttack − ART's (points) | our PGD-50-10 − our AutoAttack "
              "(points) |", "| --- | --- | --- |"]
    for name, label in ROBUST_MODELS:
        row = by_model.get(name, {})
        ours, art, pgd = (row.get(k) for k in ("autoattack", "art_autoattack", "pgd50_10"))
        if not ours:
            continue
        points = lambda a, b: (f"{100 * (a['robust_accuracy'] - b['robust_accuracy']):+.1f}"  # noqa: E731
                               if a and b and a.get("completed", True)
                               and b.get("completed", True) else "–")
        lines.append(f"| {label} | {points(ours, art)} | {points(pgd, ours)} |")
    return "\n".join(lines)


def _load(name):
    with open(os.path.join(RESULTS, name)) as f:
        return json.load(f)


def step_time_table(name="step_time.json"):
    """The step-time tables of a `step_time.py` result file, as it printed
    and stored them."""
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        return "Not measured yet."
    report = _load(name)
    machines = sorted({machine_text(e["machine"]) for e in report["steps"]})
    return (report["markdown"].rstrip() + f"\n\nMedian over {report['timed_steps']} "
            f"interleaved rounds; measured on " + "; ".join(machines) + ".")


def vs_pytorch_table(name="vs_pytorch.json"):
    """A `vs_pytorch.py` result file's table (as it stored it) with its
    machine; for a file other than `vs_pytorch.json` (whose float32 targets
    the step-cost targets table lists) also its targets, met or missed."""
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        return "Not measured yet."
    report = _load(name)
    machines = sorted({machine_text(e["machine"], [("PyTorch", "torch")])
                       for e in report["entries"]})
    text = (report["markdown"] + f"\n\nMedian over {report['rounds']} interleaved rounds "
            f"of {report['steps_per_round']} steps, batch {report['batch_size']}; measured on "
            + "; ".join(machines) + ".")
    if name != "vs_pytorch.json" and report.get("targets"):
        text += "\n\n" + "\n".join(
            f"- {'met' if t['met'] else '**missed**'}: {t['target']}" for t in report["targets"])
    return text


def step_cost_targets():
    """The step-cost targets, each met or missed, from both result files."""
    steps = {e["model"]: e["ms"] for e in _load("step_time.json")["steps"]
             if not e["jit"] and entry_precision(e) == "float32"}
    rows = []

    def row(text, value, limit, at_most=True):
        met = value <= limit if at_most else value >= limit
        rows.append(f"| {text} | {limit:.2f}× | {value:.2f}× | {'met' if met else '**missed**'} |")

    for model, limit in (("small_cnn", 1.15), ("preact_resnet18", 1.05)):
        if model in steps:
            ms = steps[model]
            row(f"ZeroGrad step / FGSM-RS step, {model} (`step_time.py`)",
                ms["zerograd_bisect"] / ms["fgsm_rs"], limit)
    vs = {}
    if os.path.exists(os.path.join(RESULTS, "vs_pytorch.json")):
        vs = {e["network"]: e["ms"] for e in _load("vs_pytorch.json")["entries"]}
    if "cnn3" in vs:
        row("ZeroGrad step / FGSM-RS step, 3-conv CNN (`vs_pytorch.py`)",
            vs["cnn3"]["tf/zerograd"] / vs["cnn3"]["tf/fgsm_rs"], 1.05)
    if "preact_resnet18" in steps:
        ms = steps["preact_resnet18"]
        row("FGSM-RS step / clean step, PreAct ResNet-18 (`step_time.py`)",
            ms["fgsm_rs"] / ms["clean"], 1.55)
    for network, ms in vs.items():
        for method in ("clean", "fgsm_rs", "zerograd", "multigrad"):
            if f"torch/{method}" in ms and f"tf/{method}" in ms:
                row(f"PyTorch step / our step, {network}, {method} (`vs_pytorch.py`)",
                    ms[f"torch/{method}"] / ms[f"tf/{method}"], 1.2, at_most=False)
    return "\n".join(["| target (CPU, batch 128, graph mode) | limit | measured | |",
                      "| --- | --- | --- | --- |", *rows])


def _precision_steps(report):
    """The graph-mode entries of a loaded `step_time_precision.json` by
    `(model, precision)`."""
    return {(e["model"], entry_precision(e)): e for e in report["steps"] if not e["jit"]}


def step_time_precision():
    """The float32 / mixed_bfloat16 step-time tables and issue 26's targets
    on them: every single-step method at least 3x faster in bfloat16 on
    conv3 and PreAct ResNet-18, ZeroGrad at most 1.05x FGSM-RS in bfloat16."""
    name = "step_time_precision.json"
    if not os.path.exists(os.path.join(RESULTS, name)):
        return "Not measured yet."
    steps = {key: entry["ms"] for key, entry in _precision_steps(_load(name)).items()}
    lines = []
    for model in ("conv3", "preact_resnet18"):
        f32, bf16 = steps.get((model, "float32")), steps.get((model, "mixed_bfloat16"))
        if not (f32 and bf16):
            continue
        for method in ("fgsm_rs", "zerograd_bisect", "multigrad3", "n_fgsm"):
            if method in f32 and method in bf16:
                speedup = f32[method] / bf16[method]
                lines.append(f"- {'met' if speedup >= 3 else '**missed**'}: {model} {method}: "
                             f"mixed_bfloat16 step {speedup:.2f}× faster than float32 "
                             f"(target 3.00×)")
        ratio = bf16["zerograd_bisect"] / bf16["fgsm_rs"]
        lines.append(f"- {'met' if ratio <= 1.05 else '**missed**'}: {model}: ZeroGrad step "
                     f"{ratio:.2f}× the FGSM-RS step in mixed_bfloat16 (target at most 1.05×)")
    return (step_time_table(name) + "\n\n\"× float32\" is the step's time over the same "
            "method's float32 step in the same rounds (0.64: 1.56× faster).\n\n"
            + "\n".join(lines))


def precision_claim():
    """The README's paragraph on precision: the ZeroGrad step's measured
    mixed_bfloat16 speed on each network of the step-time file, and what
    `--precision auto` trains in, from the parity study."""
    measured = os.path.exists(os.path.join(RESULTS, "step_time_precision.json"))
    report = _load("step_time_precision.json") if measured else {"steps": []}
    steps, speedups, machines = _precision_steps(report), [], {}
    for model, network in (("conv3", "the 3-conv CNN"), ("preact_resnet18", "PreAct ResNet-18"),
                           ("small_cnn", "the 2-conv MNIST CNN")):
        f32, bf16 = steps.get((model, "float32")), steps.get((model, "mixed_bfloat16"))
        if f32 and bf16 and "zerograd_bisect" in f32["ms"] and "zerograd_bisect" in bf16["ms"]:
            speedups.append((network, f32["ms"]["zerograd_bisect"] / bf16["ms"]["zerograd_bisect"]))
            machines[machine_text(bf16["machine"])] = None
    measured_on = "; ".join(machines)
    if speedups:
        measured_on += f" (batch {report['batch_size']})"
    return study_docs.precision_claim(
        speedups, measured_on, os.path.join(STUDIES, "precision_parity.json"),
        os.path.join(RESULTS, "precision_parity"), os.path.join(RESULTS, "co_study_v3"),
        precision.resolve_precision("auto"))


def input_check_line():
    """The measured cost of `fit`'s one-time input check."""
    rows = _load("step_time.json")["input_check"]
    ms = sorted(r["ms_per_fit"] for r in rows)
    shapes = " and ".join("×".join(map(str, r["shape"])) for r in rows)
    return (f"{ms[0]:.1f}–{ms[-1]:.1f} ms per `fit` call for a first batch of {shapes} "
            f"(`input_check` in `benchmarks/results/step_time.json`; "
            f"{machine_text(rows[0]['machine'])}).")


def timings_lines():
    """How long the quick start and the two test tiers took, with the machine:
    named once below the lines when every part was timed on the same one,
    on the same day, else on each line."""
    report = _load("timings.json")
    parts = []
    quick = report.get("quick_start")
    if quick:
        parts.append((f"- `zerograd-train`: {quick['seconds']:.0f} s in all, of which the final "
                      f"evaluation {quick['evaluation_seconds']:.0f} s", [], quick["machine"]))
    for part in ("test_suite", "fast_tests"):
        suite = report.get(part)
        if suite:
            # The command that was timed (files written before it was
            # recorded timed the serial commands).
            command = suite.get("command", {"test_suite": "python -m pytest -x -q",
                                            "fast_tests": 'python -m pytest -m "not slow"'}[part])
            # pytest's last line without its own timing: "338 passed, 2 warnings".
            outcome = (suite["summary"].split(" in ")[0]
                       or ("passed" if suite["passed"] else "failed"))
            minutes = suite["seconds"] / 60
            took = f"{minutes:.0f} minutes" if minutes >= 10 else f"{minutes:.1f} minutes"
            parts.append((f"- `{command}`: {took}", [outcome], suite["machine"]))

    def line(text, notes):
        return f"{text} ({'; '.join(notes)})." if notes else f"{text}."

    machines = {machine_text(machine) for _, _, machine in parts}
    if len(machines) == 1:
        lines = [line(text, notes) for text, notes, _ in parts]
        return "\n".join(lines + ["", f"Each on {machines.pop()}."])
    return "\n".join(line(text, notes + [machine_text(machine)]) for text, notes, machine in parts)


def profile_before_after():
    """The README's one-table summary of the profile: wall time per step
    before and after each change (graph mode)."""
    def wall(name):
        path = os.path.join(RESULTS, "profile", name)
        return _load(os.path.join("profile", name))["step_ms"] if os.path.exists(path) else None

    rows = [("ZeroGrad's mask (small_cnn ZeroGrad step)",
             wall("zerograd_bisect_small_cnn_jit-off_mask-eager.json"),
             wall("zerograd_bisect_small_cnn_jit-off.json"),
             wall("fgsm_rs_small_cnn_jit-off.json"), "FGSM-RS step"),
            ("fused batch normalization (ResNet-18 FGSM-RS step)",
             wall("fgsm_rs_preact_resnet18_jit-off_keras-bn.json"),
             wall("fgsm_rs_preact_resnet18_jit-off.json"), None, "")]
    lines = ["| change | before (ms) | after (ms) | for reference |", "| --- | --- | --- | --- |"]
    for change, before, after, reference, label in rows:
        if before and after:
            lines.append(f"| {change} | {before:.1f} | {after:.1f} | "
                         + (f"{label} {reference:.1f} ms |" if reference else "– |"))
    return "\n".join(lines)


def quick_start_output():
    """What `zerograd-train` printed in the timed quick-start run."""
    printed = _load("timings.json")["quick_start"]["printed"]
    return "```\n" + "\n".join(printed) + "\n```"


STUDIES = os.path.join(HERE, "studies")
PROFILE_DIR = os.path.join(RESULTS, "profile")
# The study v3 method that is zerograd-train's default recipe
# (tests/test_study_choices.py checks it against zerograd-train's defaults),
# and the paper's recipe, named beside it.
DEFAULT_METHOD = "zerograd_n_fgsm_q0.35"
PAPER_METHOD = "zerograd_q0.35"


def _study(name):
    return study_docs.study_summary(os.path.join(STUDIES, f"{name}.json"),
                                    os.path.join(RESULTS, name))


GENERATORS = {"robust_eval": robust_eval_table, "step_time": step_time_table,
              "precision_parity": lambda: study_docs.parity_summary(
                  os.path.join(STUDIES, "precision_parity.json"),
                  os.path.join(RESULTS, "precision_parity"), os.path.join(RESULTS, "co_study_v3")),
              "precision_claim": precision_claim,
              "precision_ties": lambda: study_docs.ties_table(
                  os.path.join(RESULTS, "precision_ties.json")),
              "step_time_precision": step_time_precision,
              "vs_pytorch_precision": lambda: vs_pytorch_table("vs_pytorch_precision.json"),
              "co_study_v2": lambda: _study("co_study_v2"),
              "profile": lambda: profile_report.profile_table(PROFILE_DIR),
              "profile_precision": lambda: profile_report.precision_profile_table(PROFILE_DIR),
              "co_study_v3": lambda: _study("co_study_v3"),
              "co_study_v3_dev": lambda: _study("co_study_v3_dev"),
              "default_claim": lambda: study_default.default_claim(
                  os.path.join(STUDIES, "co_study_v3.json"), os.path.join(RESULTS, "co_study_v3"),
                  DEFAULT_METHOD, paper_method=PAPER_METHOD),
              "method_guide": lambda: study_docs.guide_table(
                  [(os.path.join(STUDIES, f"{name}.json"), os.path.join(RESULTS, name))
                   for name in ("co_study_v3", "co_study_v2")]),
              "co_study_v3_step_size": lambda: study_docs.step_size_table(
                  os.path.join(STUDIES, "co_study_v3.json"), os.path.join(RESULTS, "co_study_v3")),
              "co_study_v3_falls": lambda: study_falls.falls_table(
                  os.path.join(STUDIES, "co_study_v3.json"), os.path.join(RESULTS, "co_study_v3"),
                  "cifar10_resnet"),
              "co_study_v3_default": lambda: study_default.default_summary(
                  os.path.join(STUDIES, "co_study_v3.json"), os.path.join(RESULTS, "co_study_v3")),
              **{f"co_study_v1_{setting}": (lambda setting=setting: study_docs.first_study_table(
                  os.path.join(STUDIES, "co_study_v1.json"), os.path.join(RESULTS, "co_study"),
                  setting)) for setting in ("mnist", "cifar10")},
              "input_check": input_check_line, "timings": timings_lines,
              "quick_start_output": quick_start_output,
              "diagnostics": lambda: study_docs.diagnostics_table(
                  os.path.join(RESULTS, "diagnostics_mnist.json")),
              "diagnostics_dev": lambda: study_docs.diagnostics_table(
                  os.path.join(RESULTS, "diagnostics_dev_mnist.json")),
              "profile_before_after": profile_before_after,
              "vs_pytorch": vs_pytorch_table, "step_cost_targets": step_cost_targets}
_BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def render(text):
    """`text` with every generated block rewritten from its result files."""
    def replace(match):
        name = match.group(2)
        if name not in GENERATORS:
            raise KeyError(f"README.md names an unknown generated table {name!r}")
        return match.group(1) + GENERATORS[name]() + "\n" + match.group(4)
    return _BLOCK.sub(replace, text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a document differs from its result files")
    args = parser.parse_args(argv)
    stale = []
    for path in DOCUMENTS:
        with open(path) as f:
            text = f.read()
        rendered = render(text)
        if rendered == text:
            continue
        stale.append(os.path.relpath(path, ROOT))
        if not args.check:
            with open(path, "w") as f:
                f.write(rendered)
    if args.check and stale:
        print(f"{', '.join(stale)} out of date: run python benchmarks/readme_tables.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
