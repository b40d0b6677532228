"""The CI/dev tool chain is pinned: every requirement that setup.cfg declares
(install and dev extras) has one exact version in .ci/constraints.txt, so a
fresh machine installs what the suite was last green on, and a new
dependency cannot slip in unpinned (refresh with .ci/refresh-constraints)."""

import configparser
import pathlib
import re

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
