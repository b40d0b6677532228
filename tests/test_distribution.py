"""tf.distribute: 2 logical CPU replicas and two local workers (in subprocesses,
since devices and collectives must be configured before TensorFlow starts)."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import make_npz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT, "KERAS_BACKEND": "tensorflow",
       "TF_CPP_MIN_LOG_LEVEL": "3"}

MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    import zerograd_tf as zg

    # argv: graph|jit, then CLASS[:POLICY] runs, each printed as one JSON line.
    JIT = sys.argv[1] == "jit"
    rng = np.random.default_rng(0)
    x = rng.random((32, 6, 6, 1)).astype("float32")
    y = rng.integers(0, 3, 32)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def build(cls, policy):
        inputs = keras.Input((6, 6, 1))
        h = keras.layers.Flatten(dtype=policy)(inputs)
        h = keras.layers.Dense(16, activation="relu", dtype=policy)(h)
        extra = {"samples": 2} if cls == "MultiGradModel" else {}
        logits = keras.layers.Dense(3, dtype="float32")(h)
        model = getattr(zg, cls)(inputs, logits, epsilon=0.1, seed=3,
                                 validation_pgd_steps=2, dtype=policy, **extra)
        model.compile(optimizer=keras.optimizers.SGD(0.5),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], jit_compile=JIT)
        return model

    def compare(cls, policy):
        keras.utils.set_random_seed(0)
        single = build(cls, policy)
        initial = single.get_weights()
        logs_single = single.fit(x, y, batch_size=16, epochs=1, shuffle=False,
                                 verbose=0).history
        report_single = zg.evaluate_robustness(single, (x, y), 0.1, steps=3, restarts=2,
                                               batch_size=16)
        with strategy.scope():
            mirrored = build(cls, policy)
            mirrored.set_weights(initial)
        logs_mirrored = mirrored.fit(x, y, batch_size=16, epochs=1, shuffle=False,
                                     verbose=0).history
        with strategy.scope():
            report_mirrored = zg.evaluate_robustness(mirrored, (x, y), 0.1, steps=3,
                                                     restarts=2, batch_size=16)
        report_explicit = zg.evaluate_robustness(single, (x, y), 0.1, steps=3, restarts=2,
                                                 batch_size=16, strategy=strategy)
        eval_single = single.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
        eval_mirrored = mirrored.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
        predict_diff = float(np.abs(single.predict(x, batch_size=16, verbose=0)
                                    - mirrored.predict(x, batch_size=16, verbose=0)).max())
        diff = max(float(np.abs(a - b).max()) for a, b in
                   zip(single.get_weights(), mirrored.get_weights()))
        changed = max(float(np.abs(a - b).max()) for a, b in
                      zip(initial, single.get_weights()))
        return {"run": f"{cls}:{policy}", "replicas": strategy.num_replicas_in_sync,
                "diff": diff, "changed": changed, "single": logs_single,
                "mirrored": logs_mirrored, "report_single": report_single,
                "report_mirrored": report_mirrored, "report_explicit": report_explicit,
                "eval_single": eval_single, "eval_mirrored": eval_mirrored,
                "predict_diff": predict_diff, "jit_compile": mirrored.jit_compile,
                "compute_dtype": mirrored.classifier.layers[2].compute_dtype,
                "finite": bool(np.isfinite(logs_mirrored["loss"]).all())}

    for run in sys.argv[2:]:
        cls, _, policy = run.partition(":")
        print(json.dumps(compare(cls, policy or "float32"), default=float), flush=True)
""")


def _mirrored_runs(tmp_path, jit, runs):
    """Runs the MIRRORED script on `runs` (CLASS[:POLICY]) in one process;
    returns run -> its measurements."""
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    result = subprocess.run([sys.executable, str(script), jit, *runs], env=ENV, cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = [json.loads(line) for line in result.stdout.splitlines()
               if line.startswith('{"run"')]
    return {out["run"]: out for out in outputs}


# "jit": the single-device model compiles its whole step with XLA (Keras),
# the mirrored one each replica's work (Keras' own whole-step XLA fails with
# several replicas). XLA draws other random numbers than graph mode, so each
# mode is compared with itself. Every class runs in one process per mode
# (one TensorFlow start-up, one strategy), with bfloat16 compute last:
# float32 weights, delta and logits; it trains, and one and two replicas
# agree to bfloat16's rounding (the replicas' partial sums round
# differently from the whole batch's); evaluation attacks the float32 copy.
MIRRORED_CLASSES = {"graph": ["ZeroGradModel", "MultiGradModel", "PGDModel", "FGSMModel",
                              "GradAlignModel", "ZeroGradNFGSMModel"],
                    "jit": ["ZeroGradModel", "MultiGradModel"]}


@pytest.mark.parametrize("jit", ["graph", "jit"])
@pytest.mark.slow
def test_mirrored_matches_single_device_and_trains_in_bfloat16(tmp_path, jit):
    bf16 = "ZeroGradModel:mixed_bfloat16"
    outputs = _mirrored_runs(tmp_path, jit, [*MIRRORED_CLASSES[jit], bf16])
    assert set(outputs) == {f"{c}:float32" for c in MIRRORED_CLASSES[jit]} | {bf16}
    for run, out in outputs.items():
        assert out["replicas"] == 2, run
        assert out["jit_compile"] is (jit == "jit"), run  # the user's setting is kept
        assert out["changed"] > 1e-3, run  # training moved the weights ...
        if run == bf16:
            continue
        assert out["diff"] < 1e-5, run     # ... identically on 1 and 2 replicas
        for key in out["single"]:
            np.testing.assert_allclose(out["mirrored"][key], out["single"][key], rtol=1e-5,
                                       err_msg=f"{run} {key}")
        assert set(out["eval_single"]) == {"loss", "accuracy", "pgd_accuracy"}
        for key in out["eval_single"]:
            np.testing.assert_allclose(out["eval_mirrored"][key], out["eval_single"][key],
                                       rtol=1e-5, err_msg=f"{run} {key}")
        assert out["predict_diff"] < 1e-5, run
        for report in (out["report_mirrored"], out["report_explicit"]):
            assert report["num_examples"] == 32
            assert report["num_robust_correct"] == out["report_single"]["num_robust_correct"]
            np.testing.assert_allclose(report["robust_loss"],
                                       out["report_single"]["robust_loss"], rtol=1e-5)
    out = outputs[bf16]
    assert out["compute_dtype"] == "bfloat16" and out["finite"] and out["diff"] < 2e-2
    for report in (out["report_single"], out["report_mirrored"], out["report_explicit"]):
        assert report["precision"] == "float32" and report["num_examples"] == 32


BATCHNORM_XLA = textwrap.dedent("""
    import json
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    import zerograd_tf as zg

    rng = np.random.default_rng(0)
    x = rng.random((32, 6, 6, 1)).astype("float32")
    y = rng.integers(0, 3, 32)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def train(jit):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            inputs = keras.Input((6, 6, 1))
            h = keras.layers.Conv2D(4, 3)(inputs)
            h = keras.layers.BatchNormalization()(h)
            h = keras.layers.Flatten()(keras.layers.ReLU()(h))
            # FGSM from zero: no random numbers, so XLA and graph mode agree.
            model = zg.FGSMModel(inputs, keras.layers.Dense(3)(h), epsilon=0.1, seed=3)
            model.compile(optimizer=keras.optimizers.SGD(0.5),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          jit_compile=jit)
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        return model

    graph, xla = train(False), train(True)
    stats = [w for w in graph.weights if "moving" in w.name]
    print(json.dumps({
        "diff": max(float(np.abs(a - b).max())
                    for a, b in zip(graph.get_weights(), xla.get_weights())),
        "stats_moved": min(float(np.abs(keras.ops.convert_to_numpy(w)
                                        - (1.0 if "variance" in w.name else 0.0)).max())
                           for w in stats),
        "compiled": list(xla.compiled_replica_functions)}))
""")


@pytest.mark.slow
def test_batchnorm_model_under_xla_per_replica_matches_graph_mode(tmp_path):
    script = tmp_path / "batchnorm.py"
    script.write_text(BATCHNORM_XLA)
    result = subprocess.run([sys.executable, str(script)], env=ENV, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["compiled"] == ["train"]   # the replica step ran under XLA
    assert out["stats_moved"] > 1e-4       # BatchNorm statistics were updated ...
    assert out["diff"] < 1e-4              # ... as in graph mode


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(argv, outputs):
    """Starts one process per worker (worker 0 is the chief) on fresh ports."""
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(len(outputs))]}
    processes = []
    for index, output in enumerate(outputs):
        env = {**ENV, "TF_CONFIG": json.dumps({"cluster": cluster,
                                               "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(
            [*argv, "--output", str(output)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    return processes


@pytest.mark.slow
@pytest.mark.parametrize("jit", ["--no-jit", "--jit"])
def test_two_local_workers(tmp_path, jit):
    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"
    np.savez(data, x_train=rng.integers(0, 256, (96, 8, 8, 1), dtype=np.uint8),
             y_train=rng.integers(0, 3, 96),
             x_test=rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8),
             y_test=rng.integers(0, 3, 16))
    # Each worker gets its own --output: only the chief (worker 0) may write.
    argv = [sys.executable, "-m", "zerograd_tf.trainers.train", "--strategy", "multiworker",
            "--dataset", str(data), "--epochs", "1", "--batch-size", "16", "--val-size", "16",
            "--val-pgd-steps", "2", "--eval-steps", "2", "--eval-restarts", "1", "--eval-attack", "pgd",
            "--verbose", "0", jit]
    processes = _start_workers(argv, [tmp_path / "out0", tmp_path / "out1"])
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    chief = tmp_path / "out0"
    for name in ("model.keras", "history.json", "config.json", "report.json"):
        assert (chief / name).exists(), name
    assert not (tmp_path / "out1").exists()
    config = json.loads((chief / "config.json").read_text())
    assert config["strategy"] == "multiworker"
    assert config["jit"] is (jit == "--jit")
    import keras

    import zerograd_tf  # noqa: F401  (registers the model classes for loading)

    model = keras.models.load_model(chief / "model.keras")
    assert model.epsilon == pytest.approx(0.1)
    assert "robust accuracy" in outputs[0][0] and "robust accuracy" in outputs[1][0]


@pytest.mark.slow
def test_two_workers_killed_mid_run_resume_from_the_chief_checkpoint(tmp_path):
    data = make_npz(tmp_path / "tiny.npz", n_train=1600, shape=(8, 8, 1))
    output = tmp_path / "shared"  # one folder, as on a file system the hosts share
    argv = [sys.executable, "-m", "zerograd_tf.trainers.train", "--strategy", "multiworker",
            "--dataset", data, "--epochs", "3", "--batch-size", "16", "--val-size", "32",
            "--val-pgd-steps", "2", "--eval-steps", "2", "--eval-restarts", "1", "--eval-attack", "pgd",
            "--verbose", "0"]
    processes = _start_workers(argv, [output, output])
    history_path = output / "history.json"
    deadline = time.time() + 300
    while time.time() < deadline and all(p.poll() is None for p in processes):
        if history_path.exists() and json.loads(history_path.read_text())["epoch"]:
            break
        time.sleep(0.02)
    for process in processes:
        process.kill()
        process.communicate()
    done = json.loads(history_path.read_text())["epoch"]
    assert 1 <= len(done) < 3, "the run was not killed mid-way"
    assert (output / "checkpoint").exists() and not (output / "report.json").exists()

    processes = _start_workers([*argv, "--resume"], [output, output])
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    assert "resuming the run" in outputs[0][1]  # a banner: standard error
    history = json.loads(history_path.read_text())
    assert history["epoch"] == [1, 2, 3]
    import keras

    import zerograd_tf  # noqa: F401  (registers the model classes for loading)

    model = keras.models.load_model(output / "model.keras")
    steps_per_epoch = -(-(1600 - 32) // 16)
    assert int(model.optimizer.iterations.numpy()) == 3 * steps_per_epoch
    assert not (output / "checkpoint").exists()
