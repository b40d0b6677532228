"""Training-step time of this package against PyTorch, side by side.

    pip install torch==2.13.0          # optional benchmark dependency (CPU build)
    python benchmarks/vs_pytorch.py                      # both networks, every method
    python benchmarks/vs_pytorch.py --networks cnn3 --rounds 5 --steps 3
    python benchmarks/vs_pytorch.py --precisions float32     # float32 only

The same networks (a 3-conv CNN: conv 32-64-128, 3x3, ReLU, 2x2 max pooling
after each, dense logits; and PreAct ResNet-18), the same batch (128 random
32x32x3 images in [0, 1], 10 classes), SGD with momentum 0.9 and the same
steps: clean training, FGSM-RS (alpha = 1.25 eps), ZeroGrad (q = 0.35,
alpha = 2 eps, `torch.quantile` in PyTorch) and MultiGrad (n = 3, unanimous;
the 3-conv CNN only), all at eps = 8/255 with the attack in training mode as
the reference implementations do. "attack" rows time the FGSM-RS input-
gradient pass alone (one forward, one backward to the input). This package
runs in graph mode (`jit_compile=False`), PyTorch eagerly (as the reference
code does), with `torch.set_num_threads(os.cpu_count())`. The two
frameworks run interleaved, round by round, in one process, so that both
see the same machine; each number is the median over rounds of the mean of
`--steps` steps.

Precisions (`--precisions`, every one interleaved in the same rounds): in
float32 both frameworks run as above. In bfloat16 this package runs
`mixed_bfloat16` (the Keras dtype policy: bfloat16 compute, float32
variables, inputs, perturbation and logits), PyTorch its best CPU setting:
`torch.autocast("cpu", dtype=torch.bfloat16)` around the forward pass and
the loss, timed both with the model and inputs in the default NCHW layout
and in `channels_last` (`--torch-layouts`); the faster of the two per
method is "PyTorch's best bfloat16", and the report records which. Step
times are stored under `FRAMEWORK/METHOD` for float32 (the keys of results
written before there were precisions) and `FRAMEWORK/METHOD@SETTING` for the
others: `tf/zerograd@mixed_bfloat16`, `torch/zerograd@bfloat16` (NCHW),
`torch/zerograd@bfloat16_channels_last`.

Writes `benchmarks/results/vs_pytorch.json` (with the machine, date and
versions) and prints the Markdown table (`--table`: print it from the file).
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

# A program's own environment, before TensorFlow is imported (user values kept).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zerograd_tf import architectures, dtype_policies, io_utils  # noqa: E402
from zerograd_tf.benchmarking import step_cost  # noqa: E402
from zerograd_tf.benchmarking.machine import machine_record  # noqa: E402
from zerograd_tf.benchmarking.vs_pytorch_report import (  # noqa: E402
    METHODS, PRECISIONS, TORCH_LAYOUTS, key, table, targets, torch_best_bf16, torch_settings)

tf.get_logger().setLevel("ERROR")
EPSILON = 8 / 255
BATCH = 128
SHAPE = (32, 32, 3)
CLASSES = 10
NETWORKS = ("cnn3", "preact_resnet18")
# MultiGrad on ResNet-18 takes minutes per round on a 2-core CPU; the issue's
# comparison has it on the small network only.
SKIP = {("preact_resnet18", "multigrad")}
RESULTS = os.path.join(HERE, "results", "vs_pytorch.json")


# ----------------------------------------------------------------------
# This package.
# ----------------------------------------------------------------------
def keras_cnn3():
    inputs = keras.Input(SHAPE)
    x = keras.layers.Normalization(mean=[0.5] * 3, variance=[0.25] * 3)(inputs)
    for filters in (32, 64, 128):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    # Named `logits`: under a mixed policy `with_dtype_policy` keeps it float32.
    return keras.Model(inputs, keras.layers.Dense(CLASSES, dtype="float32", name="logits")(x))


def keras_network(name, precision="float32"):
    """The network, with `precision`'s dtype policy (float32 logits)."""
    network = keras_cnn3() if name == "cnn3" else architectures.preact_resnet18(SHAPE, CLASSES)
    return dtype_policies.with_dtype_policy(network, precision)


# The step-cost method of each row: "attack" is the FGSM-RS model's attack
# alone, ZeroGrad is the default (q = 0.35, bisection), MultiGrad has 3 samples.
STEP_COST_METHOD = {"clean": "clean", "attack": "fgsm_rs", "fgsm_rs": "fgsm_rs",
                    "zerograd": "zerograd_bisect", "multigrad": "multigrad3"}


def keras_model(network, method, precision="float32"):
    # Graph mode and no metrics: the reference implementations compute none.
    return step_cost.compiled_model(STEP_COST_METHOD[method],
                                    keras_network(network, precision), jit=False,
                                    epsilon=EPSILON, metrics=None, precision=precision)


def keras_runner(network, method, x, y, precision="float32"):
    keras.utils.set_random_seed(0)
    model = keras_model(network, method, precision)
    if method == "attack":
        model.build((None, *SHAPE))
        seed = tf.constant([0, 0], tf.int64)
        attack = tf.function(
            lambda xb, yb: model.perturb(xb, yb, seed, model.read_hyperparameters())[0])
        xt, yt = tf.constant(x), tf.constant(y)
        return lambda: attack(xt, yt).numpy()
    return step_cost.train_step_runner(model, len(x), SHAPE, CLASSES, data=(x, y))


# ----------------------------------------------------------------------
# PyTorch: the reference implementations' steps.
# ----------------------------------------------------------------------
def torch_network(name):
    import torch
    from torch import nn

    class Normalize(nn.Module):
        def forward(self, x):
            return (x - 0.5) / 0.5

    if name == "cnn3":
        layers, channels = [Normalize()], 3
        for filters in (32, 64, 128):
            layers += [nn.Conv2d(channels, filters, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            channels = filters
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(128 * 4 * 4, CLASSES))

    class PreActBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.bn1, self.bn2 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.shortcut = (nn.Conv2d(cin, cout, 1, stride, bias=False)
                             if stride != 1 or cin != cout else None)

        def forward(self, x):
            out = torch.relu(self.bn1(x))
            shortcut = self.shortcut(out) if self.shortcut is not None else x
            out = self.conv1(out)
            out = self.conv2(torch.relu(self.bn2(out)))
            return out + shortcut

    blocks, cin = [], 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        blocks += [PreActBlock(cin, cout, stride), PreActBlock(cout, cout, 1)]
        cin = cout
    return nn.Sequential(Normalize(), nn.Conv2d(3, 64, 3, 1, 1, bias=False), *blocks,
                         nn.BatchNorm2d(512), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(512, CLASSES))


def torch_runner(network, method, x, y, setting="float32"):
    """One PyTorch step; `setting` is `"float32"` (NCHW, no autocast, as the
    reference code), `"bfloat16"` (bfloat16 autocast around the forward pass
    and the loss) or `"bfloat16_channels_last"` (the same with the model and
    the inputs in `channels_last`). Parameters, inputs, perturbation and
    gradients stay float32 in every one."""
    import torch
    import torch.nn.functional as F

    if setting not in ("float32", "bfloat16", "bfloat16_channels_last"):
        raise ValueError(f"unknown PyTorch setting {setting!r}")
    torch.manual_seed(0)
    model = torch_network(network).train()
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    if setting.endswith("_channels_last"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    y = torch.from_numpy(y.astype(np.int64))
    eps = EPSILON

    def autocast():
        if setting == "float32":
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=torch.bfloat16)

    def forward_loss(inputs):
        with autocast():
            return F.cross_entropy(model(inputs), y)

    def input_gradient(delta):
        delta.requires_grad_(True)
        loss = forward_loss(x + delta)
        return torch.autograd.grad(loss, delta)[0]

    def random_start():
        delta = torch.empty_like(x).uniform_(-eps, eps)
        return (torch.clamp(x + delta, 0, 1) - x)

    def fgsm_rs(alpha=1.25 * eps, quantile=None):
        delta = random_start()
        grad = input_gradient(delta)
        if quantile is not None:  # ZeroGrad's per-example mask
            # `reshape`, not `view`: a channels_last gradient has no flat view.
            magnitude = grad.abs().reshape(len(x), -1)
            threshold = torch.quantile(magnitude, quantile, dim=1, keepdim=True)
            grad = torch.where(magnitude < threshold, torch.zeros_like(magnitude),
                               grad.reshape(len(x), -1)).reshape(grad.shape)
        delta = torch.clamp(delta.detach() + alpha * grad.sign(), -eps, eps)
        return torch.clamp(x + delta, 0, 1)

    def multigrad(samples=3, alpha=2 * eps):
        total = torch.zeros_like(x)
        for _ in range(samples):
            total += input_gradient(random_start()).sign()
        keep = total.abs() >= samples  # unanimous: |s| >= 2 th - n with th = n
        delta = torch.clamp(alpha * total.sign() * keep, -eps, eps)
        return torch.clamp(x + delta, 0, 1)

    inputs = {
        "clean": lambda: x,
        "fgsm_rs": fgsm_rs,
        "zerograd": lambda: fgsm_rs(alpha=2 * eps, quantile=0.35),
        "multigrad": multigrad,
    }

    if method == "attack":
        return lambda: fgsm_rs().sum().item()

    def step():
        adversarial = inputs[method]().detach()
        optimizer.zero_grad(set_to_none=True)
        loss = forward_loss(adversarial)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


# ----------------------------------------------------------------------
def measure(network, methods, rounds, steps, warmup, frameworks, progress=print,
            precisions=("float32",), torch_layouts=TORCH_LAYOUTS):
    """Median over rounds of the mean step time (ms), per `key(framework,
    method, setting)`: every precision of both frameworks interleaved."""
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, *SHAPE), dtype=np.float32)
    y = rng.integers(0, CLASSES, BATCH).astype(np.int32)
    runners = {}
    for m in methods:
        for precision in precisions:
            for f in frameworks:
                if f == "tf":
                    runners[key(f, m, precision)] = keras_runner(network, m, x, y, precision)
                else:
                    for setting in torch_settings(precision, torch_layouts):
                        runners[key(f, m, setting)] = torch_runner(network, m, x, y, setting)
    for run in runners.values():
        for _ in range(warmup):
            run()
    samples = {name: [] for name in runners}
    for r in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            for _ in range(steps):
                run()
            samples[name].append(1e3 * (time.perf_counter() - start) / steps)
        progress(f"vs_pytorch: {network} round {r + 1}/{rounds}")
    return {k: statistics.median(v) for k, v in samples.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--frameworks", nargs="+", default=["tf", "torch"],
                        choices=["tf", "torch"])
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS),
                        choices=PRECISIONS,
                        help="our Keras dtype policies, each timed against PyTorch's "
                             "counterpart in the same rounds (default: float32 "
                             "mixed_bfloat16)")
    parser.add_argument("--torch-layouts", nargs="+", default=list(TORCH_LAYOUTS),
                        choices=TORCH_LAYOUTS,
                        help="memory layouts PyTorch's bfloat16 autocast is timed in; the "
                             "faster per method is its best (default: both)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--output", default=RESULTS)
    parser.add_argument("--table", action="store_true", help="print the table of --output")
    args = parser.parse_args(argv)
    if args.table:
        with open(args.output) as f:
            print(table(json.load(f)))
        return 0
    if "torch" in args.frameworks:
        try:
            import torch
        except ImportError:
            parser.error("PyTorch is an optional benchmark dependency: pip install "
                         "torch==2.13.0 (or --frameworks tf)")
        torch.set_num_threads(os.cpu_count())
    precisions = list(dict.fromkeys(args.precisions))
    report = {"batch_size": BATCH, "epsilon": EPSILON, "rounds": args.rounds,
              "steps_per_round": args.steps, "precisions": precisions,
              "torch_layouts": list(dict.fromkeys(args.torch_layouts)), "entries": []}
    for network in args.networks:
        methods = [m for m in args.methods if (network, m) not in SKIP]
        ms = measure(network, methods, args.rounds, args.steps, args.warmup, args.frameworks,
                     precisions=precisions, torch_layouts=report["torch_layouts"])
        entry = {"network": network, "ms": ms,
                 "machine": machine_record(("tensorflow", "keras", "torch"))}
        if "mixed_bfloat16" in precisions and "torch" in args.frameworks:
            entry["torch_best_bf16"] = torch_best_bf16(ms)
        report["entries"].append(entry)
    report["markdown"] = table(report)
    report["targets"] = [{"target": text, "met": met} for text, met in targets(report)]
    io_utils.write_json_atomic(args.output, report)
    print(report["markdown"])
    for target in report["targets"]:
        print(("met:    " if target["met"] else "missed: ") + target["target"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
