"""Whether this process is one of the package's programs, and loading the
library once it is.

`zerograd-train`, `zerograd-eval` and `zerograd-tune` answer `--help` and
option errors without importing TensorFlow. Their modules live inside the
package, so `zerograd_tf/__init__.py` runs first: it imports its public names
lazily (on first access) when `started_as_program()` is true, and eagerly
otherwise, so that a plain `import zerograd_tf` registers the Keras classes
that `keras.models.load_model` needs. After parsing, a program calls
`load_library()`, which does what the eager import does.

This module imports neither TensorFlow nor Keras.
"""

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


def load_library():
    """Imports the library as a plain `import zerograd_tf` does, and returns it.

    TensorFlow (through `zerograd_tf._env`) and every public name, which
    registers the package's Keras classes: a program calls it after parsing,
    before it loads or builds a model. Without lazy imports (not a program)
    everything is imported already and this costs nothing.

    Returns:
        The `zerograd_tf` module.
    """
    package = importlib.import_module("zerograd_tf")
    importlib.import_module("zerograd_tf._env")
    for name in package.__all__:
        getattr(package, name)
    return package
