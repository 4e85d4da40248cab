"""Waivers: a known deviation is reported as waived (and fails no run) until its waiver expires.

The embedded reference server with the `lenient-required-claims` fault accepts an assertion without jti, so
one check fails; each run below selects that check alone with -k (a couple of seconds per run). A waiver that
names nothing real is a configuration error before any check runs: a typo must not silently waive nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.core.config import ConfigError
from conformance.runner.waivers import Decision, Waiver, decide, load_waivers, stale, unknown_cases
from tests.conftest import SUITES, suites_in_pytest

CHECK = "token/test_assertion_errors.py::test_no_token_is_issued[missing-jti]"
FAULT = "lenient-required-claims"
KEYWORD = "test_no_token_is_issued and missing-jti"
TODAY = dt.date.today()
LIVE = TODAY + dt.timedelta(days=200)
EXPIRED = TODAY - dt.timedelta(days=10)
CONFORMANCE_RUN = [sys.executable, "-m", "conformance.runner.cli", "run", "-q", "--reports", "out"]


def waivers_toml(*rows: dict[str, object]) -> str:
    """[[waiver]] tables; strings quoted, dates bare (as TOML dates)."""
    lines = []
    for row in rows:
        lines.append("[[waiver]]")
        for key, value in row.items():
            shown = value.isoformat() if isinstance(value, dt.date) else json.dumps(value)
            lines.append(f"{key} = {shown}")
    return "\n".join(lines) + "\n"


def waiver(**fields: object) -> dict[str, object]:
    """A valid waiver row for CHECK unless `fields` says otherwise (None drops a column)."""
    row: dict[str, object] = {"check": CHECK, "reason": "vendor ticket 42", "owner": "qa@example.org", "expires": LIVE}
    row.update(fields)
    return {k: v for k, v in row.items() if v is not None}


@dataclass(frozen=True)
class Run:
    proc: subprocess.CompletedProcess[str]
    out: Path

    @property
    def console(self) -> str:
        return self.proc.stdout + self.proc.stderr

    def document(self) -> dict[str, Any]:
        return dict(json.loads((self.out / "results.json").read_text(encoding="utf-8")))

    def check(self) -> dict[str, Any]:
        checks = {c["check"]: c for c in self.document()["checks"]}
        assert CHECK in checks, sorted(checks)
        return dict(checks[CHECK])


def conformance_run(directory: Path, text: str | None, *, fault: bool = True) -> Run:
    """`conformance run` of the one check in `directory`, with `text` as its waivers file (none if None)."""
    directory.mkdir(parents=True, exist_ok=True)
    args = [*CONFORMANCE_RUN, "-k", KEYWORD]
    if fault:
        args += ["--fault", FAULT]
    if text is not None:
        (directory / "waivers.toml").write_text(text, encoding="utf-8")
        args += ["--waivers", "waivers.toml"]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=directory, timeout=120)
    return Run(proc, directory / "out")


@pytest.fixture(scope="module")
def requirement(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The check fails under the fault without waivers (what every waiver below is about); its requirement id."""
    run = conformance_run(tmp_path_factory.mktemp("unwaived"), None)
    assert run.proc.returncode == 1, run.console[-3000:]
    result = run.check()
    assert result["outcome"] == "fail"
    assert result["waiver"] is None and result["waiver_expired"] is None
    assert isinstance(result["requirement"], str) and result["requirement"]
    return str(result["requirement"])


@pytest.fixture(scope="module")
def waived(tmp_path_factory: pytest.TempPathFactory, requirement: str) -> Run:
    """One run with a live waiver naming the failing check by its id."""
    run = conformance_run(tmp_path_factory.mktemp("waived"), waivers_toml(waiver()))
    assert run.proc.returncode == 0, run.console[-3000:]
    return run


# 1. A live waiver by check id: the failure is waived in every report.


def test_a_waived_failure_is_waived_in_results_json(waived: Run, requirement: str) -> None:
    result = waived.check()
    assert result["outcome"] == "waived"
    assert result["requirement"] == requirement
    assert "waiver #1" in result["waiver"] and "vendor ticket 42" in result["waiver"]
    assert "qa@example.org" in result["waiver"] and LIVE.isoformat() in result["waiver"]
    assert result["waiver_expired"] is None
    document = waived.document()
    assert document["waivers"]["applied"] == [{"waiver": result["waiver"], "check": CHECK}]
    assert document["waivers"]["expired"] == [] and document["waivers"]["stale"] == []


def test_a_waived_failure_is_waived_on_the_console(waived: Run) -> None:
    console = waived.proc.stdout
    assert "waived (failures a waiver covers; they do not fail the run):" in console
    section = console.split("waived (failures a waiver covers", 1)[1]
    assert CHECK in section and "vendor ticket 42" in section
    assert "1 waived, 0 fail" in console
    assert "failed:" not in section and "FAILED" not in console


def test_a_waived_failure_is_a_skip_with_its_waiver_in_junit(waived: Run) -> None:
    cases = ET.parse(waived.out / "junit.xml").getroot().findall(".//testcase")
    case = next(c for c in cases if c.get("name") == "test_no_token_is_issued[missing-jti]")
    assert case.find("failure") is None and case.find("error") is None
    skipped = case.find("skipped")
    assert skipped is not None
    assert skipped.get("message", "").startswith("waived: ")
    assert "vendor ticket 42" in skipped.get("message", "")
    system_out = case.find("system-out")
    assert system_out is not None and (system_out.text or "").startswith("WAIVED ")
    assert "waiver #1" in (system_out.text or "")


def test_a_waived_failure_is_listed_in_summary_md(waived: Run, requirement: str) -> None:
    summary = (waived.out / "summary.md").read_text(encoding="utf-8")
    assert "| area | pass | warning | waived | fail |" in summary
    assert "| token | 0 | 0 | 1 | 0 |" in summary
    section = summary.split("Waived failures", 1)[1]
    assert requirement in section and CHECK in section and "vendor ticket 42" in section


def test_a_waived_failure_is_a_tagged_skip_in_allure(waived: Run) -> None:
    results = [json.loads(p.read_text(encoding="utf-8")) for p in (waived.out / "allure-results").glob("*-result.json")]
    result = next(r for r in results if r.get("fullName") == CHECK)
    assert result["status"] == "skipped"
    assert {"name": "tag", "value": "waived"} in result["labels"]
    assert result["statusDetails"]["message"].startswith("waived: "), result["statusDetails"]["message"]


# 2. A waiver by requirement id, or by check without its case, covers the same failure.


@pytest.mark.parametrize("how", ["requirement", "check-without-case"])
def test_a_waiver_by_requirement_or_without_the_case_covers_the_failure(
    how: str, tmp_path: Path, requirement: str
) -> None:
    row = waiver(check=None, requirement=requirement) if how == "requirement" else waiver(check=CHECK.split("[", 1)[0])
    run = conformance_run(tmp_path, waivers_toml(row))
    assert run.proc.returncode == 0, run.console[-3000:]
    result = run.check()
    assert result["outcome"] == "waived"
    assert f"waiver #1 ({row.get('requirement') or row['check']})" in result["waiver"]
    assert run.document()["waivers"]["applied"][0]["check"] == CHECK


# 3. An expired waiver does not apply.


def test_an_expired_waiver_does_not_waive_and_says_so(tmp_path: Path, requirement: str) -> None:
    run = conformance_run(tmp_path, waivers_toml(waiver(check=None, requirement=requirement, expires=EXPIRED)))
    assert run.proc.returncode == 1, run.console[-3000:]
    result = run.check()
    assert result["outcome"] == "fail"
    assert result["waiver"] is None
    assert f"expired on {EXPIRED.isoformat()}" in result["waiver_expired"]
    assert f"not waived: waiver #1 ({requirement})" in run.proc.stdout
    failed = run.proc.stdout.split("failed:", 1)[1]
    assert "not waived:" in failed and "expired" in failed
    waivers = run.document()["waivers"]
    assert waivers["applied"] == [] and waivers["stale"] == []
    assert [w["check"] for w in waivers["expired"]] == [CHECK]
    cases = ET.parse(run.out / "junit.xml").getroot().findall(".//testcase")
    failure = next(c for c in cases if c.get("name") == "test_no_token_is_issued[missing-jti]").find("failure")
    assert failure is not None and "not waived:" in (failure.text or "") and "expired" in (failure.text or "")


# 4. A live waiver whose check passes is stale.


def test_a_waiver_whose_check_passes_is_stale(tmp_path: Path) -> None:
    run = conformance_run(tmp_path, waivers_toml(waiver()), fault=False)
    assert run.proc.returncode == 0, run.console[-3000:]
    assert run.check()["outcome"] == "pass"
    waivers = run.document()["waivers"]
    assert waivers["applied"] == [] and waivers["expired"] == []
    assert [w["waiver"] for w in waivers["stale"]] == [f"waiver #1 ({CHECK}) in waivers.toml"]
    assert f"stale waiver: waiver #1 ({CHECK}) in waivers.toml: its checks pass now" in run.proc.stdout
    assert "Stale waivers" in (run.out / "summary.md").read_text(encoding="utf-8")


# 5. A target pattern limits a waiver to the targets it matches.


@pytest.mark.parametrize(
    ("pattern", "applies"),
    [("https://staging.example.org/*", False), ("embedded:*", True)],
    ids=["staging", "embedded"],
)
def test_a_waiver_applies_only_to_the_targets_its_pattern_matches(tmp_path: Path, pattern: str, applies: bool) -> None:
    run = conformance_run(tmp_path, waivers_toml(waiver(target=pattern)))
    assert run.proc.returncode == (0 if applies else 1), run.console[-3000:]
    result = run.check()
    assert result["outcome"] == ("waived" if applies else "fail")
    assert (result["waiver"] is not None) == applies
    assert result["waiver_expired"] is None
    assert run.document()["waivers"]["stale"] == []


# 6. Configuration errors: one line naming the waiver and the problem, exit 2, no check run.

BAD = [
    ("unknown-file", waivers_toml(waiver(check="token/test_nope.py::test_x")), "names no suite file"),
    (
        "unknown-function",
        waivers_toml(waiver(check="token/test_assertion_errors.py::test_nope")),
        "has no check test_nope",
    ),
    ("unknown-requirement", waivers_toml(waiver(check=None, requirement="SBS-NOPE-1")), "is not in the catalogue"),
    ("missing-owner", waivers_toml(waiver(owner=None)), "owner must be a non-empty string"),
    ("expires-string", waivers_toml(waiver(expires=LIVE.isoformat())), "expires must be a date"),
    ("check-and-requirement", waivers_toml(waiver(requirement="SBS-AERR-27")), "exactly one of check or requirement"),
    ("unknown-key", waivers_toml(waiver(tciket="42")), "unknown key 'tciket'"),
    ("invalid-toml", '[[waiver]]\ncheck = "unterminated\n', "is not valid TOML"),
    ("missing-file", None, "does not exist"),
]
"""(id, file text (None: no file), what the message says)."""

ROW_ERRORS = {"unknown-file", "unknown-function", "unknown-requirement", "missing-owner", "expires-string"}
ROW_ERRORS |= {"check-and-requirement", "unknown-key"}


@pytest.mark.parametrize(("text", "expect"), [pytest.param(t, e, id=i) for i, t, e in BAD])
def test_load_waivers_rejects(text: str | None, expect: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    path = tmp_path / "waivers.toml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_waivers(path, SUITES)
    message = str(caught.value)
    assert expect in message
    assert "\n" not in message
    named = f"waiver #1 in {path}" if request.node.callspec.id in ROW_ERRORS else f"waivers file {path}"
    assert named in message


@pytest.mark.parametrize(
    ("row", "expect"),
    [
        pytest.param(waiver(check=None), "exactly one of check or requirement", id="neither"),
        pytest.param(waiver(check="test_assertion_errors.py:test_x"), "is not a check id", id="malformed-check"),
        pytest.param(waiver(reason="  "), "reason must be a non-empty string", id="blank-reason"),
        pytest.param(waiver(target=""), "target must be a URL pattern", id="empty-target"),
        pytest.param(waiver(check="token/assertion_cases.py::_simple"), "names no check", id="helper-module"),
        pytest.param(waiver(check="token/test_assertion_errors.py::perform"), "names no check", id="fixture"),
    ],
)
def test_load_waivers_rejects_more_rows(row: dict[str, object], expect: str, tmp_path: Path) -> None:
    path = tmp_path / "waivers.toml"
    path.write_text(waivers_toml(waiver(), row), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^waiver #2 in {path}: .*{expect}"):
        load_waivers(path, SUITES)


def test_load_waivers_rejects_a_datetime_and_reads_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "waivers.toml"
    path.write_text(waivers_toml(waiver()).replace(LIVE.isoformat(), f"{LIVE.isoformat()}T00:00:00"), "utf-8")
    with pytest.raises(ConfigError, match="expires must be a date"):
        load_waivers(path, SUITES)
    path.write_text(waivers_toml(waiver(), waiver(check=None, requirement="SBS-AERR-27", target="embedded:*")), "utf-8")
    first, second = load_waivers(path, SUITES)
    assert (first.number, first.check, first.expires, first.target) == (1, CHECK, LIVE, None)
    assert (second.number, second.requirement, second.target) == (2, "SBS-AERR-27", "embedded:*")


@pytest.mark.parametrize(("text", "expect"), [pytest.param(t, e, id=i) for i, t, e in BAD])
def test_conformance_run_stops_on_a_bad_waivers_file(text: str | None, expect: str, tmp_path: Path) -> None:
    if text is not None:
        (tmp_path / "waivers.toml").write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [*CONFORMANCE_RUN, "--waivers", "waivers.toml", "--fault", FAULT, "-k", KEYWORD],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("conformance: error: --waivers: ")
    assert "waivers.toml" in lines[0] and expect in lines[0]
    assert "certifying" not in proc.stdout, "pytest was started"
    assert not (tmp_path / "out" / "results.json").exists()


def test_a_bad_waiver_stops_pytest_suites_before_any_check(tmp_path: Path) -> None:
    path = tmp_path / "waivers.toml"
    path.write_text(waivers_toml(waiver(owner=None)), encoding="utf-8")
    proc = suites_in_pytest("-q", "--conformance-waivers", str(path), "-k", KEYWORD, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert f"waiver #1 in {path}: owner must be a non-empty string" in proc.stdout + proc.stderr
    assert "conformance summary" not in proc.stdout and " passed" not in proc.stdout


UNKNOWN_CASE = "token/test_assertion_errors.py::test_no_token_is_issued[missing-jtx]"


def test_an_unknown_case_stops_pytest_suites_at_collection(tmp_path: Path) -> None:
    path = tmp_path / "waivers.toml"
    path.write_text(waivers_toml(waiver(check=UNKNOWN_CASE)), encoding="utf-8")
    # -k selects a different check: the waiver is checked against every collected check, selected or not.
    proc = suites_in_pytest(
        "-q", "--conformance-waivers", str(path), "-k", "test_no_token_is_issued and missing-iss", cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert f"waiver #1 ({UNKNOWN_CASE}) in {path}: no such check" in proc.stdout + proc.stderr
    assert "conformance summary" not in proc.stdout


def test_an_unknown_case_stops_conformance_run_before_any_check(tmp_path: Path) -> None:
    run = conformance_run(tmp_path, waivers_toml(waiver(check=UNKNOWN_CASE)))
    assert run.proc.returncode == 2, run.console[-3000:]
    assert f"waiver #1 ({UNKNOWN_CASE}) in waivers.toml: no such check" in run.console
    assert "conformance summary" not in run.proc.stdout
    assert not (run.out / "results.json").exists()


def test_an_unknown_case_is_one_line_on_stderr_of_conformance_run(tmp_path: Path) -> None:
    run = conformance_run(tmp_path, waivers_toml(waiver(check=UNKNOWN_CASE)))
    assert run.proc.returncode == 2
    lines = run.proc.stderr.splitlines()
    assert len(lines) == 1, run.proc.stderr
    assert UNKNOWN_CASE in lines[0] and "no such check" in lines[0]


# The decisions themselves, without a run.


def make(number: int = 1, **fields: Any) -> Waiver:
    values: dict[str, Any] = {"check": CHECK, "requirement": None, "target": None, "reason": "r", "owner": "o"}
    values |= {"expires": LIVE, "source": "waivers.toml"} | fields
    return Waiver(number=number, **values)


def test_unknown_cases_are_judged_only_in_collected_files() -> None:
    collected = {CHECK, "token/test_assertion_errors.py::test_no_token_is_issued[missing-iss]"}
    files = {"token/test_assertion_errors.py"}
    waivers = [
        make(1),
        make(2, check=UNKNOWN_CASE),
        make(3, check="token/test_assertion_errors.py::test_no_token_is_issued"),
        make(4, check="discovery/test_other.py::test_x[case]"),
        make(5, check=None, requirement="SBS-AERR-27"),
    ]
    problems = unknown_cases(waivers, collected, files)
    assert problems == [
        f"waiver #2 ({UNKNOWN_CASE}) in waivers.toml: no such check (the case in brackets does not exist)"
    ]


def test_decide_prefers_a_live_waiver_and_reports_an_expired_one_otherwise() -> None:
    live, old = make(1), make(2, expires=EXPIRED)
    assert decide([old, live], CHECK, "SBS-AERR-27", "embedded:smart-backend", TODAY) == Decision(live, None)
    decision = decide([old], CHECK, "SBS-AERR-27", "embedded:smart-backend", TODAY)
    assert decision.waiver is None and decision.expired == old
    assert not old.expired(EXPIRED) and old.expired(EXPIRED + dt.timedelta(days=1)), "valid through its expiry day"
    other_case = decide([live], CHECK.replace("missing-jti", "missing-iss"), "SBS-AERR-28", "embedded:x", TODAY)
    assert other_case.waiver is None and other_case.expired is None
    staging = make(3, target="https://staging.example.org/*")
    assert decide([staging], CHECK, None, "https://staging.example.org/fhir", TODAY).waiver == staging
    assert decide([staging], CHECK, None, "https://prod.example.org/fhir", TODAY).waiver is None


def test_stale_needs_a_covered_check_and_only_passes() -> None:
    passed: dict[str, object] = {"check": CHECK, "requirement": "SBS-AERR-27", "outcome": "pass"}
    waived = dict(passed, outcome="waived")
    target = "embedded:smart-backend"
    assert stale([make(1)], [passed], target, TODAY) == [make(1)]
    assert stale([make(1)], [waived], target, TODAY) == []
    assert stale([make(1)], [], target, TODAY) == [], "a waiver whose checks did not run is not stale"
    assert stale([make(1, expires=EXPIRED)], [passed], target, TODAY) == [], "expired, not stale"
    assert stale([make(1, target="https://staging.example.org/*")], [passed], target, TODAY) == []
    by_requirement = make(2, check=None, requirement="SBS-AERR-27")
    assert stale([by_requirement], [passed, dict(passed, check=CHECK + "x", outcome="fail")], target, TODAY) == []


def test_an_unknown_case_under_xdist_is_one_line_and_leaves_the_reports_alone(tmp_path: Path) -> None:
    """xdist restarts a worker that exits: the worker must run nothing and leave the verdict to the controller."""
    before = conformance_run(tmp_path, None, fault=False)
    assert before.proc.returncode == 0
    previous = (before.out / "results.json").read_text(encoding="utf-8")
    (tmp_path / "waivers.toml").write_text(waivers_toml(waiver(check=UNKNOWN_CASE)), encoding="utf-8")
    proc = subprocess.run(
        [*CONFORMANCE_RUN, "-k", KEYWORD, "--waivers", "waivers.toml", "-n", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and UNKNOWN_CASE in lines[0] and "no such check" in lines[0], proc.stderr
    assert (before.out / "results.json").read_text(encoding="utf-8") == previous
    assert not (tmp_path / "out/.run").exists()
