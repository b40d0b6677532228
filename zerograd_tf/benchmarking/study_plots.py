"""The study's figures (matplotlib, a development dependency)."""

import os
import statistics

from zerograd_tf.benchmarking import study_records


def write_plots(records, results, order=(), plan_methods=None):
    """Per setting: PGD-10 accuracy per epoch for every seed and method
    (`pgd_per_epoch_<setting>.png`), robustness vs cost
    (`robustness_vs_cost_<setting>.png`) and, where a method ran at several
    step sizes, PGD-10 accuracy per epoch with the step size as the variable
    (`step_size_<setting>.png`).

    Args:
        records: run records (`study_records.load_records`).
        results: the folder the figures are written to.
        order: method names in the order of the panels. Defaults to the
            order in which methods first appear in `records`.
        plan_methods: the plan's methods (name → fields), which the
            step-size figure pairs by (`step_size_groups`). Defaults to
            none.

    Returns:
        The paths written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for setting in sorted({r["setting"] for r in records}):
        subset = [r for r in records if r["setting"] == setting]
        order = [*order, *dict.fromkeys(r["method"] for r in subset)]
        methods = [m for m in dict.fromkeys(order) if any(r["method"] == m for r in subset)]
        columns = min(3, len(methods))
        rows = -(-len(methods) // columns)
        # At least 7 × 4 inches: the title and the axis label of one panel fit.
        fig, axes = plt.subplots(rows, columns, figsize=(max(4 * columns, 7), max(3 * rows, 4)),
                                 squeeze=False, sharey=True)
        for ax, method in zip(axes.flat, methods):
            for r in [r for r in subset if r["method"] == method]:
                epochs = [e["epoch"] for e in r["epochs"]]
                line, = ax.plot(epochs, [e["pgd_accuracy"] for e in r["epochs"]],
                                label=f"seed {r['seed']}")
                ax.plot(epochs, [e["fgsm_accuracy"] for e in r["epochs"]], ls=":",
                        color=line.get_color(), alpha=0.6)
            ax.set_title(method)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        for ax in axes[:, 0]:
            ax.set_ylabel("accuracy (PGD-10 solid, FGSM dotted)")
        for ax in list(axes.flat)[len(methods):]:
            ax.axis("off")
        fig.suptitle(f"{setting}: validation accuracy per epoch, every seed")
        fig.tight_layout()
        path = os.path.join(results, f"pgd_per_epoch_{setting}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)

        base = [r["mean_epoch_seconds"] for r in subset if r["method"] == "fgsm_rs"]
        base_time = statistics.median(base) if base else 1.0
        fig, ax = plt.subplots(figsize=(6, 4))
        for method in methods:
            runs = [study_records.run_row(r) for r in subset if r["method"] == method]
            cost = statistics.median(r["mean_epoch_seconds"] for r in runs) / base_time
            accs = [r["final_worst_case_accuracy"] for r in runs]
            if None in accs:  # a run without the AutoAttack evaluation
                accs = [r["final_pgd50_10_accuracy"] for r in runs]
            std = statistics.stdev(accs) if len(accs) > 1 else 0.0
            ax.errorbar(cost, statistics.fmean(accs), yerr=std, fmt="o", capsize=3)
            ax.annotate(method, (cost, statistics.fmean(accs)), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
        ax.set_xlabel("cost per epoch (× FGSM-RS)" if base else "seconds per epoch")
        ax.set_ylabel("final worst-case accuracy (AutoAttack + PGD-50-10)")
        ax.set_title(f"{setting}: robustness vs cost (mean ± std over seeds)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = os.path.join(results, f"robustness_vs_cost_{setting}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
        path = os.path.join(results, f"step_size_{setting}.png")
        if write_step_size_plot(subset, path, setting, plan_methods):
            paths.append(path)
    return paths


# The fields a plan's method may set and still be one method at another
# step size; a variant with any other field (early stopping, a CO monitor)
# is another method.
_STEP_SIZE_FIELDS = {"method", "quantile", "alpha"}


def step_size_groups(records, methods=None):
    """Runs of the same method and fixed quantile at several step sizes.

    Args:
        records: run records of one setting.
        methods: the plan's methods (name → fields): when given, only the
            runs of methods that set nothing but the method, its quantile
            and α count. Defaults to every run with a numeric α (and
            quantile).

    Returns:
        dict, `(method, quantile)` → {alpha (a multiple of epsilon) → the
        records}, only for groups with at least two step sizes.

    Example:

    >>> from zerograd_tf.benchmarking.study_plots import step_size_groups
    >>> run = lambda method, alpha: {"config": {"method": method, "quantile": 0.35,
    ...                                         "alpha": alpha}}
    >>> groups = step_size_groups([run("fgsm_rs", 2.0), run("fgsm_rs", 1.25),
    ...                            run("n_fgsm", 1.0)])
    >>> {key: sorted(value) for key, value in groups.items()}
    {('fgsm_rs', None): [1.25, 2.0]}
    """
    groups = {}
    for r in records:
        if methods is not None and (r["method"] not in methods
                                    or set(methods[r["method"]]) - _STEP_SIZE_FIELDS):
            continue
        config = r["config"]
        quantile = config.get("quantile") if "zerograd" in config["method"] else None
        if not all(isinstance(v, (int, float)) for v in (config.get("alpha"), quantile or 0)):
            continue  # no alpha recorded, or a quantile that adapts
        groups.setdefault((config["method"], quantile), {}).setdefault(
            config.get("alpha"), []).append(r)
    return {key: alphas for key, alphas in groups.items() if len(alphas) > 1}


def write_step_size_plot(records, path, title, methods=None):
    """PGD-10 accuracy per epoch (mean over seeds, the band from the lowest
    to the highest seed) with the step size as the variable, one panel per
    method and quantile; nothing is written when no method ran at two step
    sizes.

    Args:
        records: run records of one setting.
        path: the PNG file to write.
        title: the figure's title (the setting).
        methods: the plan's methods, as for `step_size_groups`. Defaults
            to none.

    Returns:
        Whether the figure was written.
    """
    groups = step_size_groups(records, methods)
    if not groups:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.2), squeeze=False,
                             sharey=True)
    for ax, ((method, quantile), alphas) in zip(axes.flat, sorted(groups.items(),
                                                                 key=lambda g: str(g[0]))):
        for alpha, runs in sorted(alphas.items()):
            length = min(len(r["epochs"]) for r in runs)
            curves = [[e["pgd_accuracy"] for e in r["epochs"][:length]] for r in runs]
            epochs = range(1, length + 1)
            mean = [statistics.fmean(values) for values in zip(*curves)]
            seeds = f"{len(runs)} seed" + ("s" if len(runs) != 1 else "")
            line, = ax.plot(epochs, mean, label=f"α = {alpha:g} ε ({seeds})")
            ax.fill_between(epochs, [min(v) for v in zip(*curves)],
                            [max(v) for v in zip(*curves)], color=line.get_color(), alpha=0.15)
        ax.set_title(method + (f" q = {quantile:g}" if quantile is not None else ""))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("PGD-10 accuracy")
    fig.suptitle(f"{title}: PGD-10 accuracy per epoch with the step size as the variable "
                 "(mean over seeds; band: lowest to highest seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
