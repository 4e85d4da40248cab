"""The plugin maps check outcomes onto pytest, JUnit properties, the results file and the summary."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

CHECKS = """
import pytest
from conformance.core.outcomes import CheckFailure, NoResponse, NotApplicable, PreconditionFailed, SpecWarning, note

@pytest.fixture(scope="session")
def target():
    return object()

@pytest.mark.requirement("SBS-TOKEN-01")
def test_pass(target):
    note("status", 200)

@pytest.mark.requirement("SBS-TOKEN-01")
def test_fail(target):
    raise CheckFailure("no token was issued", expected="HTTP 200", actual="HTTP 400")

@pytest.mark.requirement("SBS-TOKEN-08")
def test_should_level_failure_is_a_warning(target):
    raise CheckFailure("a refresh_token was issued", expected="none", actual="present")

@pytest.mark.requirement("SBS-TOKEN-01")
def test_explicit_warning(target):
    raise SpecWarning("close, but not quite")

@pytest.mark.requirement("SBS-TOKEN-01")
def test_not_applicable(target):
    raise NotApplicable("the server does not offer this")

@pytest.mark.requirement("SBS-TOKEN-01")
def test_precondition(target):
    raise PreconditionFailed("no access token")

@pytest.mark.requirement("SBS-TOKEN-01")
def test_broken(target):
    raise NoResponse("could not connect to http://127.0.0.1:9: connection refused")

@pytest.mark.requirement("SBS-TOKEN-08")
def test_five_hundred_is_a_failure_even_below_shall(target):
    raise CheckFailure("server error", expected="4xx", actual="500", requirement="SBS-NO-5XX")

@pytest.mark.profiles("udap")
@pytest.mark.requirement("SBS-TOKEN-01")
def test_other_profile(target):
    raise AssertionError("must not run")
"""


@pytest.fixture
def run(pytester: pytest.Pytester) -> tuple[pytest.RunResult, dict[str, str], ET.Element]:
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-p",
        "no:allure_pytest",
        "--conformance-results",
        "results.json",
        "--junitxml",
        "junit.xml",
    )
    results = json.loads((pytester.path / "results.json").read_text())["checks"]
    outcomes = {r["check"].split("::")[-1]: r["outcome"] for r in results}
    return result, outcomes, ET.parse(pytester.path / "junit.xml").getroot()


def test_outcomes_follow_the_vocabulary(run: tuple[pytest.RunResult, dict[str, str], ET.Element]) -> None:
    result, outcomes, _ = run
    assert outcomes == {
        "test_pass": "pass",
        "test_fail": "fail",
        "test_should_level_failure_is_a_warning": "warning",
        "test_explicit_warning": "warning",
        "test_not_applicable": "not-applicable",
        "test_precondition": "skip",
        "test_broken": "broken",
        "test_five_hundred_is_a_failure_even_below_shall": "fail",
    }
    assert result.ret == 1


def test_summary_lists_warnings_and_failures(run: tuple[pytest.RunResult, dict[str, str], ET.Element]) -> None:
    result, _, _ = run
    result.stdout.fnmatch_lines(
        [
            "*conformance summary*",
            "8 checks: 1 pass, 2 warning, 2 fail, 1 broken, 1 skip, 1 not-applicable",
            "(1 checks of other profiles were not run)",
            "warnings (SHOULD-level misses; these checks passed):",
            "*SBS-TOKEN-08*a refresh_token was issued",
        ]
    )


def test_failures_are_structured(run: tuple[pytest.RunResult, dict[str, str], ET.Element]) -> None:
    result, _, _ = run
    result.stdout.fnmatch_lines(
        [
            "*no token was issued",
            "*expected: HTTP 200",
            "*actual:   HTTP 400",
            "*requirement: SBS-TOKEN-01 (SHALL)*",
            "*spec: https://hl7.org/fhir/smart-app-launch/*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_junit_carries_requirement_level_and_outcome(run: tuple[pytest.RunResult, dict[str, str], ET.Element]) -> None:
    _, _, junit = run
    cases = {case.get("name"): case for case in junit.iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["test_should_level_failure_is_a_warning"].iter("property")}
    assert props["requirement"] == "SBS-TOKEN-08"
    assert props["level"] == "SHOULD"
    assert props["outcome"] == "warning"
    assert props["warning"] == "a refresh_token was issued"
    pass_props = {p.get("name"): p.get("value") for p in cases["test_pass"].iter("property")}
    assert pass_props["note:status"] == "200"


BROKEN_AND_KNOWN = """
import pytest
from conformance.core.outcomes import CheckFailure

@pytest.fixture(scope="session")
def target():
    return object()

@pytest.mark.requirement("SBS-TOKEN-02")
def test_known_failure(target):
    raise CheckFailure("known", expected="a", actual="b")

@pytest.mark.requirement("SBS-TOKEN-02")
@pytest.mark.parametrize("n", [1, 2, 3])
def test_harness_trouble(target, n):
    raise RuntimeError("the harness broke")
"""


def test_fail_on_regression_never_hides_broken_checks(pytester: pytest.Pytester) -> None:
    """Only the failures the baseline had are forgiven: broken checks still make the run unjudged (3)."""
    pytester.makepyfile(test_checks=BROKEN_AND_KNOWN)
    common = ("-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:allure_pytest")
    first = pytester.runpytest_subprocess(*common, "--conformance-results", "base.json")
    assert first.ret == 1  # a failure outweighs the broken checks
    second = pytester.runpytest_subprocess(
        *common, "--conformance-baseline", "base.json", "--conformance-fail-on", "regression"
    )
    assert second.ret == 3, second.stdout.str()[-2000:]
