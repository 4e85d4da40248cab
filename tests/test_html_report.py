"""The HTML report as a user sees it: Allure Report 3 builds it, headless Chromium renders it.

Needs Debian's chromium and the pinned Allure 3 (`conformance report --install`); `.ci/run` installs both.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.runner import html_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FAILING = "token/test_assertion_errors.py::test_no_token_is_issued[missing-jti]"
CONFORMANCE = [sys.executable, "-m", "conformance.runner.cli"]

needs_the_tools = pytest.mark.skipif(
    CHROMIUM is None or html_report.find_allure() is None,
    reason="needs chromium (apt-get install chromium) and Allure 3 (conformance report --install)",
)


def rendered_text(url: str, expect: str = "Powered by") -> list[str]:
    """The page's visible text after its scripts ran, one string per text node. On a busy machine the report's
    scripts may not have rendered `expect` within Chromium's virtual-time budget: it tries again, with more."""
    text: list[str] = []
    for budget in (15_000, 45_000, 120_000):
        text = _render(url, budget)
        if any(expect in line for line in text):
            break
    return text


def _render(url: str, budget_ms: int) -> list[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}",
                # The report's page loads an analytics script from the internet: nothing leaves loopback here.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    body = done.stdout[done.stdout.find("<body") :]
    body = re.sub(r"<script.*?</script>", "", body, flags=re.S)
    return [line.strip() for line in html.unescape(re.sub(r"<[^>]+>", "\n", body)).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with discovery passing but for one warning and a fault that fails token checks; its report (folder
    form)."""
    work = tmp_path_factory.mktemp("report")
    proc = subprocess.run(
        [
            *CONFORMANCE,
            "run",
            "-q",
            "--reports",
            "out",
            "--fault",
            "lenient-required-claims",
            "--fault",
            "no-smart-security-service",  # a SHOULD miss: a warning
            "-k",
            "test_no_token_is_issued or discovery",
            "--report",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "conformance: HTML report out/html/index.html" in proc.stdout
    return work / "out"


@pytest.fixture(scope="module")
def served(report: Path) -> Iterator[str]:
    """The folder report over loopback HTTP (its pages fetch their data, which file:// does not allow)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(report / "html"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()


def _result_id(report: Path, name: str) -> str:
    by_id = json.loads((report / "html/test-results.json").read_text())["byId"]
    return next(entry["id"] for entry in by_id.values() if entry["name"] == name)


@needs_the_tools
def test_the_overview_names_the_system_and_the_run(served: str) -> None:
    text = rendered_text(served, expect="Metadata")
    assert "SMART Backend Services (private_key_jwt)" in text  # the tree's top level: the system
    for key, value in (("target", "embedded reference server"), ("profile", "smart-backend")):
        assert key in text and value in text, f"the Metadata widget lacks {key}"
    assert "client_id" in text and "conformance-client" in text
    assert any(line.startswith("FHIR B2B conformance: SMART Backend Services") for line in text)


@needs_the_tools
def test_a_failed_check_shows_its_finding_grouping_and_evidence(report: Path, served: str) -> None:
    result_id = _result_id(report, "No token is issued [missing-jti]")
    page = rendered_text(f"{served}#{result_id}", expect="Error")
    # Grouped by system, area and requirement (the breadcrumb and the labels).
    assert page[1:4] == [
        "SMART Backend Services (private_key_jwt)",
        "Token",
        "SBS-AERR-27: an assertion without jti is refused (replay check needs it)",
    ], page[:8]
    assert FAILING in page and "Failed" in page
    error = page[page.index("Error") + 1]
    assert error.startswith("a token request with a defect was accepted: jti is left out (expected: refusal")
    assert "actual: HTTP 200" in error
    assert any(line.startswith("reproduce: curl ") for line in page), "the trace keeps the curl line"
    attachments = rendered_text(f"{served}#{result_id}/attachments", expect="response")
    assert "request" in attachments and "response" in attachments
    files = [p.read_text() for p in (report / "allure-results").glob("*-attachment.txt")]
    assert any("POST" in f and "client_assertion" in f and "[signature-redacted]" in f for f in files)


@needs_the_tools
def test_warnings_have_a_category_of_their_own(served: str) -> None:
    text = rendered_text(f"{served}#categories", expect="Warnings (")
    warnings = text.index("Warnings (SHOULD-level misses; the checks passed)")
    assert text[warnings + 1] == "1", text[warnings - 4 : warnings + 4]
    assert "Spec violations (a requirement the server must meet)" in text


@needs_the_tools
def test_the_single_file_report_opens_from_disk(report: Path, tmp_path: Path) -> None:
    index = html_report.build(report, single_file=True, output=tmp_path / "single")
    assert sorted(p.name for p in index.parent.iterdir() if p.suffix == ".html") == ["index.html"]
    text = rendered_text(index.as_uri(), expect="Metadata")
    assert "SMART Backend Services (private_key_jwt)" in text and "Metadata" in text


@needs_the_tools
def test_history_is_carried_from_report_to_report(report: Path, tmp_path: Path) -> None:
    history = report / "history.jsonl"
    before = len(history.read_text().splitlines())
    html_report.build(report, output=tmp_path / "again")
    assert len(history.read_text().splitlines()) == before + 1


def test_a_missing_allure_is_one_line_saying_how_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "out/allure-results").mkdir(parents=True)
    (tmp_path / "out/allure-results/x-result.json").write_text("{}")
    env = {"XDG_CACHE_HOME": str(tmp_path / "empty-cache"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [*CONFORMANCE, "report", "--reports", "out"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "conformance report --install" in proc.stderr, proc.stderr


def test_no_results_is_one_line_saying_what_to_run(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*CONFORMANCE, "report", "--reports", "nothing"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert proc.returncode == 2 and "run `conformance run --reports nothing` first" in proc.stderr


def test_output_never_replaces_anything_but_an_earlier_report(tmp_path: Path) -> None:
    reports = tmp_path / "out"
    (reports / "allure-results").mkdir(parents=True)
    (reports / "allure-results/x-result.json").write_text("{}")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    (tmp_path / "afile").write_text("x")
    for output, says in (
        (victim, "holds no earlier report"),
        (reports, "would overwrite the reports"),
        (tmp_path / "afile", "is a file"),
    ):
        with pytest.raises(html_report.ReportError, match=says):
            html_report.build(reports, output=output)
    assert (victim / "keep.txt").read_text() == "mine"
