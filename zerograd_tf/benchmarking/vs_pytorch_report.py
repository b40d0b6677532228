"""The side-by-side with PyTorch (`benchmarks/vs_pytorch.py`): its keys, table
and targets, computed from a stored report (no PyTorch needed here)."""

METHODS = ("clean", "attack", "fgsm_rs", "zerograd", "multigrad")
# Our precisions (Keras dtype policies) and the layouts PyTorch's bfloat16
# autocast is timed in.
PRECISIONS = ("float32", "mixed_bfloat16")
TORCH_LAYOUTS = ("nchw", "channels_last")
# The methods of one attack step whose bfloat16 speed-up the issue targets.
SINGLE_STEP = ("fgsm_rs", "zerograd", "multigrad")


def key(framework, method, setting="float32"):
    """The key of one step time in an entry's `ms`: `tf/zerograd` for
    float32 (as in results written before there were precisions),
    `tf/zerograd@mixed_bfloat16`, `torch/zerograd@bfloat16_channels_last`."""
    return f"{framework}/{method}" + ("" if setting == "float32" else f"@{setting}")


def torch_settings(precision, layouts=TORCH_LAYOUTS):
    """PyTorch's settings timed against our `precision`: float32 as the
    reference code runs (NCHW, no autocast); bfloat16 autocast per layout."""
    if precision == "float32":
        return ["float32"]
    return ["bfloat16" if layout == "nchw" else "bfloat16_channels_last"
            for layout in layouts]


def torch_best_bf16(ms):
    """`{method: setting}`: PyTorch's faster bfloat16 setting per method."""
    best = {}
    for method in METHODS:
        timed = [s for s in torch_settings("mixed_bfloat16") if key("torch", method, s) in ms]
        if timed:
            best[method] = min(timed, key=lambda s: ms[key("torch", method, s)])
    return best


# How the table names PyTorch's settings.
TORCH_SETTING_TEXT = {"float32": "float32", "bfloat16": "bf16 autocast, NCHW",
                      "bfloat16_channels_last": "bf16 autocast, channels_last"}


def _theirs(entry, method, precision):
    """PyTorch's (setting, ms) against our `precision`, or None."""
    ms = entry["ms"]
    if precision == "float32":
        setting = "float32"
    else:
        setting = entry.get("torch_best_bf16", torch_best_bf16(ms)).get(method)
    if setting is None or key("torch", method, setting) not in ms:
        return None
    return setting, ms[key("torch", method, setting)]


def table(report):
    """One row per network, method and precision: our step, its ratio to
    our float32 step, and PyTorch's (its best bfloat16 setting against
    mixed_bfloat16)."""
    lines = ["| network | method | precision | this package (ms) | × float32 | PyTorch (ms) "
             "| PyTorch setting | faster by |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for entry in report["entries"]:
        ms = entry["ms"]
        for method in METHODS:
            for precision in PRECISIONS:
                ours = ms.get(key("tf", method, precision))
                if ours is None:
                    continue
                float32 = ms.get(key("tf", method))
                ratio32 = (f"{ours / float32:.2f}" if float32 and precision != "float32"
                           else "–")
                theirs = _theirs(entry, method, precision)
                cells = [entry["network"], method, precision, f"{ours:.1f}", ratio32]
                if theirs:
                    setting, value = theirs
                    cells += [f"{value:.1f}", TORCH_SETTING_TEXT[setting],
                              f"{value / ours:.2f}×"]
                else:
                    cells += ["–", "–", "–"]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(report):
    """The step-cost targets this benchmark decides, as (text, met) pairs:
    in float32, ours faster than PyTorch by 1.2× and ResNet-18's FGSM-RS step
    at most 1.55× the clean one; in bfloat16 (where measured), each
    single-step method's step at least 3× faster than its float32 step, ours
    at least 2× faster than PyTorch's best bfloat16 setting, and ZeroGrad's
    step at most 1.05× FGSM-RS's."""
    found = []
    bf16 = "mixed_bfloat16"
    for entry in report["entries"]:
        ms, network = entry["ms"], entry["network"]
        for method in METHODS:
            if method == "attack" or f"tf/{method}" not in ms or f"torch/{method}" not in ms:
                continue
            ratio = ms[f"torch/{method}"] / ms[f"tf/{method}"]
            found.append((f"{network} {method}: {ratio:.2f}× faster than PyTorch (target "
                          "1.20×)", ratio >= 1.2))
        if network == "preact_resnet18" and {"tf/fgsm_rs", "tf/clean"} <= set(ms):
            ratio = ms["tf/fgsm_rs"] / ms["tf/clean"]
            found.append((f"{network}: FGSM-RS step {ratio:.2f}× the clean step (target "
                          "1.55×)", ratio <= 1.55))
        for method in SINGLE_STEP:
            float32, low = ms.get(key("tf", method)), ms.get(key("tf", method, bf16))
            if float32 and low:
                ratio = float32 / low
                found.append((f"{network} {method}: {bf16} step {ratio:.2f}× faster than "
                              "float32 (target 3.00×)", ratio >= 3.0))
        for method in METHODS:
            ours = ms.get(key("tf", method, bf16))
            theirs = _theirs(entry, method, bf16)
            if method == "attack" or not ours or not theirs:
                continue
            ratio = theirs[1] / ours
            found.append((f"{network} {method}: {bf16} {ratio:.2f}× faster than PyTorch's best "
                          f"bfloat16 ({TORCH_SETTING_TEXT[theirs[0]]}) (target 2.00×)",
                          ratio >= 2.0))
        if {key("tf", "zerograd", bf16), key("tf", "fgsm_rs", bf16)} <= set(ms):
            ratio = ms[key("tf", "zerograd", bf16)] / ms[key("tf", "fgsm_rs", bf16)]
            found.append((f"{network}: ZeroGrad step {ratio:.2f}× the FGSM-RS step in {bf16} "
                          "(target at most 1.05×)", ratio <= 1.05))
    return found
