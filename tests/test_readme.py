"""The README's Python API example runs as written (on tiny data)."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks(marker):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if marker in b]


def test_quickstart_snippet_runs():
    (block,) = _python_blocks("zg.ZeroGradModel(inputs, outputs")
    namespace = {}
    exec(compile(block, str(README), "exec"), namespace)
    report = namespace["report"]
    assert set(report) >= {"clean_accuracy", "robust_accuracy", "num_examples"}
    assert 0 <= report["robust_accuracy"] <= report["clean_accuracy"] <= 1
    assert report["steps"] == 50 and report["restarts"] == 10
