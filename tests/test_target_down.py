"""A target that a request takes down is a finding; one never reached is one line, not hundreds of broken checks."""

from __future__ import annotations

import time
from pathlib import Path

from conformance.core.health import Outage, TargetHealth
from conformance.core.recording import Exchange
from tests.conftest import SuiteWorker, run_suites
from tests.test_cli_end_to_end import free_port

KILLER = "token/test_assertion_errors.py::test_no_token_is_issued[malformed-two-parts]"


def test_a_request_that_takes_the_server_down_fails_its_check_and_stops_the_run(
    keys_dir: Path, tmp_path: Path, suite_worker: SuiteWorker
) -> None:
    started = time.monotonic()
    proc, results = run_suites(tmp_path, keys_dir=keys_dir, faults=("malformed-jwt-kills-server",), worker=suite_worker)
    elapsed = time.monotonic() - started
    failed = {c: r for c, r in results.items() if r["outcome"] == "fail"}
    assert list(failed) == [KILLER], failed
    assert failed[KILLER]["requirement"] == "SBS-AVAIL-01"
    assert failed[KILLER]["message"] == f"target down since {KILLER}"
    order = list(results)  # results.json is sorted by check id; compare by outcome instead
    not_run = [c for c in order if results[c]["outcome"] == "not-run"]
    assert len(not_run) > 100, "the checks after the crash should not run"
    assert not [c for c in order if results[c]["outcome"] == "broken"], "no check may be blamed on the harness"
    output = proc.stdout
    assert f"target down since {KILLER}: {len(not_run)} later checks were not run" in output
    assert (
        "the server stopped answering this client after this request: one unauthenticated request takes the service down"
        in output
    )
    assert "reproduce: curl" in output
    assert proc.returncode == 1
    assert elapsed < 60


def test_an_unreachable_target_is_one_line_and_the_rest_not_run(tmp_path: Path, suite_worker: SuiteWorker) -> None:
    base = f"http://127.0.0.1:{free_port()}/fhir"
    proc, results = run_suites(tmp_path, "--target-url", base, "--patient-id", "1", profile="ccde", worker=suite_worker)
    outcomes = sorted(r["outcome"] for r in results.values())
    assert outcomes.count("broken") == 1 and set(outcomes) == {"broken", "not-run"}, outcomes
    assert "target unreachable: could not connect to" in proc.stdout
    # A handful of lines whatever the number of checks: no per-check repetition of the cause.
    assert proc.stdout.count("connection refused") <= 6, proc.stdout[-3000:]
    assert len(proc.stdout.splitlines()) < 40, proc.stdout[-3000:]


def _exchange(url: str, status: int | None, failure: str | None = None) -> Exchange:
    exchange = Exchange("probe", "GET", url, [])
    exchange.status, exchange.failure, exchange.error = status, failure, None if status else "no answer"
    return exchange


def test_silence_after_an_answer_is_an_outage_only_when_the_probe_fails_too() -> None:
    alive = TargetHealth(probe=lambda origin, timeout, **_: None, target_origins={"http://t"})
    alive.observe(_exchange("http://t/fhir/metadata", 200))
    alive.observe(_exchange("http://t/token", None, "timeout"))
    assert alive.outage is None, "a slow request to a server that still answers is no outage"

    dead = TargetHealth(probe=lambda origin, timeout, **_: "ConnectError: refused", target_origins={"http://t"})
    dead.current_check = "token/test_x.py::test_y"
    dead.observe(_exchange("http://t/fhir/metadata", 200))
    dead.observe(_exchange("http://t/token", None, "protocol"))
    assert isinstance(dead.outage, Outage) and dead.outage.kind == "crashed"
    assert dead.outage.summary == "target down since token/test_x.py::test_y"

    never = TargetHealth(probe=lambda origin, timeout, **_: "refused", target_origins={"http://t"})
    never.observe(_exchange("http://t/fhir/metadata", None, "tls"))
    assert never.outage is None, "a TLS problem is the configuration's, not an outage"
    never.observe(_exchange("http://t/fhir/metadata", None, "connect"))
    assert never.outage is not None and never.outage.kind == "unreachable"


def test_a_refused_connection_blames_the_last_request_the_server_answered() -> None:
    """A refused connection never reached the server: it went away after the last answer it gave."""
    health = TargetHealth(probe=lambda origin, timeout, **_: "refused", target_origins={"http://t"})
    health.current_check = "a.py::test_one"
    answered = _exchange("http://t/token", 400)
    health.observe(answered)
    health.current_check = "a.py::test_two"
    health.observe(_exchange("http://t/token", None, "connect"))
    assert health.outage is not None
    assert health.outage.exchange is answered and health.outage.check == "a.py::test_one"
    assert health.outage.reported_by == "a.py::test_two"
