"""When a gradient-free attack's successes mean gradient masking, not chance.

Square uses no gradient. When it breaks examples that every gradient attack
before it left robust, either the gradients mislead (gradient masking: the
gradient-based robust accuracy overstates the model's robustness) or the
gradient attacks, with their finite budgets, simply missed a few points that
a different random search found (chance). On models without masking the
second happens at a low rate: a gradient attack with a finite budget now and
then stops short of a point that exists, and a random search finds it (on a
ZeroGrad model, q = 0.35 and alpha = 2 epsilon, trained by
`zerograd-train --method zerograd` on the quick start's MNIST digits,
Square broke 1 of the 459 digits APGD-CE and APGD-T left robust), while on
a masked model the gradient attacks fail wherever the gradient is flat or
misleading and Square breaks a large share of what they left (the masked
models of `tests/test_evaluation_engine.py`: most of it).

The rule: with `k` examples broken by Square alone out of the `n` it
attacked, report masking when `k >= min_count` **and** the one-sided Wilson
score lower confidence bound (z = 1.645, 95 %) of the fraction `k / n`
exceeds `min_fraction` (1 %): the data then show, beyond chance, that Square
breaks more than 1 % of what the gradient attacks left. The count keeps one
or two breaks among a handful of points from deciding; the bound keeps a few
breaks among many points (that model's 1 of 459) from deciding.
"""

import math

#: The defaults of the rule (see the module docstring).
MIN_COUNT = 3
MIN_FRACTION = 0.01
Z_95 = 1.6448536269514722


def wilson_lower_bound(successes, trials, z=Z_95):
    """The Wilson score lower confidence bound of a binomial proportion.

    Args:
        successes: the number of successes k, 0 <= k <= trials.
        trials: the number of trials n (0 gives 0.0).
        z: the normal quantile of the one-sided confidence level. Defaults
            to 1.645 (95 %).

    Returns:
        A float in [0, 1].

    Examples:
        >>> round(wilson_lower_bound(1, 459), 5)
        0.00049
        >>> round(wilson_lower_bound(40, 100), 3)
        0.323
    """
    if trials <= 0:
        return 0.0
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, (centre - spread) / (1 + z2 / trials))


def gradient_masking(square_only_broken, attacked, *, min_count=MIN_COUNT,
                     min_fraction=MIN_FRACTION, z=Z_95):
    """Whether Square's breaks after the gradient attacks indicate masking.

    Args:
        square_only_broken: examples Square broke that every gradient attack
            before it left robust.
        attacked: the examples Square attacked (those left robust).
        min_count: the fewest such breaks that can indicate masking.
            Defaults to 3.
        min_fraction: the fraction of the attacked examples that the
            lower confidence bound must exceed. Defaults to 0.01.
        z: the normal quantile of the bound's one-sided confidence level.
            Defaults to 1.645 (95 %).

    Returns:
        True when `square_only_broken >= min_count` and
        `wilson_lower_bound(square_only_broken, attacked, z) > min_fraction`.

    Examples:
        >>> gradient_masking(1, 459, min_count=3, min_fraction=0.01)
        False
        >>> gradient_masking(12, 100, min_count=3, min_fraction=0.01)
        True
    """
    return (square_only_broken >= min_count
            and wilson_lower_bound(square_only_broken, attacked, z) > min_fraction)


def square_only_summary(report):
    """What the programs print about Square's breaks after the gradient attacks.

    Args:
        report: an `evaluate_robustness` report.

    Returns:
        `None` when Square broke nothing the gradient attacks left robust
        (or did not run after them), else `(kind, text)`: kind `"warning"`
        when `report["gradient_masking"]`, `"note"` otherwise.

    Examples:
        >>> square_only_summary({"square_only_broken": 1, "gradient_masking": False,
        ...                      "attacks": [{"name": "square", "num_attacked": 459}]})
        ('note', 'Square alone broke 1 of the 459 examples the gradient attacks left robust: within chance, not a sign of gradient masking')
    """
    broken = report.get("square_only_broken")
    if not broken:
        return None
    attacked = next(entry["num_attacked"] for entry in report["attacks"]
                    if entry["name"] == "square")
    text = (f"Square alone broke {broken} of the {attacked} examples the gradient attacks "
            "left robust: ")
    if report.get("gradient_masking"):
        return "warning", text + ("more than chance, a sign of gradient masking (the "
                                  "gradient attacks' robust accuracy overstates robustness)")
    return "note", text + "within chance, not a sign of gradient masking"
