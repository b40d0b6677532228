"""What the study says of `zerograd-train`'s default, from its records.

Issue 27's target for a safe default, judged per ZeroGrad-family recipe
(`default_summary`, for docs/study.md), and the README's opening claim
(`default_claim`): the default meets the target, or it does not and the
claim says so, or no recipe meets it and the default is the safest
single-step method (`study_choices.safest_method`).
"""

import statistics

from zerograd_tf.benchmarking import study_choices, study_records
from zerograd_tf.benchmarking.study_docs import METHOD_NAMES, SETTING_NAMES
from zerograd_tf.benchmarking.study_plan import StudyPlan
from zerograd_tf.benchmarking.study_tables import listed, mean_std

FAMILIES = ("zerograd", "zerograd_n_fgsm")


def _judge_default(plan_file, results, families):
    """`(plan, records, candidates, single_step, decided, lines)` of
    `study_choices.default_target` on a study: the candidates are its
    methods of `families`, the single-step methods every method but PGD
    training and clean training."""
    plan = StudyPlan.from_file(plan_file)
    records = study_records.load_records(results)
    candidates = [m for m, f in plan.methods.items() if f["method"] in families]
    single_step = [m for m, f in plan.methods.items() if f["method"] not in ("pgd", "clean")]
    decided, lines = study_choices.default_target(
        records, candidates, single_step, plan.runs(), study_records.load_costs(results))
    return plan, records, candidates, single_step, decided, lines


def _target_text():
    return (f"no catastrophic overfitting in any setting, a worst case at most "
            f"{study_choices.TARGET_MARGIN * 100:g} point below the best single-step "
            f"method's, at most {study_choices.TARGET_COST:g} times FGSM-RS's cost")


def describe(fields):
    """A recipe in words, from its plan fields.

    Args:
        fields: a method's fields in a study plan: `method`, and `quantile`
            and `alpha` where the method has them.

    Returns:
        The recipe's name for the documents' prose.

    Example:

    >>> from zerograd_tf.benchmarking.study_default import describe
    >>> describe({"method": "zerograd", "quantile": 0.35, "alpha": 2.0})
    'ZeroGrad with q = 0.35 and α = 2ε'
    >>> describe({"method": "zerograd_n_fgsm", "quantile": 0.35})
    "ZeroGrad's mask on N-FGSM's step (q = 0.35)"
    """
    if fields["method"] == "zerograd":
        return f"ZeroGrad with q = {fields['quantile']:g} and α = {fields['alpha']:g}ε"
    if fields["method"] == "zerograd_n_fgsm":
        return f"ZeroGrad's mask on N-FGSM's step (q = {fields['quantile']:g})"
    return METHOD_NAMES.get(fields["method"], fields["method"])


def default_summary(plan_file, results, families=FAMILIES):
    """Issue 27's target for the default recipe, per ZeroGrad-family method
    of the study (`study_choices.default_target`): the single-step methods
    are every method but PGD and clean training.

    Args:
        plan_file: the study's plan.
        results: its results folder.
        families: the `method` values of the candidates. Defaults to
            ZeroGrad and ZeroGrad on N-FGSM's step.
    """
    _, _, candidates, _, decided, lines = _judge_default(plan_file, results, families)
    met = [m for m, ok in decided.items() if ok]
    undecided = sum(ok is None for ok in decided.values())
    if met:
        verdict = f"Recipes that meet it: {', '.join(met)}."
    elif undecided:
        verdict = (f"No ZeroGrad-family recipe meets it so far; {undecided} of "
                   f"{len(candidates)} {'is' if undecided == 1 else 'are'} not decided yet.")
    else:
        verdict = f"None of the {len(candidates)} ZeroGrad-family recipes of the plan meets it."
    return "\n".join([verdict, "", *lines])


def _so_far(runs, method, setting, expected):
    """How many of `method`'s runs `setting` plans, if more than `runs`
    have finished there (else None)."""
    planned = sum(run[:2] == (setting, method) for run in expected)
    return planned if planned > runs else None


def _counts(rows, method, settings, failures, expected):
    """`"a of b MNIST runs, c of d CIFAR-10 runs and e of f ... runs so far
    (g planned)"` of a method's runs that overfitted (`failures`: or did not
    learn), and the settings without runs."""
    counts, missing = [], []
    for setting in settings:
        runs = [r for r in rows if r["method"] == method and r["setting"] == setting]
        name = SETTING_NAMES.get(setting, setting)
        if runs:
            failed = sum(bool(r["catastrophic_overfitting"] or (failures and r["did_not_learn"]))
                         for r in runs)
            planned = _so_far(len(runs), method, setting, expected)
            counts.append(f"{failed} of {len(runs)} {name} runs"
                          + (f" so far ({planned} planned)" if planned else ""))
        else:
            missing.append(name)
    return listed(counts), missing


def _worst_cases(rows, method, settings, single_step, expected, names):
    """Per setting with runs of `method`: its worst case and the best
    other single-step method's mean (among those whose planned runs there
    have all finished)."""
    parts = []
    for setting in settings:
        own = [r["final_worst_case_accuracy"] for r in rows
               if r["method"] == method and r["setting"] == setting]
        if not own:
            continue
        means = study_choices.finished_means(rows, expected, setting,
                                             [m for m in single_step if m != method])
        best = max(means, key=means.get) if means else None
        gap = (means[best] - statistics.fmean(own)) * 100 if best else 0.0
        notes = []
        if best is not None:
            notes.append("the best single-step method there" if gap <= 0
                         else f"{names[best]} {means[best]:.3f}, {gap:.1f} points higher")
        planned = _so_far(len(own), method, setting, expected)
        if planned:
            notes.append(f"{len(own)} of {planned} runs so far")
        parts.append(f"{mean_std(own)} on {SETTING_NAMES.get(setting, setting)}"
                     + (f" ({'; '.join(notes)})" if notes else ""))
    return "; ".join(parts)


def default_claim(plan_file, results, default_method, paper_method=None, families=FAMILIES):
    """The README's opening numbers on `zerograd-train`'s default: whether it
    meets the target for a safe default (`default_summary`); if no
    ZeroGrad-family recipe does and the default is the safest single-step
    method (`study_choices.safest_method`), its numbers beside the paper's
    recipe's; otherwise how often it failed, which recipes meet the target
    and which method is safest.

    Args:
        plan_file: the study's plan.
        results: its results folder.
        default_method: the plan's method name of `zerograd-train`'s default
            recipe (e.g. `"zerograd_n_fgsm_q0.35"`).
        paper_method: the plan's method name of the paper's recipe, named
            beside a default that is not it. Defaults to none.
        families: the `method` values of the candidates. Defaults to
            ZeroGrad and ZeroGrad on N-FGSM's step.
    """
    plan, records, candidates, single_step, decided, _ = _judge_default(plan_file, results,
                                                                         families)
    rows = study_choices.planned_rows(records, plan.runs())
    names = {m: describe(fields) for m, fields in plan.methods.items()}
    description = names[default_method]
    settings = list(plan.settings)
    counts, missing = _counts(rows, default_method, settings, False, plan.runs())
    study = (f"In [the catastrophic-overfitting study](docs/study.md) (AutoAttack + PGD-50-10 "
             f"worst case, {len(rows)} of {len(plan.runs())} runs finished"
             + (f"; none yet in {', '.join(missing)}" if missing else "") + ")")
    if decided.get(default_method):
        return (f"{study}, `zerograd-train`'s default, {description}, meets the target for a "
                f"safe default ({_target_text()}).")
    met = [m for m, ok in decided.items() if ok]
    undecided = sum(ok is None for ok in decided.values())
    still = (f"; {undecided} {'is' if undecided == 1 else 'are'} still being measured"
             if undecided else "")
    safest, compared, counted = study_choices.safest_method(records, single_step,
                                                            plan.runs())
    advice = ("\n\nCheck every model you train with AutoAttack (`zerograd-train`'s final "
              "evaluation, `zerograd-eval`) and the CO monitor (`--co-monitor warn`); "
              "[Choosing a method](docs/guides/choosing_a_method.md) says what worked where.")
    if not met and safest == default_method:
        failed, _ = _counts(rows, default_method, settings, True, plan.runs())
        own = [r for r in rows if r["method"] == default_method]
        masked = {s: sum(bool(r["gradient_masking"]) for r in own if r["setting"] == s)
                  for s in settings}
        masking = "; ".join(f"in {n} of its {sum(r['setting'] == s for r in own)} "
                            f"{SETTING_NAMES.get(s, s)} runs" for s, n in masked.items() if n)
        text = (f"**No ZeroGrad-family recipe, the default included, meets the target for a "
                f"safe default yet** "
                f"({_target_text()}). {study}, none of the {len(candidates)} ZeroGrad-family "
                f"recipes meets it{still}. `zerograd-train`'s default is the single-step "
                f"method with the fewest failed runs (of the {len(compared)} compared in "
                f"{' and '.join(SETTING_NAMES.get(s, s) for s in counted)}, "
                + ("the one setting whose runs have" if len(counted) == 1 else
                   "the settings whose runs have")
                + f" all finished): {description}, with {failed} overfitting "
                f"catastrophically or failing to learn; worst case "
                f"{_worst_cases(rows, default_method, settings, single_step, plan.runs(), names)}.")
        fewest = compared[default_method]
        tied = [names[m] for m, (f, n) in compared.items()
                if m != default_method and f * fewest[1] == fewest[0] * n]
        if len(tied) == 1:
            text += (f" {tied[0]} had as few failed runs; between the two the rule takes the "
                     f"higher worst case averaged over the settings.")
        elif tied:
            text += (f" {len(tied)} other methods had as few failed runs ({'; '.join(tied)}); "
                     f"among the {len(tied) + 1} the rule takes the highest worst case "
                     f"averaged over the settings.")
        if masking:
            text += (f" Square found signs of gradient masking {masking}: the worst case "
                     f"counts what it broke, but such a model may be weaker still.")
        if paper_method and paper_method != default_method:
            paper, _ = _counts(rows, paper_method, settings, False, plan.runs())
            flag = plan.methods[paper_method]["method"]
            text += (f" The paper's recipe, {names[paper_method]} "
                     f"(`--method {flag}`), overfitted catastrophically in {paper}.")
        return text + advice
    text = ("**Not safe by default yet.** " + study + f", `zerograd-train`'s default, "
            f"{description}, " + (f"overfitted catastrophically in {counts}."
                                  if counts else "has no finished runs."))
    if met:
        text += (f" {', '.join(met)} meet{'s' if len(met) == 1 else ''} the target for a safe "
                 f"default ({_target_text()}); the default has not been switched yet.")
    else:
        text += (f" None of the {len(candidates)} ZeroGrad-family recipes studied so far meets "
                 f"the target for a safe default ({_target_text()}){still}.")
    if safest and safest != default_method:
        text += (f" The safest single-step method in the study is {names[safest]} "
                 f"(`{safest}`).")
    return text + advice.replace("Check every", "Until the default meets it, check every")
