"""Every module has one import name: the programs' folders (`trainers/`,
`tuning/`) are `zerograd_tf.trainers` / `zerograd_tf.tuning` only, and their
doctests run under that name (setup.cfg's testpaths leave the folders out)."""

import doctest
import importlib
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAM_MODULES = ("zerograd_tf.trainers", "zerograd_tf.trainers.train",
                   "zerograd_tf.trainers.evaluate", "zerograd_tf.tuning",
                   "zerograd_tf.tuning.search")


@pytest.mark.parametrize("name", ["trainers", "trainers.config", "trainers.train",
                                  "tuning", "tuning.search"])
def test_a_program_folder_cannot_be_imported_by_its_folder_name(name):
    result = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ") and "'zerograd_tf.t" in last, last


def test_the_library_classes_have_one_module():
    from zerograd_tf.runs import config, options, training

    assert options.ConfigError is config.ConfigError
    assert training.options is options
    assert not any(name.split(".")[0] in ("trainers", "tuning") for name in sys.modules)


def test_the_tuning_search_function_and_module_do_not_collide():
    from zerograd_tf.runs import tuning
    from zerograd_tf.tuning import search

    assert callable(tuning.search) and hasattr(search, "main")
    assert importlib.import_module("zerograd_tf.tuning.search") is search


@pytest.mark.parametrize("name", PROGRAM_MODULES)
def test_program_doctests_by_import_name(name):
    module = importlib.import_module(name)
    assert module.__name__ == name
    failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failed == 0
