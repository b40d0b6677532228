"""The documents' text about the studies, from their committed result files.

`benchmarks/readme_tables.py` writes these into the README and the docs;
each function reads only the files it is given, so the same function serves
every study of the same kind.
"""

import json
import os

from zerograd_tf.benchmarking import study_choices, study_plots, study_records, study_tables
from zerograd_tf.benchmarking.study_plan import StudyPlan


def machine_text(machine, extra=()):
    """`"2 CPUs, TensorFlow x, Keras y, [extra versions,] date"` of a
    result's machine record (`zerograd_tf.benchmarking.machine`).

    Args:
        machine: the machine record, a dict.
        extra: `(label, package)` pairs of further versions to name.
            Defaults to none.

    Example:

    >>> from zerograd_tf.benchmarking.study_docs import machine_text
    >>> machine_text({"cpus": 2, "tensorflow": "2.21.0", "keras": "3.15.1",
    ...               "date": "2026-12-03"})
    '2 CPUs, TensorFlow 2.21.0, Keras 3.15.1, 2026-12-03'
    >>> machine_text({"cpus": 2, "cpu": "AMD EPYC", "bfloat16_units": ["avx512_bf16"],
    ...               "tensorflow": "2.21.0", "keras": "3.15.1", "date": "2026-12-04"})
    '2 CPUs (AMD EPYC; bfloat16: avx512_bf16), TensorFlow 2.21.0, Keras 3.15.1, 2026-12-04'
    """
    if "cpus" not in machine:
        return f"an unrecorded machine ({machine['unknown']})"
    versions = [f"TensorFlow {machine['tensorflow']}", f"Keras {machine['keras']}",
                *[f"{label} {machine[package]}" for label, package in extra]]
    cpus = f"{machine['cpus']} CPUs"
    if "cpu" in machine:  # machine records of 0.2.0 on (see machine_record)
        units = machine.get("bfloat16_units")
        units = "unknown" if not isinstance(units, list) else ", ".join(units) or "none"
        cpus += f" ({machine['cpu'] or 'an unnamed CPU'}; bfloat16: {units})"
    return f"{cpus}, {', '.join(versions)}, {machine['date']}"


def _dates(records):
    dates = sorted({r.get("date", "") for r in records} - {""})
    if not dates:
        return ""
    return f" ({dates[0]}" + (f" to {dates[-1]}" if dates[-1] != dates[0] else "") + ")"


def study_summary(plan_file, results):
    """How many of a study's runs finished, its summary tables, and, for a
    plan with `choices`, the development choices
    (`study_choices.development_choice`).

    Args:
        plan_file: the study's plan (a JSON file, `StudyPlan`).
        results: its results folder (run records, `cost/`).
    """
    plan = StudyPlan.from_file(plan_file)
    records = study_records.load_records(results)
    if not records:
        return f"None of the {len(plan.runs())} runs has finished yet."
    text = (f"{len(records)} of {len(plan.runs())} runs finished{_dates(records)}.\n\n"
            + study_tables.summary(records, study_records.load_costs(results),
                                   list(plan.methods)).rstrip())
    if plan.choices:
        lines = ["Choices by the plan's rule:"]
        for what, candidates in plan.choices.items():
            lines += study_choices.development_choice(records, what, candidates,
                                                      plan.runs(methods=candidates))[1]
        text += "\n\n" + "\n".join(lines)
    return text


METHOD_NAMES = {"fgsm": "FGSM", "fgsm_rs": "FGSM-RS", "n_fgsm": "N-FGSM",
                "gradalign": "GradAlign", "multigrad": "MultiGrad", "pgd": "PGD training"}
SETTING_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10",
                 "cifar10_resnet": "CIFAR-10 PreAct ResNet-18"}


def _co_cell(rows):
    """`"CO runs/runs"`, with `" (n not learned)"` when some did not learn."""
    dead = sum(r["did_not_learn"] for r in rows)
    return (f"{sum(r['catastrophic_overfitting'] for r in rows)}/{len(rows)}"
            + (f" ({dead} not learned)" if dead else ""))


def guide_table(sources, skip=("clean",), cost_setting="cifar10"):
    """The choosing-a-method guide's table: per method and setting, the
    catastrophic-overfitting count (and runs that did not learn) and the
    worst-case accuracy; and the cost per epoch in one setting.

    Args:
        sources: `(plan_file, results)` pairs, newest study first: each
            method's runs in a setting come from the first study that has
            runs of it there.
        skip: method names left out. Defaults to `("clean",)`.
        cost_setting: the setting whose timings give the cost column
            (`study_tables.cost_ratio`: `--cost-only` timings where the
            study has them, else its epoch times; from the first study with
            either; a line under the table names the methods timed apart).
            Defaults to `"cifar10"`.
    """
    studies, methods, settings = [], [], []
    for plan_file, results in sources:
        plan = StudyPlan.from_file(plan_file)
        studies.append(([study_records.run_row(r) for r in study_records.load_records(results)],
                        [c for c in study_records.load_costs(results)
                         if c["setting"] == cost_setting]))
        methods += [m for m in plan.methods if m not in methods and m not in skip]
        settings += [s for s in plan.settings if s not in settings]
    cells = {}
    for method in methods:
        for setting in settings:
            cells[method, setting] = next(
                ([r for r in rows if r["method"] == method and r["setting"] == setting]
                 for rows, _ in studies
                 if any(r["method"] == method and r["setting"] == setting for r in rows)), [])
        cells[method, "cost"], cells[method, "cost_source"] = next(
            ((ratio, source) for ratio, source in (study_tables.cost_ratio(
                [r for r in rows if r["setting"] == cost_setting], method, costs)
                for rows, costs in studies) if ratio is not None), (None, ""))
    settings = [s for s in settings if any(cells[m, s] for m in methods)]
    lines = ["| method | " + " | ".join(
                 f"{SETTING_NAMES.get(s, s)}: CO | {SETTING_NAMES.get(s, s)}: worst case"
                 for s in settings)
             + f" | cost × FGSM-RS ({SETTING_NAMES.get(cost_setting, cost_setting)}) |",
             "| --- |" + " --- | --- |" * len(settings) + " --- |"]
    shown = []
    for method in methods:
        row = []
        for setting in settings:
            here = cells[method, setting]
            worst = [r["final_worst_case_accuracy"] for r in here
                     if r["final_worst_case_accuracy"] is not None]
            row += [_co_cell(here), study_tables.mean_std(worst)] if here else ["–", "–"]
        if any(c != "–" for c in row):
            shown.append(method)
            cost = cells[method, "cost"]
            lines.append(f"| {method} | " + " | ".join(row)
                         + f" | {'–' if cost is None else f'{cost:.2f}'} |")
    apart = [m for m in shown if m != "fgsm_rs"
             and cells[m, "cost_source"].startswith("timed apart")]
    if apart:
        lines.append(f"\nCost: seconds per epoch on {SETTING_NAMES.get(cost_setting, cost_setting)}"
                     " against FGSM-RS's, timed apart with `co_study.py --cost-only` for "
                     f"{study_tables.listed(apart)}; for the others with a cost, the medians of "
                     "the study runs' own epoch times.")
    return "\n".join(lines)


def parity_summary(plan_file, results, reference_results):
    """A lower-precision study's parity table against the float32 runs of
    `reference_results`, and the as-trained comparison where measured.

    Args:
        plan_file: the parity study's plan.
        results: its results folder.
        reference_results: the results folder of the float32 runs.
    """
    plan = StudyPlan.from_file(plan_file)
    records = study_records.load_records(results)
    if not records:
        return "No run has finished yet."
    reference = study_records.load_records(reference_results)
    text = (f"{len(records)} of {len(plan.runs())} runs finished{_dates(records)}; measured on "
            + "; ".join(sorted({machine_text(r["machine"]) for r in records})) + ".\n\n"
            + study_tables.parity(reference, records, list(plan.methods)))
    missed = parity_missed(plan_file, results, reference_results)
    if missed:
        text += ("\n\nSo `--precision auto` stays float32: "
                 + ", ".join(f"{setting} {method}" for setting, method in missed)
                 + (" misses" if len(missed) == 1 else " miss")
                 + " the target, which every method must meet in every setting.")
    both = study_tables.as_trained_comparison(records)
    if both:
        text += ("\n\nThe same attacks (AutoAttack + PGD-50-10, worst case) on the float32 "
                 "copy and on the bfloat16 model as it computes:\n\n" + both)
    return text


def parity_missed(plan_file, results, reference_results):
    """`(setting, method)` of every row of `parity_summary` that misses the
    parity target (`study_tables.parity_rows`), in the table's order.

    Args:
        plan_file: the parity study's plan.
        results: its results folder.
        reference_results: the results folder of the float32 runs.
    """
    plan = StudyPlan.from_file(plan_file)
    table = study_tables.parity_rows(study_records.load_records(reference_results),
                                     study_records.load_records(results), list(plan.methods))
    return [(setting, row["method"]) for setting, rows in table.items() for row in rows
            if row["met"] is False]


def precision_claim(speedups, measured_on, plan_file, results, reference_results, auto):
    """The README's paragraph on precision: how fast the ZeroGrad train step
    runs in mixed_bfloat16 and what `--precision auto` trains in, with the
    parity rows that decided it.

    Args:
        speedups: `(network, ratio)` pairs: a network's description and how
            many times as fast its ZeroGrad train step ran in mixed_bfloat16
            as in float32 (`benchmarks/step_time.py`); empty when not
            measured.
        measured_on: where and how the step times were measured (machine,
            batch size), said before them.
        plan_file: the parity study's plan.
        results: its results folder.
        reference_results: the results folder of the float32 runs.
        auto: the policy `"auto"` resolves to
            (`zerograd_tf.precision.resolve_precision("auto")`).
    """
    plan = StudyPlan.from_file(plan_file)
    records = study_records.load_records(results)
    rows = study_tables.parity_rows(study_records.load_records(reference_results), records,
                                    list(plan.methods))
    judged = [(setting, row) for setting, table in rows.items() for row in table
              if row["met"] is not None]
    missed = [f"{setting} {row['method']}" for setting, row in judged if not row["met"]]
    text = ("`--precision mixed_bfloat16` trains in bfloat16 and evaluates a float32 copy of "
            "the model.")
    if speedups:
        said = [f"{ratio:.1f}× as fast as in float32 on {network}" if i == 0
                else f"{ratio:.1f}× on {network}" for i, (network, ratio) in enumerate(speedups)]
        text += (f" Measured on {measured_on}, a ZeroGrad train step in mixed_bfloat16 ran "
                 + (", ".join(said[:-1]) + " and " if len(said) > 1 else "") + said[-1] + ".")
    text += (f" `--precision auto` trains in **{auto}**: in the robustness-parity study "
             f"({len(records)} of {len(plan.runs())} runs, worst case per example in float32)")
    target = ("the target (no new catastrophic overfitting, mean worst case at most one "
              "float32 standard deviation below float32's)")
    if not judged:
        text += ", no method has two paired seeds in a setting yet, so no target is judged."
    elif missed:
        text += (f", {len(missed)} of {len(judged)} method-and-setting rows "
                 f"{'misses' if len(missed) == 1 else 'miss'} {target}: "
                 + ", ".join(missed) + ".")
    else:
        text += f", the {len(judged)} method-and-setting rows judged so far all meet {target}."
    return text + " [Precision](docs/precision.md) has the tables."


def first_study_table(plan_file, results, setting):
    """The first CO study's table of one setting (PGD-50-10 only: the
    AutoAttack column, empty there, is left out).

    Args:
        plan_file: the first study's plan.
        results: its results folder.
        setting: the setting's name.
    """
    plan = StudyPlan.from_file(plan_file)
    records = [r for r in study_records.load_records(results) if r["setting"] == setting]
    rows = [line for line in study_tables.summary(records, methods=list(plan.methods))
            .splitlines() if line.startswith("|")]
    cells = [line.strip("|").split(" | ") for line in rows]
    drop = next(i for i, c in enumerate(cells[0]) if "AutoAttack" in c)
    if any(c[drop].strip() != "–" for c in cells[2:]):
        raise ValueError("the first study has AutoAttack numbers: show them")
    dates = sorted({r["date"] for r in records if r.get("date")})
    return "\n".join("| " + " | ".join(c.strip() for j, c in enumerate(row) if j != drop) + " |"
                     for row in cells) + (f"\n\nRuns of {dates[0]} to {dates[-1]}." if dates else "")


def step_size_table(plan_file, results):
    """Each method a study ran at more than one step size, side by side per
    setting: its runs, catastrophic-overfitting count (and runs that did
    not learn), worst-case accuracy and PGD-10 accuracy per epoch (best,
    final), one row per step size (`study_plots.step_size_groups`).

    Args:
        plan_file: the study's plan (settings in its order).
        results: its results folder.
    """
    plan = StudyPlan.from_file(plan_file)
    records = study_records.load_records(results)
    lines = ["| setting | method | α | runs | CO | worst case | best PGD-10 | final PGD-10 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for setting in plan.settings:
        groups = study_plots.step_size_groups([r for r in records if r["setting"] == setting],
                                              plan.methods)
        for (method, quantile), alphas in sorted(groups.items(), key=lambda g: str(g[0])):
            name = _label(f"{method}_q{quantile:g}" if quantile is not None else method)
            for alpha, runs in sorted(alphas.items()):
                rows = [study_records.run_row(r) for r in runs]
                lines.append(
                    f"| {SETTING_NAMES.get(setting, setting)} | {name} | {alpha:g}ε | "
                    f"{len(rows)} | {_co_cell(rows)} | "
                    + " | ".join(study_tables.mean_std(
                        [r[key] for r in rows if r[key] is not None])
                        for key in ("final_worst_case_accuracy", "best_pgd10_accuracy",
                                    "final_pgd10_accuracy")) + " |")
    if len(lines) == 2:
        return "No method has runs at two step sizes yet."
    return "\n".join(lines)


def ties_table(path):
    """ZeroGrad's threshold ties in bfloat16 and float32, from the file
    `benchmarks/precision_ties.py` writes (`path`)."""
    if not os.path.exists(path):
        return "Not measured yet."
    with open(path) as f:
        report = json.load(f)
    if not report["entries"]:
        return "No trained ZeroGrad model yet."
    groups = {}
    for e in report["entries"]:
        groups.setdefault((e["setting"], e["method"]), []).append(e)
    keys = [("zeroed_fraction", "zeroed fraction"),
            ("tied_examples", "examples whose threshold ties"),
            ("at_threshold_fraction", "elements equal to the threshold"),
            ("distinct_fraction", "distinct magnitudes")]
    lines = ["| setting | method | runs | " + " | ".join(
        f"{label} (float32 / bfloat16)" for _, label in keys) + " |",
             "| --- | --- | --- |" + " --- |" * len(keys)]
    for (setting, method), entries in groups.items():
        cells = []
        for key, _ in keys:
            a, b = (sum(e[p][key] for e in entries) / len(entries)
                    for p in ("float32", "mixed_bfloat16"))
            cells.append(f"{a:.3f} / {b:.3f}")
        lines.append(f"| {setting} | {method} | {len(entries)} | " + " | ".join(cells) + " |")
    machines = dict.fromkeys(machine_text(e.get("machine", report["machine"]))
                             for e in report["entries"])
    return ("\n".join(lines) + f"\n\nInput gradients of the first "
            f"{report['entries'][0]['num_examples']} test examples where the training attack "
            f"takes them (ZeroGrad: the clean input; ZeroGrad on N-FGSM: the input plus one "
            f"fixed draw of its noise), per trained model; measured on {'; '.join(machines)}.")


def diagnostics_table(path):
    """Per method of the diagnostics figure, the numbers its reading uses,
    from the file `benchmarks/diagnostics_figure.py` writes (`path`)."""
    with open(path) as f:
        report = json.load(f)
    # The first figure's file holds only the rows per method.
    methods = report["methods"] if "methods" in report else report
    lines = ["| method | PGD-10: best (epoch), final | FGSM: final | alignment: best (epoch), "
             "final | tiny-gradient fraction: final | zeroed fraction: final | mean \\|δ\\| |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for method, rows in methods.items():
        pgd = [r["pgd_accuracy"] for r in rows]
        alignment = [r["alignment"] for r in rows]
        best_pgd, best_alignment = max(pgd), max(alignment)
        zeroed = rows[-1]["zeroed_fraction"]
        lines.append(
            f"| {_label(method)} | {best_pgd:.3f} "
            f"({pgd.index(best_pgd) + 1}), {pgd[-1]:.3f} | {rows[-1]['fgsm_accuracy']:.3f} | "
            f"{best_alignment:.2f} ({alignment.index(best_alignment) + 1}), "
            f"{alignment[-1]:.2f} | {rows[-1]['small_fraction']:.3f} | "
            f"{'–' if zeroed != zeroed else f'{zeroed:.3f}'} | "
            f"{rows[-1]['mean_abs_delta']:.3f} |")
    if "machine" in report:
        lines += ["", f"{report['setting']} setting of {report['plan']}, seed {report['seed']}, "
                      f"statistics on {report['examples']} held-out examples; measured on "
                      f"{machine_text(report['machine'])}."]
    return "\n".join(lines)


def _label(method):
    """`"ZeroGrad q = 0.7"` for `zerograd_q0.7`, `"ZeroGrad on N-FGSM, q = 0.5"` for
    `zerograd_n_fgsm_q0.5`, `METHOD_NAMES`' names; other names unchanged."""
    if method in METHOD_NAMES:
        return METHOD_NAMES[method]
    for prefix, name in (("zerograd_n_fgsm_q", "ZeroGrad on N-FGSM, q = "),
                         ("zerograd_q", "ZeroGrad q = ")):
        if method.startswith(prefix):
            return name + method[len(prefix):]
    return method
