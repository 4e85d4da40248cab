"""results.json (schema 2), summary.md and baselines: a real run validates against the packaged schema, the
document's parts agree with each other, and --baseline / --fail-on regression gate a run on new failures only."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from conformance.checking.requirements import lookup
from conformance.core.config import ConfigError
from conformance.runner import results_document, summary
from conformance.runner.baseline import compare, load_baseline

CONFORMANCE = [sys.executable, "-m", "conformance.runner.cli"]
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "conformance" / "schemas" / "results.schema.json"

SELECTION = "test_capability_statement or test_smart_configuration"
"""About twenty discovery checks: a run takes two seconds."""
FAILING_FAULT = "capability-missing-fields"
FAILING_CHECK = "discovery/test_capability_statement.py::test_capability_statement_has_required_elements"
FAILING_REQUIREMENT = "SBS-CAP-03"
WARNING_FAULT = "no-smart-security-service"
WARNING_CHECK = "discovery/test_capability_statement.py::test_security_service_is_smart_on_fhir"
WARNING_REQUIREMENT = "SBS-CAP-05"
OTHER_FAULT = "no-client-credentials-grant"
OTHER_FAILING_CHECK = "discovery/test_smart_configuration.py::test_grant_types_include_client_credentials"

TABLE_HEADER = "| area | pass | warning | waived | fail | broken | skip | n/a |"
LONGEST_SENSIBLE_LINE = 1000


@dataclass(frozen=True)
class Run:
    directory: Path
    proc: subprocess.CompletedProcess[str]

    @property
    def reports(self) -> Path:
        return self.directory / "out"

    @property
    def document(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.reports / "results.json").read_text(encoding="utf-8"))
        return loaded

    def explain(self) -> str:
        return self.proc.stdout[-3000:] + self.proc.stderr[-3000:]


def conformance_run(directory: Path, *args: str) -> Run:
    directory.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [*CONFORMANCE, "run", "-q", "--reports", "out", "-k", SELECTION, *args],
        capture_output=True,
        text=True,
        cwd=directory,
        timeout=300,
        env=dict(os.environ),
    )
    return Run(directory, proc)


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One run with a SHALL failure, a SHOULD warning and passes; the baseline of the comparison tests."""
    run = conformance_run(tmp_path_factory.mktemp("faulty"), "--fault", FAILING_FAULT, "--fault", WARNING_FAULT)
    assert run.proc.returncode == 1, run.explain()
    return run


def validator() -> jsonschema.Draft202012Validator:
    schema = results_document.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def schema_errors(document: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(document)]


def make_check(check: str, outcome: str, **fields: Any) -> dict[str, Any]:
    """A check as the plugin records it: every field, with the given ones set."""
    row: dict[str, Any] = dict.fromkeys(results_document.CHECK_FIELDS)
    row.update(
        check=check,
        nodeid=f"suites/{check}",
        area=check.split("/", 1)[0],
        outcome=outcome,
        duration=0.01,
        requests=1,
        retries=0,
        waited=0.0,
        notes={},
    )
    row.update(fields)
    return row


RUN = {
    "suite_version": "0.1.0",
    "catalogue_version": "abc",
    "profile": "smart-backend",
    "system": "SMART Backend Services (private_key_jwt)",
    "target": "https://ehr.example/fhir",
    "target_identity": "https://ehr.example/fhir",
    "client_id": "client-1",
    "faults": [],
    "variations": [],
    "started": "2025-01-01T00:00:00+00:00",
    "ci": {},
}


def document_of(checks: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    return results_document.build(
        checks,
        run=kwargs.pop("run", RUN),
        exitstatus=kwargs.pop("exitstatus", 1),
        unjudged_reason=kwargs.pop("unjudged_reason", None),
        traffic={"requests": 3, "retries": 0, "waited": 0.0},
        **kwargs,
    )


# --- a real run and the schema -------------------------------------------------------------------------------------


def test_the_schema_ships_in_the_package_and_is_a_valid_draft_2020_12_schema() -> None:
    schema = results_document.schema()
    assert schema == json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$defs"]["outcome"]["enum"] == list(results_document.OUTCOMES)
    assert schema["$defs"]["check"]["required"] == list(results_document.CHECK_FIELDS)
    assert set(schema["$defs"]["check"]["properties"]) == set(results_document.CHECK_FIELDS)
    assert schema["properties"]["counts"]["required"] == list(results_document.OUTCOMES)


def test_a_real_run_with_a_failure_validates_against_the_schema(faulty_run: Run) -> None:
    document = faulty_run.document
    assert schema_errors(document) == []
    outcomes = {c["outcome"] for c in document["checks"]}
    assert {"pass", "fail", "warning"} <= outcomes, "the run must exercise more than passes"
    assert document["schema_version"] == results_document.SCHEMA_VERSION == 2
    assert document["exitstatus"] == 1
    assert document["run"]["faults"] == [FAILING_FAULT, WARNING_FAULT]
    assert document["comparison"] is None


def test_the_schema_catches_drift(faulty_run: Run) -> None:
    document = faulty_run.document
    drifted: list[dict[str, Any]] = []
    for change in (
        lambda d: d.update(extra=1),
        lambda d: d["checks"][0].update(new_field="x"),
        lambda d: d["checks"][0].pop("notes"),
        lambda d: d["checks"][0].update(outcome="passed"),
        lambda d: d["checks"][0].update(duration="0.1"),
        lambda d: d["checks"][0].update(notes={"n": 1}),
        lambda d: d["counts"].pop("not-run"),
        lambda d: d["counts"].update(skipped=0),
        lambda d: d["requirements"][0].update(outcome="ok"),
        lambda d: d["waivers"].pop("stale"),
        lambda d: d.update(comparison={"regressions": [], "fixed": []}),
        lambda d: d.update(schema_version=1),
    ):
        changed = copy.deepcopy(document)
        change(changed)
        drifted.append(changed)
    assert all(schema_errors(d) for d in drifted)
    assert schema_errors(document) == []
    assert schema_errors({**document, "run": None}) == []
    comparison = {"regressions": ["a"], "fixed": [], "new_checks": ["a"], "missing": []}
    assert schema_errors({**document, "comparison": comparison}) == []


def test_counts_are_the_checks_per_outcome(faulty_run: Run) -> None:
    document = faulty_run.document
    per_outcome = Counter(c["outcome"] for c in document["checks"])
    assert document["counts"] == {o: per_outcome.get(o, 0) for o in results_document.OUTCOMES}
    assert list(document["counts"]) == list(results_document.OUTCOMES)
    assert sum(document["counts"].values()) == len(document["checks"]) > 10
    assert document["counts"]["fail"] == 1
    assert document["counts"]["warning"] == 1
    assert document["requests"] == sum(c["requests"] for c in document["checks"])


def test_every_checks_requirement_is_in_the_rollup_with_its_worst_outcome(faulty_run: Run) -> None:
    document = faulty_run.document
    rollup = {r["id"]: r for r in document["requirements"]}
    assert list(rollup) == sorted(rollup)
    assert {c["requirement"] for c in document["checks"]} == set(rollup)
    for check in document["checks"]:
        assert {"check": check["check"], "outcome": check["outcome"]} in rollup[check["requirement"]]["checks"]
    assert rollup[FAILING_REQUIREMENT]["outcome"] == "fail"
    assert rollup[WARNING_REQUIREMENT]["outcome"] == "warning"
    all_pass = [r for r in rollup.values() if {c["outcome"] for c in r["checks"]} == {"pass"}]
    assert all_pass
    assert {r["id"]: r["outcome"] for r in all_pass} == {r["id"]: "pass" for r in all_pass}
    requirement = lookup(FAILING_REQUIREMENT)
    assert rollup[FAILING_REQUIREMENT]["level"] == requirement.level.value
    assert rollup[FAILING_REQUIREMENT]["summary"] == requirement.summary
    assert rollup[FAILING_REQUIREMENT]["spec_url"] == requirement.url
    assert rollup[FAILING_REQUIREMENT]["party"] == requirement.party


def test_the_failing_check_carries_its_finding(faulty_run: Run) -> None:
    checks = {c["check"]: c for c in faulty_run.document["checks"]}
    failing = checks[FAILING_CHECK]
    assert failing["outcome"] == "fail"
    assert failing["requirement"] == FAILING_REQUIREMENT
    assert failing["level"] == "SHALL"
    for name in ("message", "expected", "actual", "spec_url"):
        assert isinstance(failing[name], str) and failing[name].strip(), name
    assert "\n" not in failing["message"]
    assert failing["spec_url"] == lookup(FAILING_REQUIREMENT).url
    assert failing["duration"] > 0
    assert failing["area"] == "discovery"
    assert failing["nodeid"].endswith(FAILING_CHECK)
    warned = checks[WARNING_CHECK]
    assert warned["outcome"] == "warning"
    assert warned["warning"] and warned["warning_rule"] and warned["warning_rule"].startswith(WARNING_REQUIREMENT)
    passed = [c for c in checks.values() if c["outcome"] == "pass"]
    assert all(c["message"] is None and c["expected"] is None for c in passed)


def test_summary_md_has_the_table_and_one_line_per_failure(faulty_run: Run) -> None:
    path = faulty_run.reports / "summary.md"
    assert path.exists()
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert TABLE_HEADER in lines
    assert lines[lines.index(TABLE_HEADER) + 1] == "|---|---|---|---|---|---|---|---|"
    rows = [line for line in lines if line.startswith("|")]
    assert all(line.endswith("|") and line.replace("\\|", "").count("|") == 9 for line in rows), rows
    document = faulty_run.document
    counts = document["counts"]
    total = [counts[o] for o in ("pass", "warning", "waived", "fail", "broken")]
    total += [counts["skip"] + counts["not-run"], counts["not-applicable"]]
    assert "| **all** | " + " | ".join(map(str, total)) + " |" in lines
    for check in document["checks"]:
        if check["outcome"] in ("fail", "broken", "warning"):
            mine = [line for line in lines if f"`{check['check']}`" in line]
            assert len(mine) == 1, check["check"]
            assert mine[0].startswith(f"- **{check['requirement']}** ({check['level']})")
    assert "### Failures" in lines
    assert max(len(line) for line in lines) < LONGEST_SENSIBLE_LINE
    assert text.startswith("## FHIR B2B conformance: SMART Backend Services")
    assert "**failed** (exit 1)" in text


# --- results_document units ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_given", [list, iter], ids=["list", "generator"])
def test_worst_ranks_every_outcome(as_given: Any) -> None:
    ranked = results_document.WORST_FIRST
    assert set(ranked) == set(results_document.OUTCOMES)
    for i, worse in enumerate(ranked):
        for better in ranked[i + 1 :]:
            assert results_document.worst(as_given([better, worse, better])) == worse, (worse, better)
    assert results_document.worst(as_given(["pass", "pass"])) == "pass"
    assert results_document.worst(as_given(["not-applicable", "pass"])) == "pass"
    assert results_document.worst(as_given(["not-applicable"])) == "not-applicable"
    assert results_document.worst(as_given([])) == "not-run"


def test_counts_name_every_outcome_once() -> None:
    checks = [{"outcome": "pass"}, {"outcome": "pass"}, {"outcome": "fail"}, {"outcome": "not-run"}, {}]
    counted = results_document.counts(checks)
    assert list(counted) == list(results_document.OUTCOMES)
    assert counted == {
        "pass": 2,
        "warning": 0,
        "waived": 0,
        "fail": 1,
        "broken": 0,
        "skip": 0,
        "not-applicable": 0,
        "not-run": 1,
    }
    assert results_document.counts([]) == dict.fromkeys(results_document.OUTCOMES, 0)


def test_rollup_groups_checks_by_requirement() -> None:
    checks = [
        make_check("discovery/a.py::t1", "pass", requirement="SBS-CAP-03"),
        make_check("discovery/a.py::t2", "warning", requirement="SBS-CAP-03"),
        make_check("discovery/a.py::t3", "pass", requirement="SBS-CAP-01"),
        make_check("discovery/a.py::t4", "fail", requirement=None),
        make_check("discovery/a.py::t5", "broken", requirement="NOT-IN-CATALOGUE"),
    ]
    rows = results_document.rollup(checks)
    assert [r["id"] for r in rows] == ["NOT-IN-CATALOGUE", "SBS-CAP-01", "SBS-CAP-03"]
    by_id = {r["id"]: r for r in rows}
    cap03 = by_id["SBS-CAP-03"]
    assert cap03["checks"] == [
        {"check": "discovery/a.py::t1", "outcome": "pass"},
        {"check": "discovery/a.py::t2", "outcome": "warning"},
    ]
    assert cap03["outcome"] == "warning"
    assert by_id["SBS-CAP-01"]["outcome"] == "pass"
    requirement = lookup("SBS-CAP-03")
    assert (cap03["level"], cap03["summary"], cap03["spec_url"], cap03["party"]) == (
        requirement.level.value,
        requirement.summary,
        requirement.url,
        requirement.party,
    )
    unknown = by_id["NOT-IN-CATALOGUE"]
    assert (unknown["level"], unknown["summary"], unknown["spec_url"], unknown["party"]) == (None, None, None, None)
    assert unknown["outcome"] == "broken"


def test_build_orders_checks_keeps_only_the_documented_fields_and_validates() -> None:
    checks = [
        make_check("token/b.py::t", "fail", requirement="SBS-CAP-03", message="m", client_id="leaks", outage_at="1"),
        make_check("discovery/a.py::t", "pass", requirement="SBS-CAP-01"),
    ]
    document = document_of(checks)
    assert [c["check"] for c in document["checks"]] == ["discovery/a.py::t", "token/b.py::t"]
    assert all(list(c) == list(results_document.CHECK_FIELDS) for c in document["checks"])
    assert document["waivers"] == {"applied": [], "expired": [], "stale": []}
    assert document["comparison"] is None
    assert (document["requests"], document["retries"], document["waited"]) == (3, 0, 0.0)
    assert schema_errors(document) == []


def test_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    document = document_of([make_check("discovery/a.py::t", "pass", requirement="SBS-CAP-01")])
    target = tmp_path / "deep" / "results.json"
    results_document.write(target, document)
    assert json.loads(target.read_text(encoding="utf-8")) == document
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]


# --- summary.render ------------------------------------------------------------------------------------------------


def test_summary_cells_escape_pipes_and_fold_newlines() -> None:
    checks = [
        make_check(
            "token/a.py::t",
            "fail",
            requirement="SBS-CAP-03",
            level="SHALL",
            message="expected a | b\n  got\tc || d",
        ),
        make_check("token/b.py::t", "pass", requirement="SBS-CAP-01", level="SHALL"),
    ]
    text = summary.render(document_of(checks, run={**RUN, "client_id": "a|b\nc"}))
    lines = text.splitlines()
    failure = next(line for line in lines if "`token/a.py::t`" in line)
    assert failure == "- **SBS-CAP-03** (SHALL) `token/a.py::t`: expected a \\| b got c \\|\\| d"
    assert "client `a\\|b c`" in text
    assert "| token | 1 | 0 | 0 | 1 | 0 | 0 | 0 |" in lines
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_summary_lists_warnings_with_their_requirement_and_waived_failures() -> None:
    checks = [
        make_check(
            "discovery/w.py::t",
            "warning",
            requirement="SBS-CAP-05",
            level="SHOULD",
            warning="no SMART coding",
            message="no SMART coding (expected: x; actual: y)",
        ),
        make_check(
            "token/v.py::t",
            "waived",
            requirement="SBS-CAP-03",
            level="SHALL",
            message="lacks date",
            waiver="W-7: accepted until March | ticket 12",
        ),
        make_check("token/s.py::t", "skip", requirement="SBS-CAP-01", message="precondition: x"),
        make_check("token/n.py::t", "not-run", requirement="SBS-CAP-01", message="not run: y"),
        make_check("token/x.py::t", "not-applicable", requirement="SBS-CAP-01", message="not applicable: z"),
    ]
    text = summary.render(document_of(checks, exitstatus=0))
    lines = text.splitlines()
    assert "### Warnings (SHOULD-level misses; these checks passed)" in lines
    assert "- **SBS-CAP-05** (SHOULD) `discovery/w.py::t`: no SMART coding" in lines
    assert "### Waived failures" in lines
    assert (
        "- **SBS-CAP-03** (SHALL) `token/v.py::t`: lacks date (waived: W-7: accepted until March \\| ticket 12)"
        in lines
    )
    assert "### Failures" not in lines
    assert "| token | 0 | 0 | 1 | 0 | 0 | 2 | 1 |" in lines, "skip and not-run share the skip column"
    assert "| discovery | 0 | 1 | 0 | 0 | 0 | 0 | 0 |" in lines
    assert "| **all** | 0 | 1 | 1 | 0 | 0 | 2 | 1 |" in lines
    assert "**passed** (exit 0)" in text


def test_summary_has_sections_for_expired_and_stale_waivers() -> None:
    waivers = {
        "applied": [],
        "expired": [{"waiver": "W-1 expired on 2024-01-01", "check": "token/a.py::t", "detail": "the failure stands"}],
        "stale": [{"waiver": "W-2", "detail": "its checks pass now;\nremove it"}],
    }
    checks = [make_check("token/a.py::t", "fail", requirement="SBS-CAP-03", message="m")]
    lines = summary.render(document_of(checks, waivers=waivers)).splitlines()
    expired = lines.index("### Expired waivers (no longer applied)")
    assert lines[expired + 2] == "- W-1 expired on 2024-01-01: the failure stands"
    stale = lines.index("### Stale waivers (their checks pass)")
    assert lines[stale + 2] == "- W-2: its checks pass now; remove it"
    plain = summary.render(document_of(checks)).splitlines()
    assert not any(line.startswith("### Expired") or line.startswith("### Stale") for line in plain)


def test_summary_compares_with_the_baseline_only_when_there_is_one() -> None:
    checks = [make_check("token/a.py::t", "fail", requirement="SBS-CAP-03", message="m")]
    comparison = {"regressions": ["token/a.py::t"], "fixed": ["token/b.py::t", "token/c.py::t"], "new_checks": []}
    lines = summary.render(document_of(checks, comparison={**comparison, "missing": []})).splitlines()
    start = lines.index("### Compared with the baseline")
    assert lines[start + 2 : start + 5] == [
        "- 1 regressions: `token/a.py::t`",
        "- 2 fixed: `token/b.py::t`, `token/c.py::t`",
        "- 0 new checks",
    ]
    assert "### Compared with the baseline" not in summary.render(document_of(checks))


def test_summary_says_why_a_target_could_not_be_judged() -> None:
    checks = [make_check("token/a.py::t", "broken", requirement="SBS-CAP-03", message="timeout")]
    text = summary.render(document_of(checks, exitstatus=3, unjudged_reason="1 of 1 checks\ncould not be judged"))
    assert "The target could not be judged: 1 of 1 checks could not be judged" in text.splitlines()
    assert "**could not be judged** (exit 3)" in text
    assert "- **SBS-CAP-03** (-) `token/a.py::t`: timeout" in text.splitlines()


# --- baseline.compare and load_baseline ----------------------------------------------------------------------------


def test_compare_finds_regressions_fixed_new_and_missing_checks() -> None:
    baseline = {
        "still-fails": "fail",
        "regressed": "pass",
        "regressed-from-warning": "warning",
        "regressed-from-broken": "broken",
        "fixed": "fail",
        "fixed-to-warning": "fail",
        "fixed-to-waived": "fail",
        "now-skipped": "fail",
        "gone": "pass",
        "gone-failing": "fail",
    }
    current = [
        {"check": "still-fails", "outcome": "fail"},
        {"check": "regressed", "outcome": "fail"},
        {"check": "regressed-from-warning", "outcome": "fail"},
        {"check": "regressed-from-broken", "outcome": "fail"},
        {"check": "fixed", "outcome": "pass"},
        {"check": "fixed-to-warning", "outcome": "warning"},
        {"check": "fixed-to-waived", "outcome": "waived"},
        {"check": "now-skipped", "outcome": "skip"},
        {"check": "new-failing", "outcome": "fail"},
        {"check": "new-passing", "outcome": "pass"},
    ]
    assert compare(baseline, current) == {
        "regressions": ["new-failing", "regressed", "regressed-from-broken", "regressed-from-warning"],
        "fixed": ["fixed", "fixed-to-waived", "fixed-to-warning"],
        "new_checks": ["new-failing", "new-passing"],
        "missing": ["gone", "gone-failing"],
    }
    same = compare({"a": "fail", "b": "pass"}, [{"check": "a", "outcome": "fail"}, {"check": "b", "outcome": "pass"}])
    assert same == {"regressions": [], "fixed": [], "new_checks": [], "missing": []}


def test_load_baseline_reads_a_schema_2_document(tmp_path: Path) -> None:
    checks = [
        make_check("token/a.py::t", "fail", requirement="SBS-CAP-03", message="m"),
        make_check("discovery/b.py::t", "pass", requirement="SBS-CAP-01"),
    ]
    path = tmp_path / "results.json"
    results_document.write(path, document_of(checks))
    assert load_baseline(path) == {"token/a.py::t": "fail", "discovery/b.py::t": "pass"}


def test_load_baseline_reads_a_schema_1_file(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    checks = [{"check": "a.py::t", "outcome": "fail"}, {"check": "b.py::t", "outcome": "pass"}]
    path.write_text(json.dumps({"exitstatus": 1, "traffic": {"requests": 2}, "checks": checks}), encoding="utf-8")
    assert load_baseline(path) == {"a.py::t": "fail", "b.py::t": "pass"}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'{"tests": []}', "is not a results.json (no checks list)"),
        (b"[1, 2]", "is not a results.json (no checks list)"),
        (b'{"checks": {"a": "pass"}}', "is not a results.json (no checks list)"),
        (b'{"checks": [{"outcome": "pass"}]}', "is not a results.json (no checks list)"),
        (b"{not json", "cannot be read as results.json"),
        (b"\xff\xfe\x00", "is not UTF-8 text"),
    ],
    ids=["other-json", "list", "checks-not-a-list", "check-without-id", "not-json", "not-utf8"],
)
def test_load_baseline_refuses_what_is_not_a_results_file(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        load_baseline(path)
    assert str(raised.value).startswith(f"baseline {path} ")
    assert says in str(raised.value)


def test_load_baseline_says_a_missing_file_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "baseline.json"
    with pytest.raises(ConfigError, match="does not exist") as raised:
        load_baseline(path)
    assert str(path) in str(raised.value)


# --- --baseline and --fail-on regression end to end ----------------------------------------------------------------


def with_baseline(faulty_run: Run, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    baseline = directory / "baseline.json"
    shutil.copyfile(faulty_run.reports / "results.json", baseline)
    return baseline


def test_the_baselines_own_failures_do_not_fail_the_run(faulty_run: Run, tmp_path: Path) -> None:
    with_baseline(faulty_run, tmp_path)
    faults = ("--fault", FAILING_FAULT, "--fault", WARNING_FAULT)
    run = conformance_run(tmp_path, *faults, "--baseline", "baseline.json", "--fail-on", "regression")
    assert run.proc.returncode == 0, run.explain()
    document = run.document
    assert document["counts"]["fail"] == 1, "the failure is still reported"
    assert document["exitstatus"] == 0
    assert document["comparison"] == {"regressions": [], "fixed": [], "new_checks": [], "missing": []}
    assert schema_errors(document) == []
    assert "against the baseline: 0 regressions, 0 fixed, 0 new checks" in run.proc.stdout
    assert not any(line.startswith("  regression: ") for line in run.proc.stdout.splitlines())
    assert "- 0 regressions" in (run.reports / "summary.md").read_text(encoding="utf-8").splitlines()


def test_a_new_failure_is_a_regression_and_fails_the_run(faulty_run: Run, tmp_path: Path) -> None:
    with_baseline(faulty_run, tmp_path)
    run = conformance_run(tmp_path, "--fault", OTHER_FAULT, "--baseline", "baseline.json", "--fail-on", "regression")
    assert run.proc.returncode == 1, run.explain()
    document = run.document
    comparison = document["comparison"]
    assert comparison["regressions"] == [OTHER_FAILING_CHECK]
    assert comparison["fixed"] == [FAILING_CHECK]
    assert comparison["new_checks"] == [] and comparison["missing"] == []
    assert document["exitstatus"] == 1
    assert schema_errors(document) == []
    regression_lines = [line for line in run.proc.stdout.splitlines() if line.startswith("  regression: ")]
    assert regression_lines == [f"  regression: {OTHER_FAILING_CHECK}"]
    assert f"- 1 regressions: `{OTHER_FAILING_CHECK}`" in (run.reports / "summary.md").read_text(encoding="utf-8")


def test_fail_on_regression_without_a_baseline_is_a_usage_error(tmp_path: Path) -> None:
    run = conformance_run(tmp_path, "--fault", FAILING_FAULT, "--fail-on", "regression")
    assert run.proc.returncode == 2, run.explain()
    errors = run.proc.stderr.strip().splitlines()
    assert len(errors) == 1, run.proc.stderr
    assert errors[0].startswith("conformance: error: ")
    assert "--baseline" in errors[0]
    assert not (run.reports / "results.json").exists()


def test_a_baseline_that_is_not_a_results_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "baseline.json").write_text('{"tests": []}', encoding="utf-8")
    run = conformance_run(tmp_path, "--baseline", "baseline.json", "--fail-on", "regression")
    assert run.proc.returncode == 2, run.explain()
    errors = run.proc.stderr.strip().splitlines()
    assert len(errors) == 1, run.proc.stderr
    assert errors[0].startswith("conformance: error: --baseline: baseline baseline.json is not a results.json")
