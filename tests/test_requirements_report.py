"""`conformance requirements`: every requirement traced to its checks and their last result."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.checking.requirements import CATALOGUE, Level

CONFORMANCE = [sys.executable, "-m", "conformance.runner.cli"]


@pytest.fixture(scope="module")
def last_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("requirements")
    proc = subprocess.run(
        [*CONFORMANCE, "run", "-q", "--reports", "out", "-k", "discovery"],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    return work / "out/results.json"


def test_each_requirement_lists_its_checks_with_their_last_result(last_run: Path) -> None:
    proc = subprocess.run(
        [*CONFORMANCE, "requirements", "--results", str(last_run)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    checks = json.loads(last_run.read_text())["checks"]
    ran = next(c for c in checks if c["outcome"] == "pass")
    assert f"    {ran['check']} (smart-backend): pass" in proc.stdout
    assert f"{ran['requirement']} [{CATALOGUE[ran['requirement']].level.value}]" in proc.stdout
    assert f"{len(CATALOGUE)} requirements" in proc.stdout


def test_shall_rules_without_a_check_are_listed_with_their_reason(last_run: Path) -> None:
    proc = subprocess.run(
        [*CONFORMANCE, "requirements", "--format", "csv"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert {r["requirement"] for r in rows} == set(CATALOGUE), "every requirement appears"
    unchecked = {r["requirement"] for r in rows if r["last_outcome"] == "no check"}
    shall_unchecked = {rid for rid in unchecked if CATALOGUE[rid].level is Level.SHALL}
    text = subprocess.run([*CONFORMANCE, "requirements"], capture_output=True, text=True, timeout=300).stdout
    assert f"SHALL requirements with no check: {len(shall_unchecked)}" in text
    for rid in shall_unchecked:
        reason = CATALOGUE[rid].untested or "NO CHECK and no reason stated"
        assert f"  {rid}: {CATALOGUE[rid].summary} ({reason})" in text
    # The cross-cutting rules are enforced on every request, not by a check of their own: the report says so.
    assert CATALOGUE["SBS-AVAIL-01"].untested and "SBS-AVAIL-01" in shall_unchecked


def test_a_check_naming_an_unknown_requirement_fails_collection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_checks="""
import pytest

@pytest.fixture(scope="session")
def target():
    return object()

@pytest.mark.requirement("NOPE-99")
def test_something(target):
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:allure_pytest")
    assert result.ret != 0
    assert "unknown requirement id 'NOPE-99'" in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("content", [b"\x00\x01binary", b'{"checks": 5}', b"[1, 2]"])
def test_a_results_file_that_is_not_one_is_a_usage_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "r.json").write_bytes(content)
    proc = subprocess.run(
        [*CONFORMANCE, "requirements", "--results", "r.json"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--results r.json is not a results.json" in proc.stderr
