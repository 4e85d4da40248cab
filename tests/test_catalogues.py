"""The catalogues are data files, and a bad row in any of them is caught before a run starts."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest

from conformance import profiles
from conformance.checking.requirements import CATALOGUE, Level, parse_requirements
from conformance.core.catalogues import CatalogueError
from conformance.mock.faults import FAULTS, parse_faults
from conformance.runner.fault_coverage import coverage
from tests.conftest import ROOT, SUITES

GOOD_REQUIREMENT = {"id": "X-1", "level": "SHALL", "summary": "a summary", "url": "https://example.org/spec#x"}
GOOD_FAULT = {"name": "f", "description": "does it wrong", "profiles": ["smart-backend"], "kills": ["a/b.py::c"]}


def test_catalogue_files_ship_inside_the_package() -> None:
    files = resources.files("conformance").joinpath("catalogues")
    for name in ("requirements.toml", "faults.toml"):
        assert files.joinpath(name).is_file(), name
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "catalogues/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["conformance"]


def test_the_shipped_catalogues_load() -> None:
    assert len(CATALOGUE) > 200 and all(isinstance(r.level, Level) for r in CATALOGUE.values())
    assert len(FAULTS) > 150 and all(f.profiles and f.kills for f in FAULTS.values())
    profiles.validate_faults(FAULTS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"level": "MUST"}, "level must be one of"),
        ({"summary": ""}, "summary must be a non-empty string"),
        ({"url": "spec.html"}, "absolute http"),
        ({"party": "server"}, "unknown column"),
    ],
)
def test_a_bad_requirement_row_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        parse_requirements([{**GOOD_REQUIREMENT, **change}])


def test_a_requirement_row_without_a_column_or_twice_is_refused() -> None:
    row = dict(GOOD_REQUIREMENT)
    del row["url"]
    with pytest.raises(CatalogueError, match="missing column"):
        parse_requirements([row])
    with pytest.raises(CatalogueError, match="duplicate id"):
        parse_requirements([GOOD_REQUIREMENT, GOOD_REQUIREMENT])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kills": []}, "kills must be a non-empty list"),
        ({"profiles": "smart-backend"}, "profiles must be a non-empty list"),
        ({"settings": "x"}, "settings must be a table"),
        ({"severity": "high"}, "unknown column"),
    ],
)
def test_a_bad_fault_row_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        parse_faults([{**GOOD_FAULT, **change}])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"profiles": ["bulk-data"]}, "unknown profile 'bulk-data'"),
        ({"profiles": ["cerner-system-account"]}, "did you mean client-secret"),
        ({"settings": {"no_such_setting": 1}}, "unknown reference-server setting"),
        ({"settings": {"carequality_shape": 3}}, "needs a str"),
    ],
)
def test_a_fault_naming_an_unknown_profile_or_setting_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        profiles.validate_faults(parse_faults([{**GOOD_FAULT, **change}]))


def test_every_kill_pattern_names_a_check_and_every_check_a_known_requirement() -> None:
    """Collecting the suites resolves every requirement marker (an unknown id stops collection)."""
    report = coverage(SUITES)
    assert report["check_count"] > 600
    assert not report["dead_patterns"], "kill patterns that match no check:\n" + "\n".join(report["dead_patterns"])
