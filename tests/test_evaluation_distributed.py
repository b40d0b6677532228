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
    # (The loss too, here; APGD stops a batch once all of it is fooled, so
    # where one replica's share gets there first, the loss may move.)
    for entry, alone in zip(composed["attacks"], composed_single["attacks"]):
        assert (entry["name"], entry["num_broken"]) == (alone["name"], alone["num_broken"])
    assert composed["robust_loss"] == pytest.approx(composed_single["robust_loss"], rel=1e-5)


DRAWS = textwrap.dedent("""
    import json
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from zerograd_tf.attacks import ops

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    seed = tf.constant([7, 1], tf.int64)
    out = {}
    # (local shape, batch axis, one-device shape, axis the replicas' slices join on)
    cases = {"axis0": (lambda: [3, 4], 0, [6, 4], 0),
             "axis1": (lambda: (2, 3, 5), 1, [2, 6, 5], 1),
             "axis-1": (lambda: [2, 3], -1, [2, 6], 1),
             "tensors": (lambda: [tf.constant(3), 1, tf.constant(2, tf.int64)], 0, [6, 1, 2], 0),
             "tensor": (lambda: tf.constant([3, 2], tf.int64), 0, [6, 2], 0)}
    for name, (local, axis, whole, join) in cases.items():
        @tf.function
        def draw(local=local, axis=axis):
            return ops.replica_uniform(local(), seed, -1.0, 1.0, batch_axis=axis)
        parts = strategy.experimental_local_results(strategy.run(draw))
        alone = tf.random.stateless_uniform(whole, seed, -1.0, 1.0)
        out[name] = bool(tf.reduce_all(tf.concat(parts, join) == alone))
    try:
        strategy.run(tf.function(lambda: ops.replica_uniform([3, 2], seed, batch_axis=2)))
        out["bad axis"] = "accepted"
    except ValueError as error:
        out["bad axis"] = str(error)
    print(json.dumps(out))
""")


def test_replica_uniform_draws_under_a_strategy_what_one_device_draws():
    process = subprocess.run([sys.executable, "-c", DRAWS], env=ENV, capture_output=True,
                             text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    out = json.loads(process.stdout.strip().splitlines()[-1])
    assert "`batch_axis` must be in [-2, 2), got 2." in out.pop("bad axis")
    assert out == {"axis0": True, "axis1": True, "axis-1": True, "tensors": True, "tensor": True}
