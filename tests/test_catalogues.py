"""The catalogues are data files, and a bad row in any of them is caught before a run starts."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest

from conformance.checking.requirements import CATALOGUE, PARTIES, Level, parse_requirements
from conformance.core.catalogues import CatalogueError
from conformance.mock.faults import FAULTS, parse_faults
from conformance.profiles import registry as profiles
from conformance.runner.fault_coverage import coverage
from tests.conftest import ROOT, SUITES

GOOD_REQUIREMENT = {
    "id": "X-1",
    "level": "SHALL",
    "summary": "a summary",
    "sentence": "The server SHALL do x [Spec §1]",
    "party": "authorization server",
    "url": "https://example.org/spec#x",
}
GOOD_FAULT = {"name": "f", "description": "does it wrong", "profiles": ["smart-backend"], "kills": ["a/b.py::c"]}


def test_catalogue_files_ship_inside_the_package() -> None:
    files = resources.files("conformance").joinpath("catalogues")
    for name in ("requirements.toml", "faults.toml"):
        assert files.joinpath(name).is_file(), name
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "catalogues/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["conformance"]


def test_the_shipped_catalogues_load() -> None:
    assert len(CATALOGUE) > 200 and all(isinstance(r.level, Level) for r in CATALOGUE.values())
    assert all(r.sentence and r.party in PARTIES for r in CATALOGUE.values()), "every row names its rule and party"
    assert len(FAULTS) > 150 and all(f.profiles and f.kills for f in FAULTS.values())
    profiles.validate_faults(FAULTS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"level": "MUST"}, "level must be one of"),
        ({"summary": ""}, "summary must be a non-empty string"),
        ({"url": "spec.html"}, "absolute http"),
        ({"party": "server"}, "party must be one of"),
        ({"sentence": ""}, "sentence must be a non-empty string"),
        ({"binds": "client"}, "unknown column"),
    ],
)
def test_a_bad_requirement_row_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        parse_requirements([{**GOOD_REQUIREMENT, **change}])


def test_a_requirement_row_without_a_column_or_twice_is_refused() -> None:
    for column in ("url", "sentence", "party"):
        row = dict(GOOD_REQUIREMENT)
        del row[column]
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


GOOD_VARIATION = {
    "name": "v",
    "description": "answers differently",
    "allowed_by": "The server MAY do so [RFC 0000 §1]",
    "profiles": ["smart-backend"],
    "records": ["a/b.py::c"],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"allowed_by": ""}, "allowed_by must be a non-empty string"),
        ({"records": []}, "records must be a non-empty list"),
        ({"kills": ["x"]}, "unknown column"),
    ],
)
def test_a_bad_variation_row_is_refused(change: dict[str, Any], message: str) -> None:
    from conformance.mock.variations import parse_variations

    with pytest.raises(CatalogueError, match=message):
        parse_variations([{**GOOD_VARIATION, **change}])


def test_every_variation_names_known_profiles_and_checks_that_exist() -> None:
    from conformance.mock.switches import pattern_matches
    from conformance.mock.variations import VARIATIONS
    from conformance.runner.fault_coverage import collect_check_ids

    profiles.validate_faults(VARIATIONS, "variation")
    ids = {p: collect_check_ids(SUITES, p) for p in {p for v in VARIATIONS.values() for p in v.profiles}}
    dead = [
        f"{v.name}: {pattern}"
        for v in VARIATIONS.values()
        for pattern in v.records
        if not any(pattern_matches(pattern, c) for p in v.profiles for c in ids[p])
    ]
    assert not dead, f"variation patterns that match no check: {dead}"
