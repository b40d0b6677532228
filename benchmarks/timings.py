"""How long the README's quick start and the test suite take on this machine.

    python benchmarks/timings.py                  # all three (the suite takes minutes)
    python benchmarks/timings.py --only quick_start fast_tests

`quick_start` runs `zerograd-train` with no options (what the README's quick
start runs) in a fresh temporary folder and records its wall time, the
final evaluation's seconds from the run's `report.json` and the evaluation
table it printed (the README shows it). `test_suite` runs
the README's test command, `python -m pytest -x -q -n auto`, from the repository
root and records its wall time, outcome (with the failed tests' lines) and the
command; `fast_tests` does the same for the fast tier,
`python -m pytest -m "not slow" -n auto`. Each entry is written to
`benchmarks/results/timings.json` with the machine, date and versions as
soon as it finishes (the other entries are kept), and `readme_tables.py`
rewrites the README's numbers from that file at once (the next part's test
run checks that they agree). Measure on a quiet machine:
other work on the same cores lengthens both.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from zerograd_tf.benchmarking.machine import machine_record  # noqa: E402
from zerograd_tf import io_utils  # noqa: E402

RESULTS = os.path.join(HERE, "results", "timings.json")
PARTS = ("quick_start", "test_suite", "fast_tests")


def quick_start():
    """Wall seconds of `zerograd-train` with no options, and its
    evaluation's seconds."""
    with tempfile.TemporaryDirectory(prefix="zerograd_quick_start_") as folder:
        start = time.perf_counter()
        # As the README runs it: the installed package.
        result = subprocess.run([sys.executable, "-m", "zerograd_tf.trainers.train"],
                                cwd=folder, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode:
            raise SystemExit(f"timings: zerograd-train failed:\n{result.stderr[-2000:]}")
        reports = [os.path.join(path, "report.json") for path, _, files in os.walk(folder)
                   if "report.json" in files]
        with open(reports[0]) as f:
            report = json.load(f)
    printed = result.stdout.splitlines()
    start = next(i for i, line in enumerate(printed) if line.startswith("APGD-CE-100"))
    end = next((i for i in range(start + 1, len(printed)) if not printed[i].startswith(" ")),
               len(printed))
    return {"seconds": seconds, "evaluation_seconds": report["seconds"],
            "robust_accuracy": report["robust_accuracy"], "printed": printed[start:end]}


# The README's two test commands (pytest's arguments): one worker per core.
# Whole files go to a worker (--dist loadfile): a module's fixtures are made
# once, and a file's tests never race each other.
TEST_COMMANDS = {"test_suite": ("-x", "-q", "-n", "auto", "--dist", "loadfile"),
                 "fast_tests": ("-m", "not slow", "-n", "auto", "--dist", "loadfile")}


def command_text(part):
    """The command line of a test part, as the README writes it."""
    return " ".join(["python -m pytest"] + [f'"{a}"' if " " in a else a
                                            for a in TEST_COMMANDS[part]])


def _pytest(part):
    """Wall seconds, outcome and command of one of `TEST_COMMANDS`, run in
    the repository."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", *TEST_COMMANDS[part]], cwd=ROOT,
                            capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return {"seconds": seconds, "passed": result.returncode == 0,
            # pytest's last line, without the "=====" banner it has without -q.
            "summary": lines[-1].strip("= ") if lines else "", "command": command_text(part),
            "failed": [line for line in lines if line.startswith("FAILED")]}


def test_suite():
    """The README's test command, `python -m pytest -x -q -n auto`."""
    return _pytest("test_suite")


def fast_tests():
    """The fast tier, `python -m pytest -m "not slow" -n auto`."""
    return _pytest("fast_tests")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    report = {}
    if os.path.exists(args.output):
        with open(args.output) as f:
            report = json.load(f)
    for part in args.only:
        print(f"timings: {part} ...", flush=True)
        entry = {**globals()[part](), "machine": machine_record()}
        report[part] = entry
        io_utils.write_json_atomic(args.output, report)
        print(f"timings: {part} took {entry['seconds']:.0f} s", flush=True)
        if os.path.abspath(args.output) == RESULTS:
            # The README's tables follow at once: the next part's test run
            # checks that they match this file.
            subprocess.run([sys.executable, os.path.join(HERE, "readme_tables.py")],
                           check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
