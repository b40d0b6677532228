"""The CI/dev tool chain is pinned: every requirement that setup.cfg declares
(install and dev extras) has one exact version in .ci/constraints.txt, so a
fresh machine installs what the suite was last green on, and a new
dependency cannot slip in unpinned (refresh with .ci/refresh-constraints)."""

import configparser
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _name(requirement):
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _declared():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = (config["options"]["install_requires"] + "\n"
             + config["options.extras_require"]["dev"]).splitlines()
    return {_name(line) for line in lines if line.strip() and not line.strip().startswith("#")}


def _pins():
    pins = {}
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), line
            assert _name(name) not in pins, f"{name} pinned twice"
            pins[_name(name)] = version
    return pins


def test_every_declared_requirement_is_pinned():
    pins = _pins()
    missing = sorted(name for name in _declared() if name not in pins)
    assert not missing, f"not in .ci/constraints.txt: {missing}; run .ci/refresh-constraints"
    assert "zerograd-tf" not in pins


def test_the_pins_satisfy_the_declared_ranges():
    from packaging.requirements import Requirement

    pins = _pins()
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    for line in (config["options"]["install_requires"] + "\n"
                 + config["options.extras_require"]["dev"]).splitlines():
        if line.strip() and not line.strip().startswith("#"):
            requirement = Requirement(line.strip())
            version = pins[_name(requirement.name)]
            assert requirement.specifier.contains(version, prereleases=True), (line, version)


def test_the_constraints_name_their_python_and_ci_refuses_another(tmp_path):
    """Pins made on one Python may not install on another (numpy, scipy):
    .ci/run says so in one line, before it creates or installs anything."""
    import os
    import subprocess

    header = (ROOT / ".ci" / "constraints.txt").read_text()
    (wanted,) = re.findall(r"^# python: (\d+\.\d+)$", header, flags=re.M)
    other = "2.7" if wanted != "2.7" else "2.6"
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\necho {other}\n")
    fake.chmod(0o755)
    env = {**os.environ, "PYTHON": str(fake), "ZEROGRAD_CI_VENV": str(tmp_path / "venv")}
    result = subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"Python {wanted}" in result.stderr and f"Python {other}" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_setup_cfg_lists_every_package_of_the_library():
    """A package folder missing from `packages` is silently left out of the
    wheel (an editable install does not notice)."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for init in (ROOT / "zerograd_tf").rglob("__init__.py")}
    found |= {"zerograd_tf.trainers", "zerograd_tf.tuning"}
    assert listed == found


@pytest.mark.parametrize("script", ["run", "refresh-constraints"])
def test_the_docs_build_of_the_ci_scripts_fails_on_a_warning(tmp_path, script):
    """CI's docs build (and the one that checks a refresh of the pins) must
    fail on any warning. `--quiet` raises the mkdocs logger's level above
    WARNING, so warnings never reach strict mode's counter (mkdocs issue
    #4126): with it, docstrings that griffe warned about passed CI. This
    runs the script's own command line on a site with a broken link."""
    import shlex
    import subprocess
    import sys

    pytest.importorskip("mkdocs")
    (line,) = [ln for ln in (ROOT / ".ci" / script).read_text().splitlines()
               if "mkdocs build" in ln and not ln.lstrip().startswith("#")]
    words = line.split("--site-dir")[0].split()
    command = [sys.executable if word == '"$python"' else word for word in words]
    assert command[:4] == [sys.executable, "-m", "mkdocs", "build"], line
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Home\n\nSee [the guide](missing.md).\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\n")
    result = subprocess.run([*command, "--site-dir", str(tmp_path / "site")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, f"{shlex.join(command)} passed with a broken link"
    (tmp_path / "docs" / "index.md").write_text("# Home\n")
    result = subprocess.run([*command, "--site-dir", str(tmp_path / "site")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
