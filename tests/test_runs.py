"""The library layer under the programs (`zerograd_tf.runs`): the tuner keeps
the trained model, trials train on their own schedule, building a model
changes no global state, and the import of the library changes nothing."""

import json
import os
import random
import subprocess
import sys

import keras
import keras_tuner
import numpy as np
import pytest

from conftest import make_npz
from zerograd_tf import datasets
from zerograd_tf.runs import pipeline, tuning
from zerograd_tf.runs.config import RunConfig
from zerograd_tf.runs.hypermodel import ZeroGradHyperModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup(tmp_path, epochs=2):
    data = datasets.load_image_data(make_npz(tmp_path / "d.npz", n_train=96, n_test=16),
                                    val_size=32)
    config = RunConfig(dataset="d.npz", epochs=epochs, batch_size=32, val_size=32,
                       val_pgd_steps=1, val_pgd_size=32, model="conv3").resolved(data)
    return config, data


class _PeakFirst(keras.callbacks.Callback):
    """Per-epoch validation that peaks in the first epoch, as a run that
    overfits catastrophically after an early peak."""

    def on_epoch_end(self, epoch, logs=None):
        logs["val_pgd_accuracy"] = 1.0 if epoch == 0 else 0.0


@pytest.mark.slow
def test_the_best_model_is_the_trained_model_the_score_describes(tmp_path):
    config, data = _setup(tmp_path)
    final = {}

    def evaluate(model, x, y):
        final["weights"] = [w.copy() for w in model.get_weights()]
        return {"clean_accuracy": 0.5, "pgd_accuracy": 0.25}

    hypermodel = ZeroGradHyperModel(config, data, evaluate=evaluate)
    tuner = tuning.make_tuner("random", hypermodel, max_trials=1, epochs=config.epochs,
                              directory=str(tmp_path / "s"), project_name="p", seed=0,
                              overwrite=True)
    tuner.search(pipeline.train_dataset(config, data), epochs=config.epochs,
                 steps_per_epoch=pipeline.steps_per_epoch(config, len(data.x_train)),
                 validation_data=pipeline.validation_dataset(config, data),
                 callbacks=[_PeakFirst()], shuffle=False, verbose=0)
    trial = tuner.oracle.get_best_trials(1)[0]
    assert trial.score == 0.25
    best = tuner.get_best_models(1)[0]
    for loaded, trained in zip(best.get_weights(), final["weights"]):
        np.testing.assert_array_equal(loaded, trained)


def _hyperband_trial(tmp_path, epochs, trial_epochs):
    """`(config, data, hypermodel, hp, model, steps)` of a trial of `trial_epochs`."""
    config, data = _setup(tmp_path, epochs=epochs)
    hypermodel = ZeroGradHyperModel(config, data)
    hp = keras_tuner.HyperParameters()
    hp.values.update({"tuner/epochs": trial_epochs, "tuner/initial_epoch": 0})
    model = hypermodel.build(hp)
    return config, data, hypermodel, hp, model, pipeline.steps_per_epoch(config,
                                                                         len(data.x_train))


def test_a_hyperband_trial_schedule_spans_its_own_epochs(tmp_path):
    _, _, hypermodel, _, model, steps = _hyperband_trial(tmp_path, epochs=9, trial_epochs=2)
    assert model.optimizer._learning_rate.total_steps == 2 * steps
    # Without Hyperband's values: the configured epochs.
    plain = hypermodel.build(keras_tuner.HyperParameters())
    assert plain.optimizer._learning_rate.total_steps == 9 * steps


def test_a_continued_trial_resumes_the_optimizer_state(tmp_path):
    config, data, hypermodel, hp, model, steps = _hyperband_trial(tmp_path, 3, 3)
    model.fit(pipeline.train_dataset(config, data), epochs=1, steps_per_epoch=steps,
              shuffle=False, verbose=0)
    path = str(tmp_path / "trial.weights.h5")
    model.save_weights(path)  # as KerasTuner's checkpoint does
    # Hyperband's continuation: a fresh build, then the trial's weights.
    continued = hypermodel.build(hp)
    continued.load_weights(path)
    assert int(continued.optimizer.iterations) == steps
    for a, b in zip(continued.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


class _Recorder:
    """A model whose `fit` records what it was given (and trains nothing)."""

    def fit(self, x, **kwargs):
        self.x, self.kwargs = x, kwargs


def test_a_continued_trial_trains_on_the_batches_from_its_initial_epoch(tmp_path):
    config, data = _setup(tmp_path, epochs=3)
    stub = lambda model, x, y: {"clean_accuracy": 1.0, "pgd_accuracy": 1.0}  # noqa: E731
    hypermodel = ZeroGradHyperModel(config, data, evaluate=stub)
    model = _Recorder()
    # As Hyperband continues a trial: `tuner/initial_epoch` 2 of 3, no data given.
    hypermodel.fit(keras_tuner.HyperParameters(), model, epochs=3, initial_epoch=2)
    steps = pipeline.steps_per_epoch(config, len(data.x_train))
    assert model.kwargs["initial_epoch"] == 2 and model.kwargs["steps_per_epoch"] == steps
    uninterrupted = list(pipeline.train_dataset(config, data))[2 * steps:]
    fed = list(model.x)
    assert len(fed) == len(uninterrupted) == steps
    for (x_fed, y_fed), (x_run, y_run) in zip(fed, uninterrupted):
        np.testing.assert_array_equal(x_fed.numpy(), x_run.numpy())
        np.testing.assert_array_equal(y_fed.numpy(), y_run.numpy())
    # Epoch 0's batches would differ (the order is drawn per epoch).
    first = list(pipeline.train_dataset(config, data))[0][1].numpy()
    assert not np.array_equal(first, fed[0][1].numpy())


def test_build_model_changes_no_global_state(tmp_path):
    config, data = _setup(tmp_path)
    keras.mixed_precision.set_global_policy("float32")
    random.seed(5)
    np.random.seed(5)
    before = (random.getstate(), np.random.get_state()[1].copy())
    first = pipeline.build_model(config.replace(precision="mixed_float16"), data)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert (random.getstate(), ) == (before[0], )
    np.testing.assert_array_equal(np.random.get_state()[1], before[1])
    # The policy is the model's own, explicitly; the logits stay float32.
    classifier = first.classifier
    policies = {layer.name: layer.dtype_policy.name for layer in classifier.layers
                if not isinstance(layer, keras.layers.InputLayer)}
    assert policies.pop("logits") == "float32"
    assert set(policies.values()) == {"mixed_float16"}
    # The initial weights depend on the seed alone.
    random.random()
    second = pipeline.build_model(config, data)
    third = pipeline.build_model(config, data)
    for a, b in zip(second.get_weights(), third.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = pipeline.build_model(config.replace(seed=1), data)
    assert any(not np.array_equal(a, b)
               for a, b in zip(second.get_weights(), other.get_weights()))


def _python(code, **env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    environ.update(PYTHONPATH=ROOT, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=environ, check=False)


@pytest.mark.slow
def test_importing_the_library_leaves_the_environment_alone():
    result = _python("import json, os, zerograd_tf; print(json.dumps("
                     "[os.environ.get('KERAS_BACKEND'), os.environ.get('TF_CPP_MIN_LOG_LEVEL')]))")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == [None, None]


@pytest.mark.slow
def test_another_keras_backend_gets_a_clear_error():
    # As under KERAS_BACKEND=jax (which needs jax installed).
    result = _python("import keras; keras.config.backend = lambda: 'jax'; import zerograd_tf")
    assert result.returncode != 0
    assert ("ImportError: zerograd_tf needs Keras' TensorFlow backend, but Keras runs on "
            "'jax'") in result.stderr


def test_auto_slide_reaches_the_auto_quantile_monitor(tmp_path):
    from zerograd_tf.runs import training

    data = datasets.load_image_data(make_npz(tmp_path / "d.npz", n_train=64, n_test=16),
                                    val_size=16)
    for auto_slide in (None, 0.25):
        config = RunConfig(method="zerograd", quantile="auto",
                           auto_slide=auto_slide).resolved(data)
        (monitor,) = training.monitor_callbacks(config, data, str(tmp_path), logdir=None)
        assert monitor.slide_drop == auto_slide


def test_a_run_of_the_old_default_method_says_which_flag_resumes_it(tmp_path):
    """0.2.0 changed zerograd-train's default method: the same command on a
    run of 0.1.0's default is refused, naming the run's method, not only
    that it differs (pass --overwrite would delete the run)."""
    from zerograd_tf.runs import options, run_dir

    data = datasets.load_image_data(make_npz(tmp_path / "d.npz", n_train=64, n_test=16),
                                    val_size=16)
    old = RunConfig(method="zerograd", epochs=1).resolved(data)
    output = tmp_path / "run"
    output.mkdir()
    (output / "config.json").write_text(json.dumps(old.to_dict()))
    with pytest.raises(options.UsageError) as refused:
        run_dir.check_output(str(output), RunConfig(epochs=1).resolved(data), resume=True,
                             overwrite=False)
    assert ("differs in: method: 'zerograd' there, 'zerograd_n_fgsm' here); give the run's "
            "values to resume it") in str(refused.value)
    saved, _ = run_dir.check_output(str(output), old, resume=True, overwrite=False)
    assert saved["method"] == "zerograd"


def test_a_non_chief_worker_resumes_from_the_chiefs_monitor_state(tmp_path):
    """Every worker runs the CO monitors; on resume each must start from the
    chief's saved state (in the run folder), not afresh in its scratch folder."""
    from zerograd_tf.runs import training

    output, writes = tmp_path / "run", tmp_path / "scratch"
    output.mkdir()
    writes.mkdir()
    for name in ("co_monitor.json", "auto_quantile.json", "auto_quantile.epoch_end_3.npz",
                 "auto_quantile.epoch_end_4.npz.tmp", "history.json"):
        (output / name).write_text(name)
    training.copy_monitor_state(str(output), str(writes))
    assert sorted(p.name for p in writes.iterdir()) == [
        "auto_quantile.epoch_end_3.npz", "auto_quantile.json", "co_monitor.json"]
    assert (writes / "co_monitor.json").read_text() == "co_monitor.json"


def test_the_final_evaluations_progress_file_follows_the_evaluation_options(tmp_path):
    """zerograd-train's final-evaluation backup: named by the evaluation's
    options (another evaluation's progress is removed, not continued), and a
    non-chief worker starts from the chief's file."""
    from zerograd_tf.runs import run_dir

    output, writes = tmp_path / "run", tmp_path / "scratch"
    output.mkdir()
    writes.mkdir()
    config = RunConfig(eval_attack="autoattack", eval_apgd_steps=7)
    path = run_dir.evaluation_backup(str(output), str(output), config)
    assert os.path.dirname(path) == str(output)
    assert path == run_dir.evaluation_backup(str(output), str(output), config)
    other = run_dir.evaluation_backup(str(output), str(output),
                                       config.replace(eval_apgd_steps=8))
    assert other != path
    # The same options with another ε or seed are another evaluation too.
    assert path not in {run_dir.evaluation_backup(str(output), str(output), changed)
                        for changed in (config.replace(epsilon=0.2), config.replace(seed=1))}
    open(path, "w").write("chief's progress")
    open(other, "w").write("another evaluation's")
    (output / "history.json").write_text("{}")
    assert run_dir.evaluation_backup(str(output), str(output), config) == path
    assert sorted(p.name for p in output.iterdir()) == sorted(
        [os.path.basename(path), "history.json"])
    worker = run_dir.evaluation_backup(str(output), str(writes), config)
    assert worker == str(writes / os.path.basename(path))
    assert open(worker).read() == "chief's progress"
