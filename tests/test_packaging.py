"""`pip install` puts no generic top-level names into site-packages, and the
programs run from a wheel install (and from the editable one the suite uses)."""

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile

import pytest

from zerograd_tf._programs import PROGRAMS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_the_wheel_installs_only_the_package_and_its_programs_run(tmp_path):
    # From a copy without build/ (a stale build/lib would hide a package
    # missing from setup.cfg).
    source = tmp_path / "source"
    anywhere = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__")

    def ignore(folder, names):
        # The repository's own runs/ (training outputs), not zerograd_tf/runs.
        top = {"runs", "benchmarks", "docs", "site"} if folder == str(ROOT) else set()
        return set(anywhere(folder, names)) | (top & set(names))

    shutil.copytree(ROOT, source, ignore=ignore)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(tmp_path / "dist"), str(source)], check=True,
                   timeout=300)
    (wheel,) = (tmp_path / "dist").iterdir()
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"zerograd_tf", wheel.name.split("-")[0] + "-"
                    + wheel.name.split("-")[1] + ".dist-info"}, tops
    assert "zerograd_tf/trainers/train.py" in names
    assert "zerograd_tf/tuning/search.py" in names
    assert "zerograd_tf/resources/mnist10k.npz" in names
    # Every subpackage of the source tree is in the wheel.
    source = os.path.join(ROOT, "zerograd_tf")
    for folder, _, files in os.walk(source):
        if "__init__.py" in files:
            relative = os.path.relpath(folder, ROOT).replace(os.sep, "/")
            assert f"{relative}/__init__.py" in names, relative
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for program, module in PROGRAMS.items():
        assert f"{program} = {module}:main" in entry_points
    # Installed into a new venv that sees the packages of the interpreter
    # running the tests (TensorFlow and the rest) through a .pth file, not
    # through --system-site-packages: from inside a user's venv the "system"
    # is the base interpreter, which need not have TensorFlow. A .pth line
    # adds a folder to sys.path without running that folder's own .pth
    # files, so the editable install of the checkout stays out of sight.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    (venv_site,) = (venv / "lib").glob("python*/site-packages")
    visible = dict.fromkeys(p for p in (*site.getsitepackages(), site.getusersitepackages())
                            if os.path.isdir(p))
    (venv_site / "running_interpreter.pth").write_text("\n".join(visible) + "\n")
    python = venv / "bin" / "python"
    # Without PYTHONPATH: a repository on it shows pip the editable install's
    # metadata ("already satisfied") and the programs the repository's code.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--quiet", str(wheel)],
                   check=True, timeout=300, env=env)
    where = subprocess.run([str(python), "-c", "import zerograd_tf.trainers as t; print(t.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert str(venv) in where.stdout, where.stdout + where.stderr
    for program, module in PROGRAMS.items():
        for command in ([str(venv / "bin" / program), "--help"],
                        [str(python), "-m", module, "--help"]):
            result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True,
                                    text=True, timeout=120)
            assert result.returncode == 0, result.stderr[-2000:]
            assert f"usage: {program}" in result.stdout
    # --help needs no TensorFlow; a real evaluation loads the library (and
    # registers its Keras classes) from the wheel's copy, with TensorFlow
    # from the running interpreter.
    import keras

    import zerograd_tf as zg

    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(inputs))
    zg.FGSMModel(inputs, outputs, epsilon=0.1, seed=0).save(tmp_path / "model.keras")
    result = subprocess.run(
        [str(venv / "bin" / "zerograd-eval"), "model.keras", "--attack", "pgd", "--steps", "1",
         "--restarts", "1", "--limit", "16", "--json", "-"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["num_examples"] == 16 and 0 <= report["robust_accuracy"] <= 1


def test_every_public_class_and_function_has_an_example_and_its_defaults():
    """Keras-style docstrings for the public API (`zg.`, `zg.callbacks`,
    `zg.layers` and the `__all__` of the modules users import directly):
    an `Example:` section (run as a doctest in CI) and
    "Defaults to ..." for arguments with defaults (or a pointer to the base
    class that documents them)."""
    import inspect
    import re

    import zerograd_tf as zg
    from zerograd_tf import architectures, callbacks, datasets, distribution, layers, monitoring

    missing = []
    for namespace in (zg, callbacks, layers, architectures, distribution, datasets, monitoring):
        for name in namespace.__all__:
            obj = getattr(namespace, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            doc = re.sub(r"\s+", " ", inspect.getdoc(obj) or "")
            signature = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
            defaults = [p for p in signature.parameters.values()
                        if p.default is not inspect.Parameter.empty]
            if "Example" not in doc:
                missing.append(f"{name}: Example")
            if defaults and "Defaults to" not in doc and "see `AdversarialModel`" not in doc:
                missing.append(f"{name}: Defaults to")
    assert not missing, missing
