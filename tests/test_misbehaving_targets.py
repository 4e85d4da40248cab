"""The suite against targets that misbehave: every run ends within its bound, writes its reports, gets the right
outcome class and exit code, and sends no credential to a redirect host.

The bound (README, "How long a run can take"): a target that never answers is
found unreachable on the first request, which costs one request timeout plus the
probe (three attempts, each at most one timeout, one second apart); every later check
is not run. With --timeout 2 every run here ends within BOUND, start-up included.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.mock.server import MockServer
from tests.conftest import reference_with_suite_client, suite_client_flags
from tests.misbehaving_target import MisbehavingTarget

TIMEOUT = 2.0
BOUND = 45.0
"""Seconds a run against any of these targets may take (start-up included, on a loaded 2-core CI machine), with
--timeout 2."""


@dataclass(frozen=True)
class Expected:
    exit_code: int
    outcomes: frozenset[str]
    """Outcome classes that must each appear."""
    never: frozenset[str] = frozenset()
    """Outcome classes that must not appear."""
    says: str | tuple[str, ...] = ""
    """Text the console must show (one of them, for a tuple)."""


UNREACHABLE = Expected(3, frozenset({"broken", "not-run"}), frozenset({"fail", "pass"}), "target unreachable")
EXPECTED = {
    "hang": UNREACHABLE,
    "trickle-headers": UNREACHABLE,
    "slow-body": UNREACHABLE,
    "reset": UNREACHABLE,
    "reset-mid-body": UNREACHABLE,
    "http-500": Expected(1, frozenset({"fail"}), frozenset({"broken"})),
    "html": Expected(1, frozenset({"fail"}), frozenset({"broken"})),
    "bad-json": Expected(1, frozenset({"fail"}), frozenset({"broken"})),
    # On a loaded machine 50 MB may not even reach the size limit before the deadline: either cause is honest.
    "huge": Expected(
        3, frozenset({"broken", "not-run"}), frozenset({"fail", "pass"}), ("http.max_body_bytes", "within 2 s")
    ),
    "redirect-elsewhere": Expected(1, frozenset({"fail"})),
    "echo": Expected(1, frozenset({"fail"})),
    "rate-limited": Expected(0, frozenset({"pass"}), frozenset({"fail", "broken"})),
    "dies": Expected(3, frozenset({"fail", "not-run"}), frozenset({"broken"}), "target down since"),
    "gateway-dies": Expected(3, frozenset({"fail", "not-run"}), frozenset({"broken"}), "target down since"),
    # Slow from some point on is not a crash: nothing refused or reset, so no check fails for it.
    "goes-slow": Expected(3, frozenset({"pass", "broken", "not-run"}), frozenset({"fail"}), "target unresponsive"),
    # Answers cut now and then: those checks are broken with the cause, the rest judged, none failed.
    "flaky": Expected(3, frozenset({"pass", "broken"}), frozenset({"fail"}), "the connection was reset"),
    # Verification is on by default: the preflight stops with the one line that says what to set.
    "untrusted-tls": Expected(3, frozenset({"not-run"}), frozenset({"fail", "pass", "broken"}), "http.ca_bundle"),
}
PROXIED = {"rate-limited", "dies", "gateway-dies", "goes-slow", "flaky"}


@pytest.fixture(scope="module")
def reference(keys_dir: Path) -> Iterator[MockServer]:
    """The reference server with the suite's client registered, for the modes that forward to a real server."""
    with reference_with_suite_client(keys_dir) as server:
        yield server


MEASURED = (
    "import resource, sys\n"
    "from conformance.runner.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print(f'peak_rss_kib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)
"""`conformance` in a process that reports its own peak memory (RUSAGE_CHILDREN would mix in earlier runs)."""


def _run(tmp_path: Path, base: str, keys_dir: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            MEASURED,
            "run",
            "-q",
            "--reports",
            "out",
            "--target-url",
            base,
            *suite_client_flags(keys_dir),
            "--timeout",
            str(TIMEOUT),
            *extra,
        ],
        cwd=tmp_path,
        timeout=BOUND * 3,
        capture_output=True,
        text=True,
    )
    return proc, time.monotonic() - started


def _peak_mib(proc: subprocess.CompletedProcess[str]) -> float:
    found = re.search(r"peak_rss_kib=(\d+)", proc.stderr)
    assert found, proc.stderr[-2000:]
    return int(found.group(1)) / 1024


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_a_misbehaving_target_gets_an_honest_bounded_run(
    mode: str, tmp_path: Path, keys_dir: Path, reference: MockServer
) -> None:
    elsewhere = MisbehavingTarget("echo")  # the host redirects point to: it must never see a credential
    upstream = f"http://127.0.0.1:{reference.port}" if mode in PROXIED else None
    target = MisbehavingTarget(mode, upstream=upstream, elsewhere=elsewhere.origin)
    try:
        proc, elapsed = _run(tmp_path, f"{target.origin}/fhir", keys_dir)
    finally:
        target.stop()
        elsewhere.stop()
    output = proc.stdout + proc.stderr
    expected = EXPECTED[mode]
    assert elapsed < BOUND, f"{mode}: the run took {elapsed:.1f} s"
    assert "Traceback" not in output and "INTERNALERROR" not in output, output[-3000:]
    for report in ("results.json", "junit.xml", "allure-results"):
        assert (tmp_path / "out" / report).exists(), f"{mode}: no {report} written"
    document = json.loads((tmp_path / "out/results.json").read_text())
    outcomes = Counter(r["outcome"] for r in document["checks"])
    assert proc.returncode == expected.exit_code, f"{mode}: exit {proc.returncode}, {outcomes}\n{output[-2500:]}"
    assert expected.outcomes <= set(outcomes), f"{mode}: {outcomes}"
    assert not expected.never & set(outcomes), f"{mode}: {outcomes}"
    says = (expected.says,) if isinstance(expected.says, str) else expected.says
    assert any(text in output for text in says), f"{mode}: {output[-2500:]}"
    if not expected.outcomes & {"pass", "fail"}:
        # Nothing could be judged: a handful of lines, not one traceback per check.
        assert len(output.splitlines()) < 60, f"{mode}: {len(output.splitlines())} console lines"
    assert document["requests"] > 0
    credentials = ("authorization", "client_assertion", "client_secret", "eyJ")
    for request in elsewhere.received:
        seen = json.dumps(request.headers).lower() + request.body.decode("latin-1").lower()
        assert not any(c in seen for c in credentials), f"{mode}: a credential reached the redirect host: {request}"
    if mode == "rate-limited":
        assert document["retries"] > 0 and "retries after rate limiting" in output
    if mode == "huge":
        # Peak memory of the run's process: bodies beyond the limit are neither read nor kept.
        # Compared with a run against a target whose small answers are all errors (same start-up, more checks
        # judged), so a busy CI machine's higher baseline does not count against the bodies.
        peak_mib = _peak_mib(proc)
        small = MisbehavingTarget("http-500")
        try:
            (tmp_path / "baseline").mkdir()
            baseline_mib = _peak_mib(_run(tmp_path / "baseline", f"{small.origin}/fhir", keys_dir)[0])
        finally:
            small.stop()
        assert peak_mib < max(100, baseline_mib + 10), f"peak RSS {peak_mib:.0f} MiB (baseline {baseline_mib:.0f})"
    if mode in ("reset-mid-body", "slow-body", "huge"):
        broken = [r for r in document["checks"] if r["outcome"] == "broken"]
        assert broken, outcomes
        assert "fail" not in outcomes, "an answer that did not arrive whole is never the server's SHALL failure"
