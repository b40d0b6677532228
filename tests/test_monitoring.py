import keras
import numpy as np
import pytest

import zerograd_tf as zg
from zerograd_tf import monitoring


@pytest.mark.parametrize("pgd, fgsm, expected", [
    # Classic CO: PGD peaks then collapses, FGSM stays high.
    ([0.10, 0.15, 0.12, 0.03], [0.60, 0.80, 0.85, 0.89], True),
    # PGD falls below half its best, but FGSM falls too: divergence, not CO.
    ([0.40, 0.45, 0.10], [0.50, 0.55, 0.20], False),
    # A mild decline (above half the best) is not CO.
    ([0.25, 0.20, 0.15], [0.30, 0.35, 0.40], False),
    # Exactly half of the best is not below it.
    ([0.20, 0.10], [0.90, 0.90], False),
    # Never robust: best earlier PGD accuracy 0, or below the 5 % floor
    # (clean training: 0.002 -> 0.0 is no loss of robustness).
    ([0.0, 0.0, 0.0], [0.5, 0.7, 0.9], False),
    ([0.002, 0.0], [0.3, 0.4], False),
    ([0.05, 0.0], [0.3, 0.4], True),
    # A single measurement cannot show a drop.
    ([0.0], [0.9], False),
    # Recovery after an early dip: judged on the last value only.
    ([0.30, 0.02, 0.28], [0.40, 0.90, 0.45], False),
])
def test_co_rule(pgd, fgsm, expected):
    assert monitoring.catastrophic_overfitting(pgd, fgsm) is expected


def test_co_rule_arguments():
    with pytest.raises(ValueError, match="differ in length"):
        monitoring.catastrophic_overfitting([0.1, 0.2], [0.3])
    with pytest.raises(ValueError, match=r"`drop` must be in \(0, 1\)"):
        monitoring.catastrophic_overfitting([0.1, 0.2], [0.3, 0.4], drop=1.5)
    assert monitoring.catastrophic_overfitting([0.3, 0.2], [0.5, 0.5], drop=0.8)
    assert monitoring.catastrophic_overfitting([0.002, 0.0], [0.3, 0.4], min_best=0.001)


def test_attack_meter_matches_the_attacks():
    rng = np.random.default_rng(0)
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    x = rng.random((50, 6)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    meter = monitoring.AttackMeter(model, 0.1, pgd_steps=5, batch_size=16)
    result = meter(x, y, seed=3)
    assert result == meter(x, y, seed=3)
    clean = (np.argmax(model.predict(x, verbose=0), 1) == y).mean()
    fgsm_x = np.clip(x + zg.fgsm(model, x, y, 0.1)[0].numpy(), 0, 1)
    fgsm = (np.argmax(model.predict(fgsm_x, verbose=0), 1) == y).mean()
    assert result["clean_accuracy"] == pytest.approx(clean)
    assert result["fgsm_accuracy"] == pytest.approx(fgsm)
    assert result["pgd_accuracy"] <= result["clean_accuracy"]
