"""`evaluate_robustness(..., backup_path=...)` and `zerograd-eval --backup`: a
killed evaluation continues after its last saved stage to the report of the
uninterrupted one; a file of another evaluation, or a damaged one, is refused
and kept."""

import json

import keras
import pytest

import zerograd_tf as zg
from conftest import make_npz, small_cnn
from test_evaluation_engine import EPS, PINNED_SETTINGS, pinned_problem
from zerograd_tf.evaluation import backup
from zerograd_tf.evaluation.backup import EvaluationBackup
from zerograd_tf.trainers import evaluate as eval_program

# PGD first (one stage: its restarts run within a call), then AutoAttack:
# APGD-CE (1 stage), APGD-T (3 target classes), Square (1 stage).
ATTACK = ["pgd", "autoattack"]
# (member, next stage) of every save, in order: after each stage, then at
# the start of the next attack.
SAVES = [(0, 1), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (2, 3), (3, 0), (3, 1), (4, 0)]


class Killed(Exception):
    """Stands for the process being killed."""


def _without_seconds(report):
    report = {k: v for k, v in report.items() if k != "seconds"}
    report["attacks"] = [{k: v for k, v in entry.items() if k != "seconds"}
                         for entry in report["attacks"]]
    return report


def _recording_saves(monkeypatch, saves, kill_after=None):
    save = EvaluationBackup.save

    def recorded(self, **progress):
        save(self, **progress)
        saves.append((progress["member"], progress["stage"]))
        if len(saves) == kill_after:
            raise Killed

    monkeypatch.setattr(EvaluationBackup, "save", recorded)


def _killed(monkeypatch, problem, path, kill_after, saves=None, **changed):
    """Runs the pinned evaluation with a backup until its `kill_after`-th
    save, as a killed process would leave it."""
    model, x, y = problem
    with monkeypatch.context() as patch:
        _recording_saves(patch, [] if saves is None else saves, kill_after)
        with pytest.raises(Killed):
            zg.evaluate_robustness(model, (x, y), EPS, attack=ATTACK, backup_path=path,
                                   **{**PINNED_SETTINGS, **changed})


@pytest.fixture(scope="module")
def problem():
    return pinned_problem()


@pytest.fixture(scope="module")
def whole(problem):
    model, x, y = problem
    return zg.evaluate_robustness(model, (x, y), EPS, attack=ATTACK, **PINNED_SETTINGS)


@pytest.mark.parametrize("kill_after", [
    pytest.param(1, id="after_pgds_stage"),
    pytest.param(3, id="after_apgd_ces_stage", marks=pytest.mark.slow),
    pytest.param(6, id="in_apgd_t"),
    pytest.param(8, id="before_square", marks=pytest.mark.slow),
    pytest.param(9, id="after_squares_stage", marks=pytest.mark.slow)])
def test_a_killed_evaluation_continues_to_the_uninterrupted_report(
        tmp_path, monkeypatch, problem, whole, kill_after):
    model, x, y = problem
    path = tmp_path / "progress.json"
    saves = []
    _killed(monkeypatch, problem, path, kill_after, saves)
    assert saves == SAVES[:kill_after] and path.exists()

    saves.clear()
    with monkeypatch.context() as patch:
        _recording_saves(patch, saves)
        resumed = zg.evaluate_robustness(model, (x, y), EPS, attack=ATTACK,
                                         backup_path=path, **PINNED_SETTINGS)
    # It went on from the saved stage: no stage ran twice.
    assert saves == SAVES[kill_after:]
    assert _without_seconds(resumed) == _without_seconds(whole)
    assert not path.exists()


def test_an_evaluation_without_interruption_leaves_no_file_and_the_same_report(
        tmp_path, problem, whole):
    model, x, y = problem
    path = tmp_path / "progress.json"
    report = zg.evaluate_robustness(model, (x, y), EPS, attack=ATTACK, backup_path=path,
                                    **PINNED_SETTINGS)
    assert _without_seconds(report) == _without_seconds(whole)
    assert not path.exists()


def test_the_progress_of_another_evaluation_is_refused_and_kept(tmp_path, monkeypatch,
                                                                  problem):
    model, x, y = problem
    path = tmp_path / "progress.json"
    _killed(monkeypatch, problem, path, 2)
    saved = path.read_text()
    other_seed = {**PINNED_SETTINGS, "seed": PINNED_SETTINGS["seed"] + 1}
    with pytest.raises(ValueError, match=r"another evaluation \(differs in: seed\)"):
        zg.evaluate_robustness(model, (x, y), EPS, attack=ATTACK, backup_path=path,
                               **other_seed)
    with pytest.raises(ValueError, match=r"differs in: examples"):
        zg.evaluate_robustness(model, (x[:-1], y[:-1]), EPS, attack=ATTACK,
                               backup_path=path, **PINNED_SETTINGS)
    with pytest.raises(ValueError, match=r"differs in: loss"):
        zg.evaluate_robustness(model, (x, y), EPS, attack=ATTACK, backup_path=path,
                               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                               **PINNED_SETTINGS)
    # The same weights computing something else: a softmax on top.
    softmax = keras.Model(model.inputs, keras.layers.Softmax()(model.outputs[0]))
    with pytest.raises(ValueError, match=r"differs in: layers"):
        zg.evaluate_robustness(softmax, (x, y), EPS, attack=ATTACK, backup_path=path,
                               **PINNED_SETTINGS)
    assert path.read_text() == saved


def test_a_programs_own_progress_file_of_another_evaluation_is_replaced(
        tmp_path, monkeypatch, problem, whole, caplog):
    model, x, y = problem
    path = tmp_path / "progress.json"
    _killed(monkeypatch, problem, path, 2, seed=9)
    report = backup.run_owned(lambda p: zg.evaluate_robustness(
        model, (x, y), EPS, attack=ATTACK, backup_path=p, **PINNED_SETTINGS), str(path))
    assert _without_seconds(report) == _without_seconds(whole)
    assert "another evaluation (differs in: seed): evaluating afresh" in caplog.text
    assert not path.exists()


def test_a_progress_file_whose_content_does_not_fit_is_damaged(tmp_path, monkeypatch,
                                                                 problem):
    model, x, y = problem
    path = tmp_path / "progress.json"
    _killed(monkeypatch, problem, path, 3)
    saved = json.loads(path.read_text())
    for change in ({"worst_loss": saved["worst_loss"][:-1]}, {"robust": [len(x)]},
                   {"member": 7}, {"entries": []}, {"stage": "1"}):
        path.write_text(json.dumps({**saved, **change}))
        with pytest.raises(ValueError, match=r"progress.json is damaged"):
            zg.evaluate_robustness(model, (x, y), EPS, attack=ATTACK, backup_path=path,
                                   **PINNED_SETTINGS)


def test_a_damaged_progress_file_is_refused_in_one_line(tmp_path, problem):
    model, x, y = problem
    path = tmp_path / "progress.json"
    path.write_text('{"key": ')
    with pytest.raises(ValueError, match=r"progress.json is damaged .*; remove it") as error:
        zg.evaluate_robustness(model, (x, y), EPS, attack="pgd", backup_path=path,
                               **PINNED_SETTINGS)
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_zerograd_eval_backup_continues_a_killed_evaluation_and_refuses_another(
        tmp_path, monkeypatch, capsys):
    data = make_npz(tmp_path / "tiny.npz", n_test=24, classes=4)
    inputs, outputs = small_cnn((12, 12, 1), classes=4)
    model = zg.ZeroGradModel(inputs, outputs, epsilon=0.1)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    path = str(tmp_path / "model.keras")
    model.save(path)
    args = [path, "--dataset", data, "--attack", "pgd,autoattack", "--steps", "2",
            "--restarts", "1", "--apgd-steps", "2", "--apgd-targets", "2",
            "--square-queries", "3", "--verbose", "0", "--json", "-"]
    assert eval_program.main(args) == 0
    whole = json.loads(capsys.readouterr().out)

    backup = tmp_path / "progress.json"
    saves = []
    with monkeypatch.context() as patch:
        _recording_saves(patch, saves, kill_after=4)  # after APGD-CE
        with pytest.raises(Killed):
            eval_program.main([*args, "--backup", str(backup)])
    assert saves[-1] == (2, 0) and backup.exists()
    capsys.readouterr()
    saves.clear()
    with monkeypatch.context() as patch:
        _recording_saves(patch, saves)
        assert eval_program.main([*args, "--backup", str(backup)]) == 0
    assert saves[0] == (2, 1)
    assert _without_seconds(json.loads(capsys.readouterr().out)) == _without_seconds(whole)
    assert not backup.exists()

    with monkeypatch.context() as patch:
        _recording_saves(patch, [], kill_after=1)
        with pytest.raises(Killed):
            eval_program.main([*args, "--backup", str(backup)])
    capsys.readouterr()
    assert eval_program.main([*args, "--seed", "1", "--backup", str(backup)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zerograd-eval: error: --backup ") and "\n" not in err
    assert "another evaluation (differs in: seed)" in err and backup.exists()
