"""Habits that keep the package honest: one version, a license, and the argument the report cites shipped with it."""

import re
import tomllib
from importlib import metadata, resources
from pathlib import Path

import losslab

ROOT = Path(__file__).resolve().parents[1]


def test_the_version_is_written_in_one_place():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "losslab.__version__"}
    assert metadata.version("losslab") == losslab.__version__


def test_the_license_file_says_what_the_package_says():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 the losslab authors" in text
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "MIT"


def test_the_report_cites_the_argument_shipped_in_the_package():
    argument = (resources.files("losslab.report") / "argument.md").read_text(encoding="utf-8")
    for claim in ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C10", "C11", "C12"):
        assert re.search(rf"\b{claim}\b", argument), claim
    template = (resources.files("losslab.report") / "templates" / "report.html").read_text(encoding="utf-8")
    assert "losslab/report/argument.md" in template and "shared/" not in template
