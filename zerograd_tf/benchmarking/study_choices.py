"""The study's two decisions, computed from run records by rules written down
before the runs: which setting of a variant the study runs (development
runs), and which recipe may become the default (issue 27's target).

Both return Markdown lines that say what was decided, or why nothing is
decided yet; `benchmarks/readme_tables.py` writes them into docs/study.md.
"""

import statistics

from zerograd_tf.benchmarking.study_records import run_row
from zerograd_tf.benchmarking.study_tables import cost_ratio, mean_std


def _worst(rows):
    return [r["final_worst_case_accuracy"] for r in rows]


def _finished(rows, expected):
    """Whether `rows` hold every expected run, each with a worst case."""
    done = {(r["setting"], r["method"], r["seed"]) for r in rows
            if r["final_worst_case_accuracy"] is not None}
    return set(expected) <= done


def development_choice(records, name, candidates, expected, tie=0.01):
    """The development runs' choice among the settings of one variant.

    The rule (written into `benchmarks/studies/co_study_v3_dev.json` before
    its runs): among the candidates with no catastrophic overfitting (and no
    run that did not learn) in any development run, the one with the
    highest worst-case accuracy averaged over the settings (each setting's
    mean over its seeds); a candidate within `tie` of that best goes first
    if it comes earlier in `candidates` (the list runs from the setting
    closest to the reference method outward). Nothing is chosen until every
    expected run of every candidate has finished.

    Args:
        records: the development study's run records.
        name: what is chosen, for the text (e.g. `"zerograd_n_fgsm quantile"`).
        candidates: method names of the plan, in tie-breaking order.
        expected: `(setting, method, seed)` of every run of the candidates
            (`StudyPlan.runs(methods=candidates)`).
        tie: the margin of a tie. Defaults to 0.01.

    Returns:
        `(chosen method name or None, list of Markdown lines)`.

    Example:

    >>> from zerograd_tf.benchmarking.study_choices import development_choice
    >>> def run(method, worst, seed):
    ...     return {"setting": "s", "method": method, "seed": seed,
    ...             "config": {"num_classes": 10},
    ...             "epochs": [{"pgd_accuracy": 0.3, "fgsm_accuracy": 0.35}],
    ...             "final": {"clean_accuracy": 0.8, "robust_accuracy": worst},
    ...             "final_autoattack": {"robust_accuracy": worst, "attacks": [
    ...                 {"name": "apgd-ce", "robust_accuracy": worst}]},
    ...             "mean_epoch_seconds": 1.0}
    >>> records = [run("a", 0.30, 0), run("b", 0.305, 0)]
    >>> development_choice(records, "q", ["a", "b"], [("s", "a", 0), ("s", "b", 0)])[0]
    'a'
    """
    rows = [run_row(r) for r in records if r["method"] in candidates]
    if not _finished(rows, expected):
        done = sum(1 for r in rows if r["final_worst_case_accuracy"] is not None)
        return None, [f"- {name}: not chosen yet ({done} of {len(expected)} development "
                      f"runs finished)."]
    settings = sorted({s for s, _, _ in expected})
    scores, notes = {}, []
    for method in candidates:
        own = [r for r in rows if r["method"] == method]
        failed = sum(r["catastrophic_overfitting"] or r["did_not_learn"] for r in own)
        per_setting = [statistics.fmean(_worst([r for r in own if r["setting"] == s]))
                       for s in settings]
        score = statistics.fmean(per_setting)
        notes.append(f"{method} {score:.3f}" + (f" (failed in {failed} of {len(own)} runs: "
                                                f"out)" if failed else ""))
        if not failed:
            scores[method] = score
    if not scores:
        return None, [f"- {name}: no candidate without catastrophic overfitting "
                      f"({'; '.join(notes)})."]
    best = max(scores.values())
    chosen = next(m for m in candidates if m in scores and scores[m] >= best - tie)
    return chosen, [f"- {name}: **{chosen}** (worst case averaged over "
                    f"{', '.join(settings)}: {'; '.join(notes)}; ties within {tie} go to "
                    f"the earlier candidate)."]


def default_target(records, candidates, single_step, expected, costs=(), margin=0.01,
                   max_cost=1.3):
    """Issue 27's target for the default recipe, judged per candidate.

    A candidate meets it when, in every setting: no run overfits
    catastrophically or fails to learn; its mean worst-case accuracy is at
    least the best single-step method's mean minus `margin`; its cost per
    epoch is at most `max_cost` times FGSM-RS's (`cost_ratio`). A setting is
    judged once its expected runs of the candidate and of the single-step
    methods have finished; one missed setting decides the candidate.

    Args:
        records: the study's run records.
        candidates: the ZeroGrad-family method names that may become the
            default.
        single_step: the single-step method names of the study (the bar).
        expected: `(setting, method, seed)` of every planned run.
        costs: cost-only records (`study_records.load_costs`). Defaults to
            none.
        margin: how far below the best single-step mean a candidate may
            be. Defaults to 0.01 (one point).
        max_cost: the cost bound, times FGSM-RS. Defaults to 1.3.

    Returns:
        `(dict candidate → True (met), False (missed) or None (not decided
        yet), Markdown lines)`.
    """
    rows = [run_row(r) for r in records]
    done = {(r["setting"], r["method"], r["seed"]) for r in rows
            if r["final_worst_case_accuracy"] is not None}
    decided, lines = {}, []
    for method in candidates:
        verdicts, results = [], []
        for setting in sorted({s for s, m, _ in expected if m == method}):
            needed = [run for run in expected if run[0] == setting
                      and run[1] in {method, *single_step}]
            if not set(needed) <= done:
                verdicts.append(f"{setting}: waiting for {len(set(needed) - done)} of "
                                f"{len(needed)} runs")
                results.append(None)
                continue
            here = [r for r in rows if r["setting"] == setting]
            own = [r for r in here if r["method"] == method]
            failed = sum(r["catastrophic_overfitting"] or r["did_not_learn"] for r in own)
            means = {m: statistics.fmean(_worst([r for r in here if r["method"] == m]))
                     for m in single_step if any(r["method"] == m for r in here)}
            bar_method = max(means, key=means.get)
            ours = statistics.fmean(_worst(own))
            ratio, source = cost_ratio(here, method,
                                       [c for c in costs if c["setting"] == setting])
            good = (failed == 0 and ours >= means[bar_method] - margin
                    and ratio is not None and ratio <= max_cost)
            results.append(good)
            cost_text = f"{ratio:.2f} × FGSM-RS ({source})" if ratio is not None else "–"
            verdicts.append(f"{setting}: {failed} of {len(own)} runs failed, worst case "
                            f"{mean_std(_worst(own))} vs {bar_method} {means[bar_method]:.3f}, "
                            f"cost {cost_text} → {'met' if good else 'missed'}")
        decided[method] = (False if False in results else None if None in results
                           else True)
        overall = {True: "**met**", False: "missed", None: "not decided yet"}[decided[method]]
        lines.append(f"- {method}: {overall} ({'; '.join(verdicts)}).")
    return decided, lines
