"""`HistoryWriter`: the epoch logs in a JSON file, written after every epoch."""

import keras

from zerograd_tf import io_utils


@keras.saving.register_keras_serializable(package="zerograd_tf")
class HistoryWriter(keras.callbacks.Callback):
    """Writes the epoch logs to a JSON file after every epoch, resumably.

    The file holds `{"epoch": [...], "<metric>": [...]}` like
    `History.history`. A resumed run (whose `fit` starts at a later
    `initial_epoch`) keeps the entries of earlier epochs and replaces those
    of epochs run again, so the file always has one entry per finished epoch.
    Writes are atomic (a temporary file, then `os.replace`).

    Args:
        path: the JSON file.

    Examples:
        >>> import json, os, tempfile
        >>> import numpy as np, keras, zerograd_tf as zg
        >>> x = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
        >>> y = np.arange(32) % 2
        >>> inputs = keras.Input((8, 8, 1))
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
        >>> model = zg.FGSMModel(inputs, outputs, epsilon=0.1, random_init=True, seed=0)
        >>> model.compile(optimizer="adam",
        ...               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> path = os.path.join(tempfile.mkdtemp(), "history.json")
        >>> history = model.fit(x, y, epochs=2, batch_size=16, verbose=0,
        ...                     callbacks=[zg.callbacks.HistoryWriter(path)])
        >>> with open(path) as f:
        ...     json.load(f)["epoch"]
        [1, 2]
    """

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.epochs = {}

    def on_train_begin(self, logs=None):
        self.epochs = {}
        for record in io_utils.load_history_records(self.path):
            self.epochs[record["epoch"]] = record

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": epoch + 1}
        record.update({k: io_utils.to_builtin(v) for k, v in (logs or {}).items()})
        optimizer = getattr(self.model, "optimizer", None)
        if "learning_rate" not in record and optimizer is not None:
            record["learning_rate"] = io_utils.to_builtin(
                keras.ops.convert_to_numpy(optimizer.learning_rate))
        self.epochs[epoch + 1] = record
        records = [self.epochs[e] for e in sorted(self.epochs) if e <= epoch + 1]
        io_utils.write_json_atomic(self.path, io_utils.records_to_history(records))

    def get_config(self):
        return {"path": self.path}
