"""Whether this process is one of the package's programs, and loading the
library once it is.

`zerograd-train`, `zerograd-eval` and `zerograd-tune` answer `--help` and
option errors without importing TensorFlow. Their modules live inside the
package, so `zerograd_tf/__init__.py` runs first: it imports its public names
lazily (on first access) when `started_as_program()` is true, and eagerly
otherwise, so that a plain `import zerograd_tf` registers the Keras classes
that `keras.models.load_model` needs. After parsing, a program calls
`load_library()`, which does what the eager import does.

The process-wide settings are the programs' own, made in their `main`
(`prepare_process`, `seed_process`): a library import changes none of them.

This module imports neither TensorFlow nor Keras.
"""

import contextlib
import importlib
import os
import sys

# The console scripts (setup.cfg) and the modules that `python -m` runs.
PROGRAMS = {
    "zerograd-train": "zerograd_tf.trainers.train",
    "zerograd-eval": "zerograd_tf.trainers.evaluate",
    "zerograd-tune": "zerograd_tf.tuning.search",
}
# Interpreter options whose value may be the next argument (`-X importtime`).
_OPTIONS_WITH_VALUES = "XW"


def _module_of_python_command(orig_argv):
    """The module of a `python [options] -m module ...` command line, or None."""
    args = list(orig_argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg in ("-", "--"):
            return None  # a script, standard input: not -m
        if arg.startswith("--"):
            i += 2 if arg == "--check-hash-based-pycs" else 1
            continue
        flags = arg[1:]
        for j, flag in enumerate(flags):
            rest = flags[j + 1:]
            if flag in "cm":
                value = rest or (args[i + 1] if i + 1 < len(args) else None)
                return value if flag == "m" else None
            if flag in _OPTIONS_WITH_VALUES:
                i += 0 if rest else 1
                break
        i += 1
    return None


def started_as_program(argv=None, orig_argv=None):
    """Whether this process was started as `zerograd-train`, `-eval` or `-tune`.

    True for a console script whose `argv[0]` is named after a program
    (`/usr/bin/zerograd-train`, `zerograd-train.exe`) and for `python -m`
    with a program's module (`python -X importtime -m
    zerograd_tf.trainers.train --help`); False for everything else:
    `python -c`, scripts, notebooks, pytest, other `-m` modules.

    Args:
        argv: the arguments to look at. Defaults to `sys.argv`.
        orig_argv: the interpreter's own command line. Defaults to
            `sys.orig_argv` (Python >= 3.10; while `python -m` imports the
            package, `sys.argv[0]` is only `"-m"`).

    Returns:
        A bool.

    Examples:
        >>> started_as_program(["/venv/bin/zerograd-eval", "model.keras"], [])
        True
        >>> started_as_program(["-m"], ["python3", "-X", "importtime", "-m",
        ...                             "zerograd_tf.tuning.search", "--help"])
        True
        >>> started_as_program(["-c"], ["python", "-c", "import zerograd_tf", "-m",
        ...                             "zerograd_tf.trainers.train"])
        False
        >>> started_as_program(["train.py"], ["python", "train.py"])
        False
    """
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if argv and argv[0]:
        name = os.path.basename(argv[0])
        if name.lower().endswith(".exe"):
            name = name[:-4]
        if name in PROGRAMS:
            return True
    return _module_of_python_command(orig_argv) in PROGRAMS.values()


def prepare_process(environ=None):
    """The programs' environment: Keras' TensorFlow backend, a quiet TensorFlow.

    A program's `main` calls it first, before TensorFlow is imported. Values
    the user set are kept (`setdefault`).

    Args:
        environ: the environment to change. Defaults to `os.environ`.

    Examples:
        >>> environ = {"TF_CPP_MIN_LOG_LEVEL": "0"}
        >>> prepare_process(environ)
        >>> sorted(environ.items())
        [('KERAS_BACKEND', 'tensorflow'), ('TF_CPP_MIN_LOG_LEVEL', '0')]
    """
    environ = os.environ if environ is None else environ
    environ.setdefault("KERAS_BACKEND", "tensorflow")
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def seed_process(seed):
    """Seeds a program's global generators (Python, NumPy, TensorFlow).

    The library takes explicit seeds; a program seeds the rest of its process
    (`keras.utils.set_random_seed`) after parsing, before it trains.

    Args:
        seed: an integer >= 0.
    """
    import keras

    keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def _muted_stderr():
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (notebooks)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _import_tensorflow_quietly():
    """Imports TensorFlow with standard error muted, unless it asked to log.

    TensorFlow's shared libraries log a few INFO lines (oneDNN, CUDA
    probing) before absl logging is initialised, and those ignore
    `TF_CPP_MIN_LOG_LEVEL` (an abseil limitation). A program mutes them, at
    the file-descriptor level and during the import only, unless the user
    asked for them (`TF_CPP_MIN_LOG_LEVEL=0`). The import and the device
    probe, but no op: running one would initialise TensorFlow's context,
    after which `MultiWorkerMirroredStrategy` can no longer be made.
    """
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") == "0":
        return
    with _muted_stderr():
        import tensorflow

        tensorflow.config.list_physical_devices()


def load_library():
    """Imports the library as a plain `import zerograd_tf` does, and returns it.

    TensorFlow (quietly, see `_import_tensorflow_quietly`) and every public name, which
    registers the package's Keras classes: a program calls it after parsing,
    before it loads or builds a model. Without lazy imports (not a program)
    everything is imported already and this costs nothing.

    Returns:
        The `zerograd_tf` module.
    """
    _import_tensorflow_quietly()
    package = importlib.import_module("zerograd_tf")
    importlib.import_module("zerograd_tf._env")
    for name in package.__all__:
        getattr(package, name)
    return package
