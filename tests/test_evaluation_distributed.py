"""The evaluation engine under a MirroredStrategy of 2 logical CPU devices (in a
subprocess: devices must be configured before TensorFlow starts)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]),
       "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}

SCRIPT = textwrap.dedent("""
    import json
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import zerograd_tf as zg
    from zerograd_tf import attacks
    from test_evaluation_engine import EPS, pinned_problem

    replicas_seen = set()
    for name in ("pgd", "apgd", "square"):
        def recording(objective, x, *args, _attack=getattr(attacks, name), **kwargs):
            context = tf.distribute.get_replica_context()
            replicas_seen.add(0 if context is None else context.num_replicas_in_sync)
            return _attack(objective, x, *args, **kwargs)
        setattr(attacks, name, recording)

    model, x, y = pinned_problem()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    settings = dict(steps=3, restarts=2, apgd_steps=6, apgd_targets=2, square_queries=20,
                    batch_size=16, seed=1)
    out = {}
    for attack in ("pgd", "pgd,apgd-ce,apgd-t,square"):
        for where, kwargs in (("single", {}), ("mirrored", {"strategy": strategy})):
            report = zg.evaluate_robustness(model, (x, y), EPS, attack=attack.split(","),
                                            **settings, **kwargs)
            out[f"{attack}/{where}"] = report
    out["replicas_seen"] = sorted(replicas_seen)
    print(json.dumps(out, default=float))
""")


@pytest.mark.slow
def test_mirrored_evaluation_spreads_batches_and_equals_one_device():
    process = subprocess.run([sys.executable, "-c", SCRIPT], env=ENV, capture_output=True,
                             text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    out = json.loads(process.stdout.strip().splitlines()[-1])
    # 53 correctly classified examples in batches of 16: three batches split
    # over both replicas, the remainder of 5 on one device.
    assert out["replicas_seen"] == [1, 2]
    single, mirrored = out["pgd/single"], out["pgd/mirrored"]
    assert mirrored["num_robust_correct"] == single["num_robust_correct"]
    assert mirrored["robust_loss"] == pytest.approx(single["robust_loss"], rel=1e-5)
    composed_single = out["pgd,apgd-ce,apgd-t,square/single"]
    composed = out["pgd,apgd-ce,apgd-t,square/mirrored"]
    assert composed["num_clean_correct"] == composed_single["num_clean_correct"] == 53
    assert composed["attacks"][0]["num_broken"] == single["attacks"][0]["num_broken"]
    assert [e["name"] for e in composed["attacks"]] == ["pgd", "apgd-ce", "apgd-t", "square"]
    for entry, before in zip(composed["attacks"][1:], composed["attacks"]):
        assert entry["num_attacked"] == before["num_attacked"] - before["num_broken"]
    assert composed["num_robust_correct"] <= mirrored["num_robust_correct"]
    # Every attack draws its random numbers for the whole batch on each
    # replica and keeps its slice: the number does not depend on the replicas.
    for entry, alone in zip(composed["attacks"], composed_single["attacks"]):
        assert (entry["name"], entry["num_broken"]) == (alone["name"], alone["num_broken"])
    assert composed["robust_loss"] == pytest.approx(composed_single["robust_loss"], rel=1e-5)
