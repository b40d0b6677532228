import keras
import numpy as np
import pytest
import tensorflow as tf

from zerograd_tf import schedules


@pytest.mark.parametrize("total_steps", [1, 2, 7, 33, 100, 391])
def test_piecewise_is_keras_piecewise_constant_decay_with_the_reference_drops(total_steps):
    schedule = schedules.PiecewiseLR(0.2, total_steps=total_steps)
    assert isinstance(schedule, keras.optimizers.schedules.PiecewiseConstantDecay)
    for step in range(total_steps + 2):
        expected = 0.2 if step < 0.5 * total_steps else (
            0.02 if step < 0.75 * total_steps else 0.002)
        # The optimizer's step counter is an int64 tensor.
        value = float(schedule(tf.constant(step, tf.int64)))
        assert value == pytest.approx(expected), step


def test_piecewise_round_trips_through_its_config():
    schedule = schedules.PiecewiseLR(0.1, total_steps=40)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule))
    assert type(restored) is schedules.PiecewiseLR
    steps = tf.constant(np.arange(45), tf.int64)
    np.testing.assert_allclose([float(restored(s)) for s in steps],
                               [float(schedule(s)) for s in steps])
