import json

import pytest

from zerograd_tf.runs import tuning
from conftest import make_npz
from zerograd_tf.tuning import search as search_module
from zerograd_tf.runs.hypermodel import ZeroGradHyperModel


def _data(tmp_path):
    return make_npz(tmp_path / "d.npz", n_train=96, n_test=16)


TINY = dict(epochs=1, val_size=32, val_pgd_steps=2, val_pgd_size=32, batch_size=32,
            verbose=0)


class ScriptedEvaluation:
    """Returns scripted accuracies in call order; counts calls."""

    def __init__(self, results, interrupt_at=None):
        self.results, self.calls, self.interrupt_at = results, 0, interrupt_at

    def __call__(self, model, x, y):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return self.results[(self.calls - 1) % len(self.results)]


@pytest.mark.slow
def test_tiny_search_writes_results_and_picks_the_most_robust(tmp_path):
    data = _data(tmp_path)
    tuner, best = tuning.search(data, max_trials=3, directory=str(tmp_path / "s"),
                                project_name="p", logdir=str(tmp_path / "tb"), **TINY)
    folder = tmp_path / "s" / "p"
    assert json.loads((folder / "best_hyperparameters.json").read_text()) == best.values
    rows = json.loads((folder / "trials.json").read_text())
    assert len(rows) == 3 and "| trial | method | quantile |" in (folder / "trials.md").read_text()
    top = max(rows, key=lambda r: r["pgd_accuracy"])
    assert best.values["quantile"] == pytest.approx(top["quantile"])
    assert best.values["alpha"] == pytest.approx(top["alpha"])
    for r in rows:
        assert 0 <= r["quantile"] <= 0.9 and 0.5 <= r["alpha"] <= 2.5 and r["seconds"] > 0
    # KerasTuner's TensorBoard integration: one log folder per trial.
    assert len([p for p in (tmp_path / "tb").iterdir() if p.is_dir()]) == 3


@pytest.mark.slow
def test_objective_is_robust_not_clean_accuracy(tmp_path):
    stub = ScriptedEvaluation([{"clean_accuracy": 0.95, "pgd_accuracy": 0.05},
                               {"clean_accuracy": 0.60, "pgd_accuracy": 0.40}])
    tuner, best = tuning.search(_data(tmp_path), max_trials=2, evaluate=stub,
                                directory=str(tmp_path / "s"), project_name="p", **TINY)
    rows = {r["trial"]: r for r in tuning.trial_rows(tuner)}
    assert rows["0"]["clean_accuracy"] == 0.95 and rows["1"]["pgd_accuracy"] == 0.40
    assert best.values["quantile"] == pytest.approx(rows["1"]["quantile"])


@pytest.mark.slow
def test_interrupted_search_resumes_without_redoing_finished_trials(tmp_path):
    data = _data(tmp_path)
    kw = dict(max_trials=3, directory=str(tmp_path / "s"), project_name="p", **TINY)
    results = [{"clean_accuracy": 0.5, "pgd_accuracy": v} for v in (0.1, 0.3, 0.2)]
    first = ScriptedEvaluation(results, interrupt_at=2)
    with pytest.raises(KeyboardInterrupt):
        tuning.search(data, evaluate=first, **kw)
    assert first.calls == 2
    second = ScriptedEvaluation(results[1:])
    tuner, _ = tuning.search(data, evaluate=second, **kw)
    assert second.calls == 2  # trials 1 and 2 only; trial 0 is kept
    rows = tuning.trial_rows(tuner)
    assert [r["trial"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["pgd_accuracy"] == 0.1


@pytest.mark.slow
def test_errors(tmp_path):
    data = _data(tmp_path)
    with pytest.raises(ValueError, match="`tuner` must be one of"):
        tuning.search(data, tuner="grid", directory=str(tmp_path), **TINY)
    with pytest.raises(ValueError, match=r"`quantile_range` must satisfy min < max"):
        tuning.search(data, quantile_range=(0.5, 0.2), directory=str(tmp_path), **TINY)
    with pytest.raises(ValueError, match=r"`quantile_range` must lie in \[0, 1\)"):
        tuning.search(data, quantile_range=(0.2, 1.0), directory=str(tmp_path), **TINY)
    with pytest.raises(ValueError, match=r"`alpha_range` must satisfy min < max"):
        tuning.search(data, alpha_range=(1.0, 1.0), directory=str(tmp_path), **TINY)
    stub = ScriptedEvaluation([{"clean_accuracy": 0.5, "pgd_accuracy": 0.2}])
    tuning.search(data, max_trials=1, evaluate=stub, directory=str(tmp_path / "s"),
                  project_name="p", **TINY)
    with pytest.raises(ValueError, match="belongs to a different search.*alpha_range"):
        tuning.search(data, max_trials=1, alpha_range=(1.0, 2.0), evaluate=stub,
                      directory=str(tmp_path / "s"), project_name="p", **TINY)


def test_cli_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        search_module.main(["--dataset", _data(tmp_path), "--tuner", "grid",
                            "--directory", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zerograd-tune: error: argument --tuner")


def test_multigrad_search_space(tmp_path):
    from zerograd_tf.runs.config import RunConfig
    from zerograd_tf import datasets
    import keras_tuner

    data = datasets.load_image_data(_data(tmp_path), val_size=32)
    config = RunConfig(dataset="x.npz", method="zerograd", epochs=1).resolved(data)
    hypermodel = ZeroGradHyperModel(config, data, method="search", lr_range=(1e-4, 1e-2))
    hp = keras_tuner.HyperParameters()
    hp.values["method"] = "multigrad"
    trial_config = hypermodel.trial_config(hp)
    assert trial_config.method == "multigrad"
    assert "lr_max" in hp.values and 1e-4 <= trial_config.lr_max <= 1e-2
    assert config.method == "zerograd"  # the base configuration is not changed
    assert type(hypermodel.build(hp)).__name__ == "MultiGradModel"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["random", "bayesian", "hyperband"])
def test_every_tuner_runs(tmp_path, name):
    stub = ScriptedEvaluation([{"clean_accuracy": 0.9, "pgd_accuracy": 0.3},
                               {"clean_accuracy": 0.8, "pgd_accuracy": 0.5}])
    tuner, best = tuning.search(_data(tmp_path), tuner=name, max_trials=2, evaluate=stub,
                                directory=str(tmp_path / "s"), project_name=name, **TINY)
    rows = tuning.trial_rows(tuner)
    assert rows and stub.calls == len(rows)
    assert best.values["alpha"] == pytest.approx(
        max(rows, key=lambda r: r["pgd_accuracy"])["alpha"])


def test_unknown_training_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown training option\\(s\\) val_pgd_stepz"):
        tuning.search(_data(tmp_path), directory=str(tmp_path), val_pgd_stepz=3)


@pytest.mark.slow
def test_a_search_whose_trials_all_failed_names_no_best(tmp_path):
    """KerasTuner pads its best trials with failed ones: a search in which no
    trial completed must say so, not return a failed trial's values."""
    def broken(model, x, y):
        raise RuntimeError("the measurement broke")

    with pytest.raises(RuntimeError, match="no trial of the search completed.*the "
                                           "measurement broke"):
        tuning.search(_data(tmp_path), max_trials=1, evaluate=broken,
                      directory=str(tmp_path / "s"), project_name="p", **TINY)
    assert not (tmp_path / "s" / "p" / "best_hyperparameters.json").exists()


@pytest.mark.slow
def test_a_search_stopped_by_failed_trials_keeps_the_best_completed_one(tmp_path, capsys):
    """KerasTuner stops a search after three failed trials in a row: the
    trials that completed before still name the best configuration."""
    calls = []

    def first_only(model, x, y):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("the measurement broke")
        return {"clean_accuracy": 0.7, "pgd_accuracy": 0.4}

    tuner, best = tuning.search(_data(tmp_path), max_trials=6, evaluate=first_only,
                                directory=str(tmp_path / "s"), project_name="p", **TINY)
    assert len(calls) == 4  # one completed, then three failed in a row
    folder = tmp_path / "s" / "p"
    assert json.loads((folder / "best_hyperparameters.json").read_text()) == best.values
    completed = tuning.trial_rows(tuner)  # the completed trials
    assert len(completed) == 1 and best.values["alpha"] == pytest.approx(completed[0]["alpha"])
    err = capsys.readouterr().err
    assert ("warning: the search stopped after 1 of 6 trials completed (Number of consecutive "
            "failures exceeded the limit of 3: RuntimeError: the measurement broke); the best "
            "is of those.") in err


def test_a_search_refuses_what_its_trials_would_not_honour(tmp_path):
    data = _data(tmp_path)
    for options, problem in [(dict(val_size=0), "val_size"),
                             (dict(alpha=1.0), "alpha is searched"),
                             (dict(quantile=0.5), "quantile is searched"),
                             (dict(lr_max=0.1, lr_range=(1e-3, 1e-1)), "lr_max is searched"),
                             (dict(co_monitor="warn"), "co_monitor"),
                             (dict(diagnostics=True), "diagnostics"),
                             (dict(strategy="multiworker"), "must not be 'multiworker'")]:
        with pytest.raises(ValueError, match=problem):
            tuning.search(data, directory=str(tmp_path / "s"), project_name="p",
                          **{**TINY, **options})
    assert not (tmp_path / "s" / "p").exists()


def test_a_trial_validates_and_warms_up_as_its_configuration_says(tmp_path):
    from zerograd_tf import callbacks, datasets
    from zerograd_tf.runs import pipeline
    from zerograd_tf.runs.config import RunConfig
    import keras_tuner

    data = datasets.load_image_data(_data(tmp_path), val_size=32)
    config = RunConfig(dataset="x.npz", method="zerograd", epochs=2, batch_size=32,
                       val_freq=2, epsilon_warmup=1.0, val_pgd_steps=1).resolved(data)
    hypermodel = ZeroGradHyperModel(config, data, evaluate=lambda m, x, y: {
        "clean_accuracy": 0.5, "pgd_accuracy": 0.2})
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    seen = {}
    original = model.fit

    def fit(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    model.fit = fit
    hypermodel.fit(hp, model, epochs=2, verbose=0,
                   validation_data=pipeline.validation_dataset(config, data))
    assert seen["validation_freq"] == 2
    assert any(isinstance(c, callbacks.EpsilonWarmup) for c in seen["callbacks"])


def test_the_program_reports_a_failed_search_and_a_diverged_best_run_in_one_line(
        tmp_path, capsys, monkeypatch):
    from zerograd_tf.runs import training

    def failed(*args, **kwargs):
        raise tuning.SearchFailed("no trial of the search completed (boom); its trials are "
                                  "in s/p.")

    monkeypatch.setattr(tuning, "search", failed)
    data = _data(tmp_path)
    assert search_module.main(["--dataset", data, "--directory", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == (
        "zerograd-tune: error: no trial of the search completed (boom); its trials are in s/p.")

    class Tuner:
        directory, project_name = str(tmp_path), "p"

    class Best:
        values = {"method": "zerograd", "quantile": 0.5, "alpha": 1.0}

    def diverged(config, output):
        raise training.TrainingDiverged("the loss became NaN at epoch 2")

    (tmp_path / "p").mkdir()
    monkeypatch.setattr(tuning, "search", lambda *a, **k: (Tuner(), Best()))
    monkeypatch.setattr(tuning, "write_summary", lambda tuner, folder: "")
    monkeypatch.setattr(training, "run_config", diverged)
    assert search_module.main(["--dataset", data, "--directory", str(tmp_path),
                               "--train-best"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["zerograd-tune: error: the loss became NaN at epoch 2"]


def test_trials_are_listed_by_number():
    class Metrics:
        def exists(self, name):
            return False

    class Trial:
        status, hyperparameters, metrics, score = "COMPLETED", None, Metrics(), 0.1

        def __init__(self, trial_id):
            self.trial_id = trial_id
            self.hyperparameters = type("HP", (), {"values": {"alpha": 1.0}})()

    class Tuner:
        oracle = type("Oracle", (), {"trials": {i: Trial(i) for i in ("10", "9", "02")}})()

    assert [r["trial"] for r in tuning.trial_rows(Tuner())] == ["02", "9", "10"]


def test_train_best_over_an_earlier_best_says_how_to_keep_the_search(
        tmp_path, capsys, monkeypatch):
    # --overwrite would restart the search: the advice names --output instead.
    from zerograd_tf.runs import training

    class Tuner:
        directory, project_name = str(tmp_path), "p"

    best = {"method": "zerograd", "quantile": 0.3, "alpha": 1.0}

    class Best:
        values = best

    (tmp_path / "p").mkdir()
    monkeypatch.setattr(tuning, "search", lambda *a, **k: (Tuner(), Best()))
    monkeypatch.setattr(tuning, "write_summary", lambda tuner, folder: "")
    monkeypatch.setattr(training, "run_prepared", lambda setup: setup["lock"].release())
    argv = ["--dataset", _data(tmp_path), "--directory", str(tmp_path), "--val-size", "32",
            "--batch-size", "32", "--train-best"]
    assert search_module.main(argv) == 0
    assert search_module.main(argv) == 0  # the same best: resumed, not refused
    best["quantile"] = 0.5
    capsys.readouterr()
    assert search_module.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" not in err[0], err
    assert err[0].startswith(f"zerograd-tune: error: {tmp_path / 'p' / 'best_run'} holds the "
                             "run of an earlier best (quantile: 0.3 there, 0.5 here)")
    assert err[0].endswith("remove that folder, or choose another --output.")
    # A folder given with --output is not the search's own: no "earlier best".
    other = tmp_path / "other"
    assert search_module.main([*argv, "--output", str(other)]) == 0
    best["quantile"] = 0.7
    capsys.readouterr()
    assert search_module.main([*argv, "--output", str(other)]) == 2
    assert capsys.readouterr().err.startswith(
        f"zerograd-tune: error: {other} holds a run of another configuration (quantile: 0.5 "
        "there, 0.7 here)")
