"""The programs' lazy `import zerograd_tf`, and the light names their
options are checked against.

`zerograd_tf/__init__.py` imports everything at once for library users
(which registers the Keras classes that `keras.models.load_model` needs)
and lazily, on first access, for the package's own programs (so that
`--help` and option errors answer without TensorFlow).
"""

import json
import os
import subprocess
import sys

import pytest

import zerograd_tf as zg
from zerograd_tf import _names, _programs
from zerograd_tf import architectures, datasets, distribution, evaluation, schedules

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Prints what `import zerograd_tf` gives: every public name, the submodules
# an eager import leaves as attributes, and whether TensorFlow came with it.
_DESCRIBE = r"""
import json, sys, types
{setup}
import zerograd_tf as zg
tensorflow_on_import = "tensorflow" in sys.modules

def describe(value):
    if isinstance(value, types.ModuleType):
        return "module " + value.__name__
    if hasattr(value, "__qualname__"):
        return value.__module__ + "." + value.__qualname__
    return repr(value)

names = {name: describe(getattr(zg, name)) for name in zg.__all__}
names["__version__"] = zg.__version__
modules = sorted(name for name, value in vars(zg).items()
                 if isinstance(value, types.ModuleType) and not name.startswith("_"))
{after}
import keras
print(json.dumps({"tensorflow_on_import": tensorflow_on_import, "names": names,
                  "modules": modules, "dir": dir(zg),
                  "registered": sorted(keras.saving.get_custom_objects())}))
"""


def _describe(setup="", after=""):
    code = _DESCRIBE.replace("{setup}", setup).replace("{after}", after)
    env = {**os.environ, "PYTHONPATH": ROOT, "KERAS_BACKEND": "tensorflow",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("argv, orig_argv, expected", [
    (["/venv/bin/zerograd-train", "--help"], ["/venv/bin/python", "/venv/bin/zerograd-train"],
     True),
    (["venv/Scripts/zerograd-tune.exe"], [], True),
    (["-m"], ["python", "-m", "zerograd_tf.trainers.evaluate", "model.keras"], True),
    (["-m"], ["python", "-X", "importtime", "-W", "error", "-m",
              "zerograd_tf.tuning.search"], True),
    (["-m"], ["python", "-Im", "zerograd_tf.trainers.train"], True),
    (["-m"], ["python", "-mzerograd_tf.trainers.train"], True),
    (["-m"], ["python", "-m", "pytest", "-m", "zerograd_tf.trainers.train"], False),
    (["-m"], ["python", "-m", "zerograd_tf.trainers.options"], False),
    (["-c"], ["python", "-c", "import zerograd_tf", "-m", "zerograd_tf.trainers.train"],
     False),
    (["train.py"], ["python", "train.py", "-m", "zerograd_tf.trainers.train"], False),
    (["zerograd-train-wrapper"], ["python", "zerograd-train-wrapper"], False),
    ([""], ["python"], False),
    ([], [], False),
])
def test_started_as_program(argv, orig_argv, expected):
    assert _programs.started_as_program(argv, orig_argv) is expected


def test_this_process_is_not_a_program_and_imported_everything():
    assert not _programs.started_as_program()
    assert set(zg._OWNERS) == set(zg.__all__)
    assert all(name in vars(zg) for name in zg.__all__)
    assert _programs.load_library() is zg


@pytest.mark.slow
def test_lazy_mode_gives_what_the_eager_import_gives():
    eager = _describe()
    # A program: nothing imported until used; then every name of `__all__`
    # and every submodule the eager import leaves as an attribute resolves
    # to the same object, and `load_library` registers the same Keras classes.
    touch = "".join(f"zg.{name}; " for name in eager["modules"])
    lazy = _describe(setup="sys.argv[0] = '/venv/bin/zerograd-train'",
                     after=touch + "modules = sorted(name for name, value in vars(zg).items() "
                           "if isinstance(value, types.ModuleType) and name[0] != '_'); "
                           "from zerograd_tf import _programs; _programs.load_library()")
    assert eager["tensorflow_on_import"] and not lazy["tensorflow_on_import"]
    assert lazy["names"] == eager["names"]
    assert set(eager["modules"]) <= set(lazy["modules"])
    assert {"callbacks", "models", "attacks"} <= set(eager["modules"])
    assert set(zg.__all__) <= set(lazy["dir"])
    zerograd = [name for name in eager["registered"] if name.startswith("zerograd_tf>")]
    assert zerograd and set(zerograd) <= set(lazy["registered"])


def test_the_light_names_are_the_registries_own():
    assert evaluation.ATTACKS is _names.ATTACKS and zg.ATTACKS is _names.ATTACKS
    assert architectures.ARCHITECTURES is _names.ARCHITECTURES
    assert datasets.DEFAULT_DATASET is _names.DEFAULT_DATASET
    assert datasets.TFDS_DATASETS is _names.TFDS_DATASETS
    assert schedules.LR_SCHEDULES is _names.LR_SCHEDULES
    assert distribution.STRATEGIES is _names.STRATEGIES
    assert datasets.DataError is _names.DataError
    assert repr(datasets.DataError) == "<class 'zerograd_tf.datasets.DataError'>"
    # ... and every name works there.
    for name in _names.ATTACKS:
        assert evaluation.attack_members(name)
    for name in _names.LR_SCHEDULES:
        assert schedules.learning_rate_schedule(name, 0.1, 10) is not None
    for name in _names.ARCHITECTURES:
        model = architectures.build_classifier(name, (8, 8, 1), 3, width=1, depth=10)
        assert model.output_shape == (None, 3)
