"""The deepest fall of each study run's PGD-10 accuracy during training.

Catastrophic overfitting (`zerograd_tf.monitoring.catastrophic_overfitting`)
is a fall that does not come back while FGSM accuracy rises. A run can also
fall for a few epochs and recover; the study's documents show, per run, the
deepest fall, generated from the records by `benchmarks/readme_tables.py`
so that no hand-written sentence has to keep up with the runs.
"""

from zerograd_tf.benchmarking import study_records
from zerograd_tf.benchmarking.study_plan import StudyPlan


def deepest_fall(accuracies):
    """The largest fall of a curve below its running best.

    Args:
        accuracies: the accuracy after each epoch, in order.

    Returns:
        `None` when no epoch is below an earlier one; otherwise
        `(fall, peak, low)`: the fall, the index of the running best it
        fell from (its first epoch at that value) and the index of the low
        (the first of equal falls).

    Example:

    >>> from zerograd_tf.benchmarking.study_falls import deepest_fall
    >>> fall, peak, low = deepest_fall([0.1, 0.3, 0.2, 0.05, 0.3, 0.25])
    >>> round(fall, 3), peak, low
    (0.25, 1, 3)
    >>> deepest_fall([0.1, 0.2, 0.2]) is None
    True
    """
    found, peak = None, 0
    for index in range(1, len(accuracies)):
        fall = accuracies[peak] - accuracies[index]
        if fall > 0 and (found is None or fall > found[0]):
            found = (fall, peak, index)
        if accuracies[index] > accuracies[peak]:
            peak = index
    return found


def _at(value, index):
    return f"{value:.3f} ({index + 1})"


def falls_table(plan_file, results, setting, threshold=0.05):
    """A count of a setting's falls and recoveries, and a table of each
    finished run's deepest fall of PGD-10 accuracy (`deepest_fall`).

    The table gives, per run in the plan's method order: the fall, the
    running best it fell from and the low it reached (epochs in brackets),
    the clean accuracy at the low, the best PGD-10 accuracy after the low,
    the last epoch's, and whether the run overfitted catastrophically by
    the study's rule (`study_records.run_row`).

    Args:
        plan_file: the study's plan (a JSON file, `StudyPlan`).
        results: its results folder.
        setting: the setting whose runs are shown.
        threshold: the fall counted in the opening line. Defaults to 0.05.

    Returns:
        Markdown: a line, a blank line and the table, or one line when the
        setting has no finished run.
    """
    plan = StudyPlan.from_file(plan_file)
    order = list(plan.methods)
    records = sorted((r for r in study_records.load_records(results)
                      if r["setting"] == setting),
                     key=lambda r: (order.index(r["method"]) if r["method"] in order
                                    else len(order), r["method"], r["seed"]))
    if not records:
        return f"No {setting} run has finished yet."
    lines = ["| method | seed | deepest fall | from (epoch) | to (epoch) | clean there "
             "| best after (epoch) | final PGD-10 | CO by the rule |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    fell = came_back = overfitted = 0
    for record in records:
        pgd = [e["pgd_accuracy"] for e in record["epochs"]]
        co = study_records.run_row(record)["catastrophic_overfitting"]
        overfitted += bool(co)
        found = deepest_fall(pgd)
        cells = ["—"] * 5
        if found is not None:
            fall, peak, low = found
            after = pgd[low + 1:]
            best = max(after) if after else None
            cells = [f"{fall:.3f}", _at(pgd[peak], peak), _at(pgd[low], low),
                     f"{record['epochs'][low]['clean_accuracy']:.3f}",
                     _at(best, low + 1 + after.index(best)) if after else "—"]
            if fall >= threshold - 1e-9:
                fell += 1
                came_back += best is not None and best >= pgd[peak]
        lines.append(f"| {record['method']} | {record['seed']} | " + " | ".join(cells)
                     + f" | {pgd[-1]:.3f} | {'yes' if co else 'no'} |")
    opening = (f"{overfitted} of the {len(records)} finished runs overfitted catastrophically "
               f"by the rule; {fell} fell at least {threshold:g} below their running best "
               f"PGD-10 accuracy at some epoch, and {came_back} of those rose again to that "
               f"best or above.")
    return opening + "\n\n" + "\n".join(lines)
