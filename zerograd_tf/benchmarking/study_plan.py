"""A study's settings, methods and seeds, read from a JSON file."""

import json
import os

import numpy as np

from zerograd_tf import datasets
from zerograd_tf.runs.config import RunConfig

# Keys of a setting in the plan file; `note` is prose for the reader.
_SETTING_KEYS = {"note", "dataset", "monitor_split", "test_from_held_out", "fields",
                 "method_fields"}
_PLAN_KEYS = {"description", "seeds", "settings", "methods", "methods_note"}


class StudyPlan:
    """The runs of a study: settings × methods × seeds, as data.

    A plan file is JSON: `seeds` (runs per method and setting), `settings`
    (name → `dataset`, a file name under the data folder; `monitor_split`,
    `"test"` or `"validation"`; `fields`, the `RunConfig` fields of the
    setting; optional `method_fields`, method → fields for that setting
    only; optional `test_from_held_out`, for data without a test split: the
    first N held-out examples become the test split) and `methods` (name →
    `RunConfig` fields). `description`, `note` and `methods_note` are prose.
    One run's configuration is the setting's fields, then the method's,
    then the setting's fields for that method, then the seed and the
    caller's overrides.

    Args:
        settings: dict, setting name → setting (as above).
        methods: dict, method name → `RunConfig` fields.
        seeds: int, runs per method and setting (seeds `0 .. seeds - 1`).
            Defaults to 5.
        description: str, what the study is. Defaults to `""`.

    Example:

    >>> from zerograd_tf.benchmarking.study_plan import StudyPlan
    >>> plan = StudyPlan(
    ...     settings={"mnist": {"dataset": "mnist10k.npz", "monitor_split": "test",
    ...                         "fields": {"model": "small_cnn", "epsilon": 0.25}}},
    ...     methods={"fgsm_rs": {"method": "fgsm_rs", "alpha": 2.0}}, seeds=2)
    >>> plan.runs()
    [('mnist', 'fgsm_rs', 0), ('mnist', 'fgsm_rs', 1)]
    >>> plan.fields("mnist", "fgsm_rs", seed=1)["alpha"]
    2.0
    """

    def __init__(self, settings, methods, seeds=5, description=""):
        if not isinstance(seeds, int) or seeds < 1:
            raise ValueError(f"seeds must be an integer >= 1, got {seeds!r}")
        for name, setting in settings.items():
            unknown = set(setting) - _SETTING_KEYS
            if unknown:
                raise ValueError(f"setting {name!r}: unknown keys {sorted(unknown)} "
                                 f"(valid: {sorted(_SETTING_KEYS)})")
            if setting.get("monitor_split", "test") not in ("test", "validation"):
                raise ValueError(f"setting {name!r}: monitor_split must be 'test' or "
                                 f"'validation', got {setting['monitor_split']!r}")
        self.settings = settings
        self.methods = methods
        self.seeds = seeds
        self.description = description

    @classmethod
    def from_file(cls, path):
        """The plan of a JSON file (see the class docstring)."""
        with open(path) as f:
            values = json.load(f)
        unknown = set(values) - _PLAN_KEYS
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)} "
                             f"(valid: {sorted(_PLAN_KEYS)})")
        return cls(values["settings"], values["methods"], values.get("seeds", 5),
                   values.get("description", ""))

    def runs(self, settings=None, methods=None, seeds=None):
        """`(setting, method, seed)` of every run, seed-major within a setting.

        Args:
            settings: names to include. Defaults to every setting.
            methods: names to include. Defaults to every method.
            seeds: runs per method. Defaults to the plan's `seeds`.
        """
        seeds = self.seeds if seeds is None else seeds
        return [(s, m, k) for s in (settings or self.settings) for k in range(seeds)
                for m in (methods or self.methods)]

    def _setting(self, setting):
        if setting not in self.settings:
            raise ValueError(f"setting must be one of {sorted(self.settings)}, got {setting!r}")
        return self.settings[setting]

    def fields(self, setting, method, seed, overrides=None):
        """The `RunConfig` fields of one run (before `resolved`).

        Args:
            setting: a setting name.
            method: a method name.
            seed: the run's seed.
            overrides: dict of fields that win over the plan's (e.g. from
                command-line flags). Defaults to none.
        """
        if method not in self.methods:
            raise ValueError(f"method must be one of {sorted(self.methods)}, got {method!r}")
        values = self._setting(setting)
        return {**values["fields"], **self.methods[method],
                **values.get("method_fields", {}).get(method, {}), "seed": seed,
                "val_pgd_steps": 0, **(overrides or {})}

    def run_config(self, setting, method, seed, data, overrides=None):
        """The resolved `RunConfig` of one run on loaded `data` (a
        `zerograd_tf.datasets.ImageData`)."""
        fields = self.fields(setting, method, seed, overrides)
        return RunConfig(**{"dataset": data.name, **fields}).resolved(data)

    def dataset_path(self, setting, data_dir):
        """The setting's data file under `data_dir`; the MNIST digits
        shipped with the package when `mnist10k.npz` is not there."""
        name = self._setting(setting)["dataset"]
        path = os.path.join(data_dir, name)
        if name == "mnist10k.npz" and not os.path.exists(path):
            return datasets.embedded_path()  # the same 10,000 digits
        return path

    def load_data(self, setting, dataset, overrides=None, train_size=None):
        """The setting's data split as its runs use it.

        Args:
            setting: a setting name.
            dataset: an `.npz` path or TFDS name (e.g. `dataset_path(...)`).
            overrides: fields that win over the plan's (`val_size` is read).
                Defaults to none.
            train_size: keep only the first N training examples (smoke
                tests). Defaults to all.

        Returns:
            A `zerograd_tf.datasets.ImageData`, split with seed 0.
        """
        values = self._setting(setting)
        val_size = {**values["fields"], **(overrides or {})}.get("val_size", RunConfig.val_size)
        data = datasets.load_image_data(dataset, val_size=val_size, seed=0)
        test_size = values.get("test_from_held_out")
        if test_size and not data.has_test:
            # Data without a test split: the first held-out examples are the
            # test examples, the rest the held-out split of CO checks.
            data.x_test, data.y_test = data.x_val[:test_size], data.y_val[:test_size]
            data.x_val, data.y_val = data.x_val[test_size:], data.y_val[test_size:]
        if train_size:
            data.x_train, data.y_train = data.x_train[:train_size], data.y_train[:train_size]
        return data

    def monitor_and_evaluation(self, setting, data, monitor_size=500, final_size=None):
        """`((x, y) monitored after each epoch, (x, y) of the final
        evaluation)`, in [0, 1] float32.

        Args:
            setting: a setting name.
            data: the setting's `ImageData` (`load_data`).
            monitor_size: examples monitored per epoch. Defaults to 500.
            final_size: evaluate the first N examples only. Defaults to all.
        """
        x_eval, y_eval, _ = data.evaluation_split()
        if (self._setting(setting).get("monitor_split") == "validation"
                and data.x_val is not None and len(data.x_val)):
            x_mon, y_mon = data.x_val, data.y_val
        else:
            x_mon, y_mon = x_eval, y_eval
        final_size = final_size or len(x_eval)
        return ((_unit(x_mon[:monitor_size]), y_mon[:monitor_size]),
                (_unit(x_eval[:final_size]), y_eval[:final_size]))


def _unit(images):
    return images.astype(np.float32) / 255 if images.dtype == np.uint8 else images
