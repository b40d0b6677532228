import json

import keras
import numpy as np
import pytest

from zerograd_tf import architectures, callbacks, schedules
import zerograd_tf as zg


def test_cyclic_schedule_peaks_at_mid_training():
    schedule = schedules.CyclicLR(0.2, total_steps=100)
    values = [float(schedule(s)) for s in range(101)]
    assert values[0] == 0 and values[100] == pytest.approx(0, abs=1e-7)
    assert int(np.argmax(values)) == 50 and max(values) == pytest.approx(0.2)
    assert values[25] == pytest.approx(0.1) and values[75] == pytest.approx(0.1)
    restored = schedules.CyclicLR.from_config(schedule.get_config())
    assert float(restored(30)) == pytest.approx(values[30])


def test_piecewise_schedule():
    schedule = schedules.PiecewiseLR(0.1, total_steps=100)
    assert [float(schedule(s)) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    with pytest.raises(ValueError, match="unknown lr schedule 'cosine'"):
        schedules.learning_rate_schedule("cosine", 0.1, 10)


@pytest.mark.parametrize("name, shape, options", [
    ("small_cnn", (28, 28, 1), {}),
    ("conv3", (32, 32, 3), {}),
    ("preact_resnet18", (32, 32, 3), {}),
    ("wide_resnet", (32, 32, 3), {"depth": 10, "width": 1}),
])
def test_architectures_build_logit_models(name, shape, options):
    model = architectures.build_classifier(name, shape, 7, mean=[0.5] * shape[-1],
                                           std=[0.25] * shape[-1], **options)
    x = np.random.default_rng(0).random((2, *shape)).astype(np.float32)
    out = model(x)
    assert out.shape == (2, 7)
    assert model.layers[1].name == "normalize"


def test_architecture_errors():
    with pytest.raises(ValueError, match="unknown model 'vgg'.*small_cnn"):
        architectures.build_classifier("vgg", (8, 8, 1), 2)
    with pytest.raises(ValueError, match="6n \\+ 4"):
        architectures.build_classifier("wide_resnet", (8, 8, 1), 2, depth=12)


def test_history_writer_keeps_one_entry_per_epoch(tmp_path):
    path = str(tmp_path / "history.json")
    writer = callbacks.HistoryWriter(path)
    writer.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    writer.on_train_begin()
    for epoch in range(3):
        writer.on_epoch_end(epoch, {"loss": 3.0 - epoch})
    # A resumed run repeats epoch 3 (index 2) and continues.
    resumed = callbacks.HistoryWriter(path)
    resumed.set_model(writer.model)
    resumed.on_train_begin()
    resumed.on_epoch_end(2, {"loss": 0.5})
    resumed.on_epoch_end(3, {"loss": 0.25})
    history = json.loads(open(path).read())
    assert history["epoch"] == [1, 2, 3, 4]
    assert history["loss"] == [3.0, 2.0, 0.5, 0.25]


def test_epoch_checkpoint_survives_a_torn_swap(tmp_path):
    inputs = keras.Input((3,))
    model = zg.ZeroGradModel(inputs, keras.layers.Dense(2)(inputs), epsilon=0.1, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)  # as after a trained epoch
    checkpoint = callbacks.EpochCheckpoint(str(tmp_path / "ckpt"))
    checkpoint.set_model(model)
    assert checkpoint.restore(model) == 0 and not checkpoint.exists()
    checkpoint.on_epoch_end(0)
    saved = [w.copy() for w in model.get_weights()]
    # A kill in the middle of the next swap: 'latest' moved away, new one staged.
    (tmp_path / "ckpt" / "latest").rename(tmp_path / "ckpt" / "previous")
    (tmp_path / "ckpt" / "staging").mkdir()
    model.set_weights([w + 1 for w in saved])
    assert checkpoint.restore(model) == 1
    for a, b in zip(model.get_weights(), saved):
        np.testing.assert_array_equal(a, b)
