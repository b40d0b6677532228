"""Robust evaluation benchmark: our attacks against ART's AutoAttack.

    python benchmarks/robust_eval.py                       # all models, ART included
    python benchmarks/robust_eval.py --models mnist_zerograd_q0.7 --no-art

Trains (or loads from `--models-dir`) the models of the CO study's recipes
at seed 0 - on MNIST (Setting A: small_cnn, epsilon 0.25) FGSM-RS, ZeroGrad
q = 0.7, N-FGSM and PGD-10 training, on the CIFAR-10 subset (Setting B:
conv3, epsilon 16/255) ZeroGrad q = 0.5 - and evaluates each on the same
first `--size` test (MNIST) or held-out (CIFAR-10) examples with our
PGD-50-10, each of our attacks alone, our AutoAttack (APGD-CE, APGD-T,
Square) and, unless `--no-art`, the Adversarial Robustness Toolbox's
AutoAttack (an optional benchmark dependency:
`pip install adversarial-robustness-toolbox==1.20.1`).

Results go to `--results` (JSON), one entry per (model, evaluation), each
with its machine, date and versions; finished entries are kept, so a killed
run resumes. The README's table is printed at the end (`--table` prints it
without running anything).
"""

import argparse
import json
import os
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

import zerograd_tf as zg  # noqa: E402
from zerograd_tf import io_utils  # noqa: E402
from zerograd_tf.runs import pipeline  # noqa: E402
from zerograd_tf.benchmarking.machine import machine_record  # noqa: E402
from zerograd_tf.benchmarking.study_plan import StudyPlan  # noqa: E402

tf.get_logger().setLevel("ERROR")

SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))
# The settings of the first CO study, which these models reproduce.
PLAN = os.path.join(HERE, "studies", "co_study_v1.json")
MODELS = {
    "mnist_fgsm_rs": ("mnist", "fgsm_rs"),
    "mnist_zerograd_q0.7": ("mnist", "zerograd_q0.7"),
    "mnist_n_fgsm": ("mnist", "n_fgsm"),
    "mnist_pgd10": ("mnist", "pgd10"),
    "cifar10_zerograd_q0.5": ("cifar10", "zerograd_q0.5"),
}
# Our evaluations: (name, evaluate_robustness keyword arguments).
OURS = {
    "pgd50_10": {"attack": "pgd", "steps": 50, "restarts": 10},
    "apgd_ce": {"attack": "apgd-ce"},
    "apgd_dlr": {"attack": "apgd-dlr"},
    "apgd_t": {"attack": "apgd-t"},
    "square": {"attack": "square"},
    "autoattack": {"attack": "autoattack"},
}
# The versions each entry records.
PACKAGES = ("tensorflow", "keras", "adversarial-robustness-toolbox")
COLUMNS = ["pgd50_10", "apgd_ce", "apgd_dlr", "apgd_t", "square", "autoattack", "art_autoattack"]


def load_setting(plan, setting, data_dir, size):
    """The setting's data and the first `size` examples of its monitored split."""
    data = plan.load_data(setting, plan.dataset_path(setting, data_dir))
    (x, y), _ = plan.monitor_and_evaluation(setting, data, monitor_size=size)
    return data, x, y


def trained_model(plan, name, data, models_dir):
    """The model of `name`: loaded from `models_dir`, or trained and saved there."""
    setting, method = MODELS[name]
    config = plan.run_config(setting, method, 0, data)
    keras.backend.clear_session()
    model = pipeline.build_model(config, data)
    model.build((None, *data.input_shape))
    path = os.path.join(models_dir, f"{name}.weights.h5")
    if os.path.exists(path):
        model.load_weights(path)
        return model, config
    print(f"robust_eval: training {name} ({setting}, {method}, seed 0)", flush=True)
    pipeline.fit(model, config, data, verbose=2)
    os.makedirs(models_dir, exist_ok=True)
    model.save_weights(path)
    return model, config


def art_autoattack(model, x, y, epsilon, batch_size):
    """ART's AutoAttack (its default attacks) on the model's classifier."""
    from art.attacks.evasion import AutoAttack
    from art.estimators.classification import TensorFlowV2Classifier

    classifier = model.classifier
    estimator = TensorFlowV2Classifier(
        classifier, nb_classes=int(classifier.output_shape[-1]),
        input_shape=tuple(x.shape[1:]), clip_values=(0.0, 1.0),
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    attack = AutoAttack(estimator, norm=np.inf, eps=epsilon, eps_step=epsilon / 4,
                        batch_size=batch_size)
    started = time.perf_counter()
    x_adv = attack.generate(x, y=np.eye(estimator.nb_classes)[y])
    seconds = time.perf_counter() - started
    assert np.abs(x_adv - x).max() <= epsilon + 1e-5
    predictions = classifier.predict(x_adv, batch_size=256, verbose=0).argmax(1)
    clean = classifier.predict(x, batch_size=256, verbose=0).argmax(1) == y
    return {"robust_accuracy": float(np.mean((predictions == y) & clean)),
            "clean_accuracy": float(clean.mean()), "seconds": seconds}


def load_results(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"entries": []}


def table(results):
    """The README table: robust accuracy (and seconds) per model and evaluation."""
    by_model = {}
    for entry in results["entries"]:
        by_model.setdefault(entry["model"], {})[entry["evaluation"]] = entry
    header = ("| model | clean | " + " | ".join(COLUMNS)
              + " | ours ≤ ART + 0.5 pt | ART s / ours s |")
    lines = [header, "|" + " --- |" * (len(COLUMNS) + 4)]
    for name in MODELS:
        row = by_model.get(name)
        if not row:
            continue
        clean = next(iter(row.values()))["clean_accuracy"]
        cells = []
        for column in COLUMNS:
            entry = row.get(column)
            cells.append("–" if entry is None else
                         f"{entry['robust_accuracy']:.3f} ({entry['seconds']:.0f} s)")
        ours, art = row.get("autoattack"), row.get("art_autoattack")
        if ours and art:
            met = ours["robust_accuracy"] <= art["robust_accuracy"] + 0.005
            speed = f"{art['seconds'] / ours['seconds']:.1f}×"
            verdict = "met" if met else "**missed**"
        else:
            speed = verdict = "–"
        lines.append(f"| {name} | {clean:.3f} | " + " | ".join(cells)
                     + f" | {verdict} | {speed} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--evaluations", nargs="+", choices=COLUMNS, default=COLUMNS)
    parser.add_argument("--size", type=int, default=500, help="examples evaluated (500)")
    parser.add_argument("--data-dir", default=SHARED)
    parser.add_argument("--results", default=os.path.join(HERE, "results", "robust_eval.json"))
    parser.add_argument("--models-dir", default=os.path.join(HERE, "results", "robust_eval_models"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--no-art", action="store_true", help="skip ART's AutoAttack")
    parser.add_argument("--table", action="store_true", help="print the table and exit")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    if args.table:
        print(table(results))
        return 0
    plan = StudyPlan.from_file(PLAN)
    evaluations = [e for e in args.evaluations if not (args.no_art and e == "art_autoattack")]
    done = {(e["model"], e["evaluation"]) for e in results["entries"]}
    loaded = {}
    for name in args.models:
        todo = [e for e in evaluations if (name, e) not in done]
        if not todo:
            continue
        setting = MODELS[name][0]
        if setting not in loaded:
            loaded[setting] = load_setting(plan, setting, args.data_dir, args.size)
        data, x, y = loaded[setting]
        model, config = trained_model(plan, name, data, args.models_dir)
        epsilon = config.epsilon
        for evaluation in todo:
            print(f"robust_eval: {name}: {evaluation}", flush=True)
            if evaluation == "art_autoattack":
                measured = art_autoattack(model, x, y, epsilon, args.batch_size)
            else:
                report = zg.evaluate_robustness(model, (x, y), epsilon, seed=0,
                                                batch_size=args.batch_size, verbose=1,
                                                **OURS[evaluation])
                measured = {"robust_accuracy": float(report["robust_accuracy"]),
                            "clean_accuracy": float(report["clean_accuracy"]),
                            "seconds": report["seconds"],
                            "attacks": report["attacks"]}
            results["entries"].append({"model": name, "evaluation": evaluation,
                                       "epsilon": epsilon, "num_examples": len(x),
                                       **measured, "machine": machine_record(PACKAGES)})
            io_utils.write_json_atomic(args.results, results)
            print(f"robust_eval: {name}: {evaluation}: robust accuracy "
                  f"{measured['robust_accuracy']:.4f} in {measured['seconds']:.1f} s", flush=True)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
