"""A study's settings, methods and seeds, read from a JSON file."""

import json
import os

import numpy as np

from zerograd_tf import datasets
from zerograd_tf.runs.config import RunConfig

# Keys of a setting in the plan file; `note` is prose for the reader.
_SETTING_KEYS = {"note", "dataset", "monitor_split", "test_from_held_out", "fields",
                 "method_fields", "seeds", "first_seed", "methods", "final_split"}
_PLAN_KEYS = {"description", "seeds", "settings", "methods", "methods_note", "reuse",
              "choices"}
_REUSE_KEYS = {"plan", "methods", "note"}


class StudyPlan:
    """The runs of a study: settings × methods × seeds, as data.

    A plan file is JSON: `seeds` (runs per method and setting), `settings`
    (name → `dataset`, a file name under the data folder; `monitor_split`,
    `"test"` or `"validation"`; `fields`, the `RunConfig` fields of the
    setting; optional `method_fields`, method → fields for that setting
    only; optional `test_from_held_out`, for data without a test split: the
    first N held-out examples become the test split; optional `seeds`, this
    setting's runs per method; optional `first_seed`, its first seed (0);
    optional `methods`, the only methods run in this setting; optional
    `final_split`, `"test"` or `"validation"`, the split of the final
    evaluation: development runs that choose a recipe before a study
    evaluate on held-out data, never on the test split) and `methods`
    (name → `RunConfig` fields). An optional
    `reuse` names another plan file (`plan`, beside this one) and the
    `methods` whose runs this plan takes from that plan's results instead of
    training them again, where the other plan has the same run with the same
    fields. An optional `choices` (development plans) maps what is chosen
    to its candidate methods, in tie-breaking order
    (`study_choices.development_choice`). `description`, `note` and
    `methods_note` are prose.
    One run's configuration is the setting's fields, then the method's,
    then the setting's fields for that method, then the seed and the
    caller's overrides.

    Args:
        settings: dict, setting name → setting (as above).
        methods: dict, method name → `RunConfig` fields.
        seeds: int, runs per method and setting (seeds `0 .. seeds - 1`).
            Defaults to 5.
        description: str, what the study is. Defaults to `""`.
        reuse: `(other StudyPlan, method names)` whose runs are taken over
            (see `reused_from`), or `None`. Defaults to `None`.
        choices: dict, what is chosen → candidate method names. Defaults to
            none.

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

    def __init__(self, settings, methods, seeds=5, description="", reuse=None, choices=None):
        if not isinstance(seeds, int) or seeds < 1:
            raise ValueError(f"seeds must be an integer >= 1, got {seeds!r}")
        for name, setting in settings.items():
            count = setting.get("seeds", 1)
            if not isinstance(count, int) or count < 1:
                raise ValueError(f"setting {name!r}: seeds must be an integer >= 1, "
                                 f"got {count!r}")
            unknown = set(setting.get("methods", ())) - set(methods)
            if unknown:
                raise ValueError(f"setting {name!r}: methods {sorted(unknown)} are not "
                                 f"among the plan's methods")
            unknown = set(setting) - _SETTING_KEYS
            if unknown:
                raise ValueError(f"setting {name!r}: unknown keys {sorted(unknown)} "
                                 f"(valid: {sorted(_SETTING_KEYS)})")
            for key in ("monitor_split", "final_split"):
                if setting.get(key, "test") not in ("test", "validation"):
                    raise ValueError(f"setting {name!r}: {key} must be 'test' or "
                                     f"'validation', got {setting[key]!r}")
            first = setting.get("first_seed", 0)
            if not isinstance(first, int) or first < 0:
                raise ValueError(f"setting {name!r}: first_seed must be an integer >= 0, "
                                 f"got {first!r}")
        self.settings = settings
        self.methods = methods
        self.seeds = seeds
        self.description = description
        if reuse is not None and set(reuse[1]) - set(methods):
            raise ValueError(f"reuse: methods {sorted(set(reuse[1]) - set(methods))} are "
                             f"not among the plan's methods")
        self.reuse = reuse
        choices = dict(choices or {})
        for what, names in choices.items():
            if not names or set(names) - set(methods):
                raise ValueError(f"choices: {what!r} must list methods of the plan, "
                                 f"got {names!r}")
        self.choices = choices
        self.name = None  # the file's name without .json, when read from one

    @classmethod
    def from_file(cls, path):
        """The plan of a JSON file (see the class docstring)."""
        with open(path) as f:
            values = json.load(f)
        unknown = set(values) - _PLAN_KEYS
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)} "
                             f"(valid: {sorted(_PLAN_KEYS)})")
        reuse = values.get("reuse")
        if reuse is not None:
            unknown = set(reuse) - _REUSE_KEYS
            if unknown:
                raise ValueError(f"{path}: reuse: unknown keys {sorted(unknown)} "
                                 f"(valid: {sorted(_REUSE_KEYS)})")
            other = os.path.join(os.path.dirname(path), reuse["plan"])
            reuse = (cls.from_file(other), list(reuse["methods"]))
        plan = cls(values["settings"], values["methods"], values.get("seeds", 5),
                   values.get("description", ""), reuse, values.get("choices"))
        plan.name = os.path.splitext(os.path.basename(path))[0]
        return plan

    def runs(self, settings=None, methods=None, seeds=None):
        """`(setting, method, seed)` of every run, seed-major within a setting.

        Args:
            settings: names to include. Defaults to every setting.
            methods: names to include (of those a setting runs). Defaults to
                every method.
            seeds: runs per method. Defaults to each setting's `seeds`, else
                the plan's; they start at the setting's `first_seed`.
        """
        runs = []
        for s in settings or self.settings:
            setting = self._setting(s)
            count = seeds if seeds is not None else setting.get("seeds", self.seeds)
            first = setting.get("first_seed", 0)
            names = [m for m in (methods or self.methods)
                     if m in setting.get("methods", self.methods)]
            runs += [(s, m, k) for k in range(first, first + count) for m in names]
        return runs

    def reused_from(self, setting, method, seed, overrides=None):
        """The plan whose run this one takes over, or `None` (train it).

        A run is taken over when `method` is among `reuse`'s methods and the
        other plan has the same run with the same fields (`fields`, this
        plan's with `overrides`, the other's as planned).

        Args:
            setting: a setting name.
            method: a method name.
            seed: the run's seed.
            overrides: fields that win over the plan's. Defaults to none.
        """
        if self.reuse is None or method not in self.reuse[1]:
            return None
        other = self.reuse[0]
        if (setting not in other.settings or method not in other.methods
                or (setting, method, seed) not in other.runs([setting], [method])):
            return None
        # The other plan's runs were trained without this call's overrides.
        same = other.fields(setting, method, seed) == self.fields(setting, method, seed,
                                                                  overrides)
        return other if same else None

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
        evaluation)`, in [0, 1] float32 (the setting's `monitor_split` and
        `final_split`).

        Args:
            setting: a setting name.
            data: the setting's `ImageData` (`load_data`).
            monitor_size: examples monitored per epoch. Defaults to 500.
            final_size: evaluate the first N examples only. Defaults to all.
        """
        values = self._setting(setting)
        x_eval, y_eval, _ = data.evaluation_split()
        held_out = data.x_val is not None and len(data.x_val)
        x_mon, y_mon = x_eval, y_eval
        if values.get("monitor_split") == "validation" and held_out:
            x_mon, y_mon = data.x_val, data.y_val
        if values.get("final_split") == "validation":
            if not held_out:
                raise ValueError(f"setting {setting!r}: final_split 'validation' needs a "
                                 "held-out split (val_size > 0)")
            x_eval, y_eval = data.x_val, data.y_val
        final_size = final_size or len(x_eval)
        return ((_unit(x_mon[:monitor_size]), y_mon[:monitor_size]),
                (_unit(x_eval[:final_size]), y_eval[:final_size]))


def _unit(images):
    return images.astype(np.float32) / 255 if images.dtype == np.uint8 else images
