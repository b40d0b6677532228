"""A study's Markdown summary and its targets, from its run records."""

import collections
import statistics

from zerograd_tf.benchmarking.study_records import run_row


def mean_std(values):
    """`"mean ± std"` of `values` to three decimals (`"–"` for none; one
    value alone, without a spread: one run has none to show).

    Example:

    >>> from zerograd_tf.benchmarking.study_tables import mean_std
    >>> mean_std([0.1, 0.3])
    '0.200 ± 0.141'
    >>> mean_std([0.25])
    '0.250'
    """
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def listed(parts):
    """`"a, b and c"` of a list of texts.

    Args:
        parts: the texts, in order (none gives `""`).

    Returns:
        One text.

    Example:

    >>> from zerograd_tf.benchmarking.study_tables import listed
    >>> listed(["a", "b", "c"])
    'a, b and c'
    """
    return " and ".join(filter(None, [", ".join(parts[:-1]), *parts[-1:]]))


def summary(records, costs=(), methods=None):
    """The Markdown summary of finished runs: a table per setting, and the
    zerograd_auto target.

    Args:
        records: run records (`study_records.load_records`).
        costs: cost-only records (`study_records.load_costs`): the
            zerograd_auto target's cost comes from them when they time both
            it and FGSM-RS. Defaults to none.
        methods: the order of the rows (method names). Defaults to the order
            in which methods first appear in `records`.

    Returns:
        str, Markdown.
    """
    order = list(methods or dict.fromkeys(r["method"] for r in records))
    order += [m for m in dict.fromkeys(r["method"] for r in records) if m not in order]
    lines = []
    for setting in sorted({r["setting"] for r in records}):
        subset = [r for r in records if r["setting"] == setting]
        base = [r["mean_epoch_seconds"] for r in subset if r["method"] == "fgsm_rs"]
        base_time = statistics.median(base) if base else None
        lines += [f"**Setting: {setting}**", "",
                  "| method | runs | CO rate | not learned | final AutoAttack + PGD-50-10 "
                  "(worst case) | final PGD-50-10 | final clean | best PGD-10 | final PGD-10 "
                  "| s / epoch | cost × FGSM-RS |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for method in [m for m in order if any(r["method"] == m for r in subset)]:
            runs = [run_row(r) for r in subset if r["method"] == method]
            co = sum(r["catastrophic_overfitting"] for r in runs)
            dead = sum(r["did_not_learn"] for r in runs)
            seconds = statistics.median(r["mean_epoch_seconds"] for r in runs)
            cost = f"{seconds / base_time:.2f}" if base_time else "–"
            worst = [r["final_worst_case_accuracy"] for r in runs
                     if r["final_worst_case_accuracy"] is not None]
            lines.append(
                f"| {method} | {len(runs)} | {co}/{len(runs)} | {dead}/{len(runs)} | "
                f"{mean_std(worst)} | "
                f"{mean_std([r['final_pgd50_10_accuracy'] for r in runs])} | "
                f"{mean_std([r['final_clean_accuracy'] for r in runs])} | "
                f"{mean_std([r['best_pgd10_accuracy'] for r in runs])} | "
                f"{mean_std([r['final_pgd10_accuracy'] for r in runs])} | "
                f"{seconds:.1f} | {cost} |")
        lines += _masking_lines([run_row(r) for r in subset], order)
        reused = collections.Counter((r["reused_from"], r["method"]) for r in subset
                                     if r.get("reused_from"))
        for source in sorted({source for source, _ in reused}):
            lines += ["", f"Runs taken over from {source} (same fields and seeds, not "
                      "trained again): " + ", ".join(
                          f"{m} ({n})" for (s, m), n in reused.items() if s == source) + "."]
        lines += ["", *auto_target(subset, [c for c in costs if c["setting"] == setting]), ""]
    return "\n".join(lines)


def _masking_lines(rows, order):
    """The methods with runs that showed a sign of gradient masking."""
    flagged = [f"{m} ({sum(bool(r['gradient_masking']) for r in own)} of {len(own)} runs)"
               for m in order
               for own in [[r for r in rows if r["method"] == m]]
               if any(r["gradient_masking"] for r in own)]
    if not flagged:
        return []
    return ["", "Signs of gradient masking (Square, after every gradient attack, broke more "
                "examples than chance explains; the worst case counts them, but such a model "
                "may be weaker still): " + ", ".join(flagged) + "."]


def auto_target(records, costs=()):
    """The zerograd_auto target of one setting, as met/missed lines.

    Target: no catastrophic overfitting in any run; final worst-case
    (AutoAttack + PGD-50-10) accuracy within one standard deviation of the
    best fixed quantile's (the `zerograd_q*` method with the highest mean);
    cost per epoch, checks included, at most 1.3 x FGSM-RS's - from the
    `--cost-only` runs of both methods (`costs`) when there are any, else
    from the study's own epoch times.

    Args:
        records: the run records of one setting.
        costs: the cost-only records of that setting. Defaults to none.

    Returns:
        A list of lines (empty without zerograd_auto runs).
    """
    rows = [run_row(r) for r in records]
    auto = [r for r in rows if r["method"] == "zerograd_auto"]
    if not auto:
        return []
    worst = lambda runs: [r["final_worst_case_accuracy"] for r in runs  # noqa: E731
                          if r["final_worst_case_accuracy"] is not None]
    fixed = {}
    for r in rows:
        if r["method"].startswith("zerograd_q"):
            fixed.setdefault(r["method"], []).append(r)
    lines = [f"zerograd_auto target ({len(auto)} runs):"]
    co = sum(r["catastrophic_overfitting"] for r in auto)
    lines.append(f"- catastrophic overfitting in {co}/{len(auto)} runs (target 0): "
                 f"{'met' if co == 0 else 'missed'}")
    scored = {m: worst(runs) for m, runs in fixed.items() if worst(runs)}
    if scored and worst(auto):
        best = max(scored, key=lambda m: statistics.fmean(scored[m]))
        values = scored[best]
        mean, std = statistics.fmean(values), (statistics.stdev(values)
                                              if len(values) > 1 else 0.0)
        ours = statistics.fmean(worst(auto))
        lines.append(f"- worst-case accuracy {mean_std(worst(auto))} vs the best fixed "
                     f"quantile ({best}) {mean_std(values)} (target: at least "
                     f"{mean - std:.3f}, one standard deviation below its mean): "
                     f"{'met' if ours >= mean - std else 'missed'}")
    cost, source = cost_ratio(rows, "zerograd_auto", costs)
    if cost is not None:
        lines.append(f"- cost {cost:.2f} x FGSM-RS per epoch, checks included ({source}; "
                     f"target 1.30): {'met' if cost <= 1.3 else 'missed'}")
    quantiles = sorted(r["final_quantile"] for r in auto if r["final_quantile"] is not None)
    if quantiles:
        lines.append("- final quantiles: " + ", ".join(f"{q:.2f}" for q in quantiles))
    return lines


def _stopped_after(cost):
    """The epochs a `--cost-epochs` timing stopped after, or None for a
    timing of the whole run (also one a CO monitor stopped early)."""
    asked, epochs = cost.get("cost_epochs"), cost.get("config", {}).get("epochs")
    return asked if asked is not None and epochs is not None and asked < epochs else None


def cost_ratio(rows, method, costs=(), reference="fgsm_rs", study_times=True):
    """A method's seconds per epoch over the reference's, with its source.

    From the `--cost-only` records (`costs`) when they time both methods,
    else from the study's own epoch times (medians).

    Args:
        rows: run rows (`study_records.run_row`) of one setting.
        method: the method's name.
        costs: cost-only records of that setting. Defaults to none.
        reference: the method it is compared with. Defaults to `"fgsm_rs"`.
        study_times: whether to fall back on the study's epoch times.
            Defaults to `True`.

    Returns:
        `(ratio or None, source text)`.
    """
    timed = {m: [c for c in costs if c["method"] == m] for m in (method, reference)}
    if all(timed.values()):
        dates = sorted({c["machine"]["date"] for m in timed for c in timed[m]})
        # Runs stopped early (--cost-epochs) say how many epochs were timed.
        stops = [_stopped_after(c) for m in timed for c in timed[m]]
        first = " or ".join(map(str, sorted({k for k in stops if k})))
        part = ("" if not first else f" (the first {first} epochs)" if all(stops)
                else f" (some over the first {first} epochs)")
        timed = {m: [c["mean_epoch_seconds"] for c in timed[m]] for m in timed}
        return (statistics.median(timed[method]) / statistics.median(timed[reference]),
                f"timed apart with --cost-only{part}, {len(timed[method])} and "
                f"{len(timed[reference])} runs, {', '.join(dates)}")
    own = [r["mean_epoch_seconds"] for r in rows if r["method"] == method]
    base = [r["mean_epoch_seconds"] for r in rows if r["method"] == reference]
    if own and base and study_times:
        return statistics.median(own) / statistics.median(base), "the study's epoch times"
    return None, ""


def parity(reference, candidate, methods=None, label="bfloat16"):
    """A table per setting comparing two studies' runs of the same methods.

    Target per method (row), judged from two paired seeds on: no more
    catastrophic overfitting than the reference, and a mean worst-case
    accuracy at least the reference's mean minus one of its standard
    deviations. Methods or settings without runs on
    both sides are left out. (No epoch times: runs of a study share the
    machine with other work; `benchmarks/step_time.py` measures speed.)

    Args:
        reference: run records of the reference (e.g. float32) study.
        candidate: run records of the compared study (same settings,
            methods and seeds, one thing changed).
        methods: the order of the rows (method names). Defaults to the order
            in which methods first appear in `candidate`.
        label: the candidate's name in the column headers. Defaults to
            `"bfloat16"`.

    Returns:
        str, Markdown: per setting a table and a line counting the rows that
        meet the target.

    Example:

    >>> from zerograd_tf.benchmarking.study_tables import parity
    >>> def run(worst, seed):
    ...     return {"setting": "s", "method": "m", "seed": seed,
    ...             "config": {"num_classes": 10},
    ...             "epochs": [{"pgd_accuracy": 0.3, "fgsm_accuracy": 0.35}],
    ...             "final": {"clean_accuracy": 0.8, "robust_accuracy": worst},
    ...             "final_autoattack": {"robust_accuracy": worst, "attacks": [
    ...                 {"name": "apgd-ce", "robust_accuracy": worst}]},
    ...             "mean_epoch_seconds": 1.0}
    >>> text = parity([run(0.30, 0), run(0.34, 1)], [run(0.31, 0), run(0.33, 1)])
    >>> text.splitlines()[-1]
    "1 of 1 methods meet the target (no new CO, mean at most one float32 std below float32's)."
    """
    lines = []
    for setting, rows in parity_rows(reference, candidate, methods).items():
        lines += ([""] if lines else []) + [f"**Setting: {setting}**", "",
                  f"| method | runs | CO float32 | CO {label} | worst case float32 | "
                  f"worst case {label} | difference | target |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in rows:
            verdict = {True: "met", False: "**missed**", None: "– (one seed)"}[row["met"]]
            lines.append(
                f"| {row['method']} | {row['seeds']} | {row['co_reference']}/{row['seeds']} | "
                f"{row['co']}/{row['seeds']} | {mean_std(row['worst_reference'])} | "
                f"{mean_std(row['worst'])} | {row['difference']:+.3f} | {verdict} |")
        judged = [row["met"] for row in rows if row["met"] is not None]
        lines += ["", f"{sum(judged)} of {len(judged)} methods meet the target (no new CO, "
                      f"mean at most one float32 std below float32's)." if judged else
                  "No method has two paired seeds yet: no target is judged."]
    return "\n".join(lines)


def parity_rows(reference, candidate, methods=None):
    """The rows of `parity`, per setting: for each method with finished runs
    of the same seeds on both sides, a dict of `method`, `seeds` (how many),
    `co_reference`, `co` (catastrophic overfitting counts), `worst_reference`,
    `worst` (final worst-case accuracies), `difference` (of their means) and
    `met` (the target; `None` with a single seed).

    Args:
        reference: run records of the reference (float32) study.
        candidate: run records of the compared study.
        methods: the order of the rows. Defaults to the order in which
            methods first appear in `candidate`.

    Returns:
        dict setting → list of row dicts, settings sorted.
    """
    order = list(methods or dict.fromkeys(r["method"] for r in candidate))
    table = {}
    for setting in sorted({r["setting"] for r in candidate}):
        ref = [run_row(r) for r in reference if r["setting"] == setting]
        new = [run_row(r) for r in candidate if r["setting"] == setting]
        rows = table[setting] = []
        for method in order:
            a = [r for r in ref if r["method"] == method]
            b = [r for r in new if r["method"] == method]
            seeds = {r["seed"] for r in b} & {r["seed"] for r in a}
            a = [r for r in a if r["seed"] in seeds]
            b = [r for r in b if r["seed"] in seeds]
            worst_a = [r["final_worst_case_accuracy"] for r in a]
            worst_b = [r["final_worst_case_accuracy"] for r in b]
            if not seeds or None in worst_a or None in worst_b:
                continue
            co_a = sum(r["catastrophic_overfitting"] for r in a)
            co_b = sum(r["catastrophic_overfitting"] for r in b)
            difference = statistics.fmean(worst_b) - statistics.fmean(worst_a)
            met = (co_b <= co_a and difference >= -statistics.stdev(worst_a)
                   if len(seeds) > 1 else None)
            rows.append({"method": method, "seeds": len(seeds), "co_reference": co_a,
                         "co": co_b, "worst_reference": worst_a, "worst": worst_b,
                         "difference": difference, "met": met})
    return table


def as_trained_comparison(records):
    """AutoAttack + PGD worst case of mixed-precision runs, attacking the
    float32 copy (the reported number) and the model as it computes.

    Args:
        records: run records; those with a `final_autoattack_as_trained`
            evaluation are listed.

    Returns:
        str, Markdown: one row per such run (empty without any).
    """
    rows = [r for r in records if r.get("final_autoattack_as_trained")]
    if not rows:
        return ""
    lines = ["| setting | method | seed | float32 copy | as trained | as trained − float32 |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        copy = r["final_autoattack"]["robust_accuracy"]
        as_trained = r["final_autoattack_as_trained"]["robust_accuracy"]
        lines.append(f"| {r['setting']} | {r['method']} | {r['seed']} | {copy:.3f} | "
                     f"{as_trained:.3f} | {as_trained - copy:+.3f} |")
    return "\n".join(lines)
