"""The README's Python API example runs as written (on tiny data)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks(marker):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if marker in b]


@pytest.mark.slow
def test_quickstart_snippet_runs():
    (block,) = _python_blocks("zg.ZeroGradModel(inputs, outputs")
    namespace = {}
    exec(compile(block, str(README), "exec"), namespace)
    report = namespace["report"]
    assert set(report) >= {"clean_accuracy", "robust_accuracy", "num_examples"}
    assert 0 <= report["robust_accuracy"] <= report["clean_accuracy"] <= 1
    assert [a["name"] for a in report["attacks"]] == ["apgd-ce", "apgd-t", "square"]


def test_generated_tables_match_their_result_files():
    """Every `<!-- generated: ... -->` table of the README and the docs
    equals what its result file gives."""
    import sys

    sys.path.insert(0, str(README.parent))
    from benchmarks import readme_tables

    texts = {path: pathlib.Path(path).read_text() for path in readme_tables.DOCUMENTS}
    assert "<!-- generated: robust_eval -->" in texts[readme_tables.README]
    assert "<!-- generated: quick_start_output -->" in texts[readme_tables.README]
    assert "<!-- generated: step_time -->" in "".join(texts.values())
    assert "<!-- generated: co_study_v2 -->" in "".join(texts.values())
    for path, text in texts.items():
        assert readme_tables.render(text) == text, f"{path}: run python benchmarks/readme_tables.py"


def test_a_changed_number_is_caught(tmp_path):
    import sys

    sys.path.insert(0, str(README.parent))
    from benchmarks import readme_tables

    text = README.read_text()
    start = text.index("<!-- generated: robust_eval -->")
    tampered = text[:start] + text[start:].replace("0.", "9.", 1)
    assert readme_tables.render(tampered) != tampered


def test_the_readme_is_short_and_links_every_guide():
    """The README reads in five minutes; the rest is in the guides and docs."""
    text = README.read_text()
    assert len(text) <= 12_000, len(text)
    guides = sorted(p.relative_to(README.parent).as_posix()
                    for p in (README.parent / "docs" / "guides").glob("*.md"))
    assert len(guides) == 5
    assert all(f"]({guide})" in text for guide in guides)
    import sys

    sys.path.insert(0, str(README.parent))
    from benchmarks import timings

    for command in (timings.command_text("test_suite"), timings.command_text("fast_tests"),
                    "bash .ci/run"):
        assert command in text


def _without_seconds(lines):
    return [re.sub(r", [0-9.]+ s\)", ")", line.rstrip()) for line in lines]


@pytest.mark.slow
def test_the_quick_start_prints_what_the_readme_shows(tmp_path):
    """`zerograd-train` with no options, as the quick start runs it: the
    same report (seconds aside) as the README's block."""
    import os
    import subprocess
    import sys

    text = README.read_text()
    quick_start = text[text.index("## Quick start"):text.index("## Python API")]
    (block,) = re.findall(r"```\n(APGD.*?)```", quick_start, flags=re.S)
    expected = _without_seconds(block.strip().splitlines())
    env = {**os.environ, "PYTHONPATH": str(README.parent)}
    result = subprocess.run([sys.executable, "-m", "zerograd_tf.trainers.train"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout.splitlines()
    start = next(i for i, line in enumerate(printed) if line.startswith("APGD-CE-100"))
    assert _without_seconds(printed[start:start + len(expected)]) == expected


def test_every_zerograd_train_option_is_in_the_command_line_reference():
    from zerograd_tf.trainers import train

    reference = (README.parent / "docs" / "cli.md").read_text()
    options = {o for action in train.build_parser()._actions for o in action.option_strings
               if o.startswith("--") and o != "--help"}
    missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", reference)]
    assert options and not sorted(missing)


def test_every_zerograd_eval_option_is_in_its_section_of_the_reference():
    from zerograd_tf.trainers import evaluate

    text = (README.parent / "docs" / "cli.md").read_text()
    section = text[text.index("## `zerograd-eval`"):]
    section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
    options = {o for action in evaluate.build_parser()._actions for o in action.option_strings
               if o.startswith("--") and o != "--help"}
    missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", section)]
    assert options and not sorted(missing)


def test_no_description_of_the_package_claims_more_than_the_study():
    """The study found no ZeroGrad-family recipe that never overfits
    catastrophically (docs/study.md), so no one-line description of the
    package (PyPI, the docs site, the README, the docs' home page) may say
    it trains "without catastrophic overfitting"; the README's generated
    opening paragraph says what the records show."""
    import configparser

    root = README.parent
    config = configparser.ConfigParser()
    config.read(root / "setup.cfg")
    (site,) = [line for line in (root / "mkdocs.yml").read_text().splitlines()
               if line.startswith("site_description:")]
    descriptions = {"setup.cfg": config["metadata"]["description"], "mkdocs.yml": site}
    for name in ("README.md", "docs/index.md"):
        descriptions[name] = (root / name).read_text().split("\n\n")[1]
    for name, text in descriptions.items():
        assert "without catastrophic overfitting" not in " ".join(text.split()).lower(), name
