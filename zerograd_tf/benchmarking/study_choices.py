"""The study's decisions, computed from run records by written rules: which
setting of a variant the study runs (development runs) and which recipe may
become the default (issue 27's target), both written down before the runs;
and, when no recipe meets that target, which single-step method is the
safest (`safest_method`, written after the MNIST and CIFAR-10 runs).

The first two return Markdown lines that say what was decided, or why
nothing is decided yet; `benchmarks/readme_tables.py` writes them into
docs/study.md.
"""

import statistics

from zerograd_tf.benchmarking.study_records import run_row
from zerograd_tf.benchmarking.study_tables import cost_ratio, mean_std

# Issue 27's bounds for a default: a worst case at most this far below the
# best single-step method's, and an epoch at most this many times FGSM-RS's.
TARGET_MARGIN = 0.01
TARGET_COST = 1.3
# Accuracies are counts over a few hundred examples: a gap of exactly one
# point must not be lost to floating-point rounding.
_ROUNDING = 1e-9


def planned_rows(records, expected):
    """The run rows of the expected runs that have a worst case (others are
    ignored: extra seeds, runs without AutoAttack)."""
    wanted = set(expected)
    rows = [run_row(r) for r in records if (r["setting"], r["method"], r["seed"]) in wanted]
    return [r for r in rows if r["final_worst_case_accuracy"] is not None]


def _worst(rows):
    return [r["final_worst_case_accuracy"] for r in rows]


def finished_means(rows, expected, setting, methods):
    """`{method: mean worst case}` in `setting` of those of `methods` that
    are planned there and whose planned runs there are all among `rows`
    (`planned_rows`): the bar other methods are measured against."""
    done = {(r["setting"], r["method"], r["seed"]) for r in rows}
    means = {}
    for method in methods:
        planned = {run for run in expected if run[:2] == (setting, method)}
        if planned and planned <= done:
            means[method] = statistics.fmean(
                _worst([r for r in rows if r["setting"] == setting and r["method"] == method]))
    return means


def development_choice(records, name, candidates, expected, tie=0.01):
    """The development runs' choice among the settings of one variant.

    The rule (written into `benchmarks/studies/co_study_v3_dev.json` before
    its runs): among the candidates with no catastrophic overfitting in any
    development run, the one with the highest worst-case accuracy averaged
    over the settings (each setting's mean over its seeds); a candidate
    within `tie` of that best goes first if it comes earlier in
    `candidates` (the list runs from the setting closest to the reference
    method outward). Nothing is chosen until every expected run of every
    candidate has finished.

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
    rows = planned_rows(records, expected)
    if len(rows) < len(set(expected)):
        return None, [f"- {name}: not chosen yet ({len(rows)} of {len(set(expected))} "
                      f"development runs finished)."]
    settings = sorted({s for s, _, _ in expected})
    scores, notes = {}, []
    for method in candidates:
        own = [r for r in rows if r["method"] == method]
        co = sum(r["catastrophic_overfitting"] for r in own)
        score = statistics.fmean(statistics.fmean(_worst([r for r in own if r["setting"] == s]))
                                 for s in settings)
        notes.append(f"{method} {score:.3f}" + (f" (CO in {co} of {len(own)} runs: out)"
                                                if co else ""))
        if not co:
            scores[method] = score
    if not scores:
        return None, [f"- {name}: no candidate without catastrophic overfitting "
                      f"({'; '.join(notes)})."]
    best = max(scores.values())
    chosen = next(m for m in candidates
                  if m in scores and scores[m] - best >= -tie - _ROUNDING)
    return chosen, [f"- {name}: **{chosen}** (worst case averaged over "
                    f"{', '.join(settings)}: {'; '.join(notes)}; ties within {tie} go to "
                    f"the earlier candidate)."]


def default_target(records, candidates, single_step, expected, costs=(),
                   margin=TARGET_MARGIN, max_cost=TARGET_COST):
    """Issue 27's target for the default recipe, judged per candidate.

    A candidate meets it when, in every setting of the study: none of its
    runs overfits catastrophically or fails to learn; its mean worst-case
    accuracy is at least the best single-step method's mean minus `margin`
    (the candidate counts among the single-step methods); its cost per epoch
    is at most `max_cost` times FGSM-RS's, timed on a quiet machine
    (`--cost-only` records: the study's own epoch times share the machine
    with other work, so they are shown but decide nothing). A setting is
    met once its planned runs of the candidate and of the single-step
    methods have finished. It is missed earlier, once the candidate's own
    planned runs there have all finished, if one of them failed, if a
    single-step method whose runs have all finished is more than `margin`
    ahead (more runs can only raise that bar), or if the quiet timings
    present put it above `max_cost`. One missed setting decides the
    candidate, and a setting that does not run it leaves it undecided.

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
    rows = planned_rows(records, expected)
    done = {(r["setting"], r["method"], r["seed"]) for r in rows}
    settings = sorted({s for s, _, _ in expected})
    decided, lines = {}, []
    for method in candidates:
        verdicts, results = [], []
        for setting in settings:
            result, text = _judge_setting(rows, done, expected, setting, method, single_step,
                                          [c for c in costs if c["setting"] == setting],
                                          margin, max_cost)
            results.append(result)
            verdicts.append(f"{setting}: {text}")
        decided[method] = (False if False in results else
                           None if None in results or not results else True)
        overall = {True: "**met**", False: "missed", None: "not decided yet"}[decided[method]]
        lines.append(f"- {method}: {overall} ({'; '.join(verdicts)}).")
    return decided, lines


def _judge_setting(rows, done, expected, setting, method, single_step, costs, margin,
                   max_cost):
    """`(True/False/None, text)` of one candidate in one setting."""
    planned = [run for run in expected if run[0] == setting]
    if not any(m == method for _, m, _ in planned):
        return None, "not run in this setting"
    needed = {run for run in planned if run[1] in {method, *single_step}}
    own_runs = {run for run in planned if run[1] == method}
    if not own_runs <= done:
        return None, f"waiting for {len(needed - done)} of {len(needed)} runs"
    # The candidate's own runs are in: a failure, a finished single-step
    # method more than `margin` ahead (more runs of other methods can only
    # raise the bar) or a quiet cost above the bound misses already; meeting
    # it waits for every run.
    here = [r for r in rows if r["setting"] == setting]
    own = [r for r in here if r["method"] == method]
    failed = sum(r["catastrophic_overfitting"] or r["did_not_learn"] for r in own)
    means = finished_means(rows, expected, setting, dict.fromkeys([*single_step, method]))
    bar = max(means, key=means.get)
    gap = statistics.fmean(_worst(own)) - means[bar]
    quiet, source = cost_ratio(here, method, costs, study_times=False)
    shown, shown_source = (quiet, source) if quiet is not None else cost_ratio(here, method)
    misses = ([f"{failed} of {len(own)} runs overfitted or did not learn"] if failed else [])
    if gap < -margin - _ROUNDING:
        misses.append(f"worst case {-gap:.3f} below {bar}'s")
    if quiet is not None and quiet > max_cost + _ROUNDING:
        misses.append(f"cost above {max_cost:g} × FGSM-RS")
    waiting = needed - done
    result = False if misses else (None if quiet is None or waiting else True)
    cost = (f"{shown:.2f} × FGSM-RS ({shown_source}"
            + (")" if quiet is not None else ", provisional)") if shown is not None else "–")
    text = (f"{failed} of {len(own)} runs failed, worst case {mean_std(_worst(own))} vs "
            f"{bar} {means[bar]:.3f}, cost {cost} → "
            + ("missed: " + ", ".join(misses) if misses else
               "met" if result else
               f"waiting for {len(waiting)} of {len(needed)} runs" if waiting else
               "waiting for --cost-only timings"))
    return result, text


def safest_method(records, single_step, expected):
    """The single-step method with the fewest failed runs, what
    `zerograd-train`'s default falls back to when no ZeroGrad-family recipe
    meets `default_target`.

    A run fails when it overfits catastrophically or does not learn. A
    setting counts once every planned single-step run in it has finished
    (until then a method with runs left could still come out safer); the
    methods planned in every counted setting are compared there: the
    fewest failures per run win, and among equals the highest worst-case
    accuracy (each setting's mean over its seeds, averaged over the
    settings).

    Args:
        records: the study's run records.
        single_step: the single-step method names of the study.
        expected: `(setting, method, seed)` of every planned run.

    Returns:
        `(method name or None, dict method → (failed runs, runs), counted
        settings)`.

    Example:

    >>> from zerograd_tf.benchmarking.study_choices import safest_method
    >>> def run(method, clean):
    ...     return {"setting": "s", "method": method, "seed": 0,
    ...             "config": {"num_classes": 10},
    ...             "epochs": [{"pgd_accuracy": 0.3, "fgsm_accuracy": 0.35}],
    ...             "final": {"clean_accuracy": clean, "robust_accuracy": 0.2},
    ...             "final_autoattack": {"robust_accuracy": 0.2, "attacks": [
    ...                 {"name": "apgd-ce", "robust_accuracy": 0.2}]},
    ...             "mean_epoch_seconds": 1.0}
    >>> safest_method([run("a", 0.1), run("b", 0.8)], ["a", "b"],
    ...               [("s", "a", 0), ("s", "b", 0)])
    ('b', {'a': (1, 1), 'b': (0, 1)}, ['s'])
    """
    planned = [run for run in expected if run[1] in single_step]
    rows = planned_rows(records, planned)
    done = {(r["setting"], r["method"], r["seed"]) for r in rows}
    counted = [s for s in sorted({run[0] for run in planned})
               if {run for run in planned if run[0] == s} <= done]
    failures, scores = {}, {}
    for method in single_step:
        if not all(any(run[:2] == (s, method) for run in planned) for s in counted):
            continue
        own = [r for r in rows if r["method"] == method and r["setting"] in counted]
        if not own:
            continue
        failed = sum(bool(r["catastrophic_overfitting"] or r["did_not_learn"]) for r in own)
        failures[method] = (failed, len(own))
        scores[method] = (-failed / len(own), statistics.fmean(
            statistics.fmean(_worst([r for r in own if r["setting"] == s])) for s in counted))
    return (max(scores, key=scores.get) if scores else None), failures, counted
