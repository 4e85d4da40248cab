"""A target that a request takes down is a finding; one never reached is one line, not hundreds of broken checks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conformance.core.health import Outage, TargetHealth
from conformance.core.recording import Exchange
from tests.conftest import SuiteWorker, run_suites
from tests.test_cli_end_to_end import free_port

KILLER = "token/test_assertion_errors.py::test_no_token_is_issued[malformed-two-parts]"


def test_a_request_that_takes_the_server_down_fails_its_check_and_stops_the_run(
    keys_dir: Path, tmp_path: Path, suite_worker: SuiteWorker
) -> None:
    started = time.monotonic()
    proc, results = run_suites(
        tmp_path,
        "--conformance-concurrency",
        "1",
        keys_dir=keys_dir,
        faults=("malformed-jwt-kills-server",),
        worker=suite_worker,
    )
    elapsed = time.monotonic() - started
    failed = {c: r for c, r in results.items() if r["outcome"] == "fail"}
    assert list(failed) == [KILLER], failed
    assert failed[KILLER]["requirement"] == "SBS-AVAIL-01"
    assert failed[KILLER]["outage"] == f"target down since {KILLER}"
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
    assert proc.returncode == 3, "down since a check: the rest could not be judged"
    assert elapsed < 60


def test_sent_side_by_side_the_crash_is_one_finding_that_names_every_suspect(
    keys_dir: Path, tmp_path: Path, suite_worker: SuiteWorker
) -> None:
    """With requests in flight together, the one that killed the server cannot be told from the others that died
    with it: one check carries the finding, the rest of its group are named, and nothing is broken."""
    proc, results = run_suites(tmp_path, keys_dir=keys_dir, faults=("malformed-jwt-kills-server",), worker=suite_worker)
    failed = {c: r for c, r in results.items() if r["outcome"] == "fail"}
    assert len(failed) == 1, failed
    ((blamed, finding),) = failed.items()
    assert finding["requirement"] == "SBS-AVAIL-01"
    assert blamed.startswith("token/test_assertion_errors.py::"), blamed
    assert not [c for c, r in results.items() if r["outcome"] == "broken"], "no check may be blamed on the harness"
    assert len([c for c, r in results.items() if r["outcome"] == "not-run"]) > 100
    if "requests sent side by side" in finding["message"]:
        assert "one request takes the service down" in finding["message"], "no request is singled out"
    if blamed != KILLER:
        assert "two parts" in finding["actual"], "the killing request must be among those named"
        assert "--concurrency 1 sends one at a time" in finding["actual"]
    assert proc.returncode == 3


def test_an_unreachable_target_is_one_line_and_the_rest_not_run(tmp_path: Path, suite_worker: SuiteWorker) -> None:
    base = f"http://127.0.0.1:{free_port()}/fhir"
    proc, results = run_suites(
        tmp_path, "--conformance-target-url", base, "--conformance-patient-id", "1", profile="ccde", worker=suite_worker
    )
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


def test_allure_files_the_crash_under_the_availability_rule(tmp_path: Path) -> None:
    """Allure shows the killing check as a failure of the availability rule, not as broken with its own rule."""
    from tests.test_cli_end_to_end import conformance

    proc = conformance(
        "run", "-q", "--concurrency", "1", "--fault", "malformed-jwt-kills-server", "--reports", "out", cwd=tmp_path
    )
    assert proc.returncode == 3, proc.stdout[-3000:]
    allure = [json.loads(p.read_text()) for p in (tmp_path / "out/allure-results").glob("*-result.json")]
    judged = [r for r in allure if r["status"] in ("failed", "broken")]
    assert [r["fullName"] for r in judged] == [KILLER], [(r["fullName"], r["status"]) for r in judged]
    finding = judged[0]
    assert finding["status"] == "failed"
    assert "stopped answering" in finding["statusDetails"]["message"]
    labels = {(label["name"], label["value"]) for label in finding["labels"]}
    assert ("requirement", "SBS-AVAIL-01") in labels and ("severity", "critical") in labels
    assert len([name for name, _ in labels if name == "requirement"]) == 1
    assert [link["name"].split(":")[0] for link in finding["links"]] == ["SBS-AVAIL-01"]


def _gateway(url: str, status: int, retry_after: str | None = None) -> Exchange:
    exchange = _exchange(url, status)
    exchange.response_headers = [("Retry-After", retry_after)] if retry_after else []
    return exchange


def test_a_proxy_answering_502_for_a_dead_server_is_an_outage() -> None:
    """Behind a reverse proxy a crash is not silence but 502/504 (or 503 without Retry-After)."""
    probed: list[str] = []

    def dead(url: str, timeout: float, **_: object) -> str | None:
        probed.append(url)
        return "HTTP 502 too"

    health = TargetHealth(probe=dead, target_origins={"http://t"})
    health.current_check = "a.py::test_one"
    health.observe(_exchange("http://t/fhir/metadata", 200))
    health.observe(_gateway("http://t/token", 502))
    assert health.outage is not None and health.outage.kind == "crashed"
    assert probed == ["http://t/fhir/metadata"], "the probe asks again for what answered well before"
    assert "502 from a gateway" in health.outage.what_happened


def test_one_gateway_error_from_a_live_server_or_a_rate_limit_is_no_outage() -> None:
    alive = TargetHealth(probe=lambda url, timeout, **_: None, target_origins={"http://t"})
    alive.observe(_exchange("http://t/fhir/metadata", 200))
    alive.observe(_gateway("http://t/token", 504))
    assert alive.outage is None, "the server still answers: one 504 is the server's own failure, judged by the check"

    never_probed = TargetHealth(probe=lambda url, timeout, **_: pytest.fail("no probe expected"))
    never_probed.observe(_exchange("http://t/fhir/metadata", 200))
    never_probed.observe(_gateway("http://t/token", 503, retry_after="2"))
    assert never_probed.outage is None, "503 with Retry-After asks the client to slow down"


def test_a_target_that_only_ever_answers_502_is_unreachable() -> None:
    health = TargetHealth(probe=lambda url, timeout, **_: "HTTP 502 too", target_origins={"http://t"})
    health.observe(_gateway("http://t/fhir/metadata", 502))
    assert health.outage is not None and health.outage.kind == "unreachable"
    assert health.outage.summary == "target unreachable: HTTP 502 from a gateway: no server answers behind it"


def test_pytest_and_the_command_agree_that_an_unreachable_target_exits_3(tmp_path: Path, keys_dir: Path) -> None:
    """`pytest suites` sets the same exit code as `conformance run` (3: the target could not be judged)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    base = f"http://127.0.0.1:{free_port()}/fhir"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "suites"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--conformance-target-url",
            base,
            "--conformance-client-id",
            "c",
            "--conformance-private-key",
            str(keys_dir / "client-rs384.pem"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stdout[-2000:]
    assert "the target could not be judged (exit 3): target unreachable" in proc.stdout


def test_a_server_slow_everywhere_is_unresponsive_not_crashed() -> None:
    """Nothing refused or reset: a timeout whose probe times out too is no finding against the server."""
    from conformance.core.probing import ProbeFailure

    health = TargetHealth(
        probe=lambda url, timeout, **_: ProbeFailure("timeout", "nothing in time"), target_origins={"http://t"}
    )
    health.current_check = "a.py::test_one"
    health.observe(_exchange("http://t/fhir/metadata", 200))
    health.observe(_exchange("http://t/token", None, "timeout"))
    assert health.outage is not None and health.outage.kind == "unresponsive"
    assert health.outage.summary.startswith("target unresponsive since a.py::test_one")


ORPHANED_OUTAGE = """
import pytest
from conformance.core.health import Outage
from conformance.core.recording import Exchange
from conformance.runner.pytest_plugin import _state

@pytest.fixture(scope="session")
def target():
    return object()

@pytest.mark.requirement("SBS-TOKEN-01")
def test_a_owner_that_never_reads_its_answer(target):
    pass

@pytest.mark.requirement("SBS-TOKEN-01")
def test_b_running_when_the_crash_is_noticed(target, request):
    killing = Exchange("assertion with two parts", "POST", "http://127.0.0.1:9/token", [])
    killing.failure, killing.error = "protocol", "the connection was reset"
    owner = "test_orphan.py::test_a_owner_that_never_reads_its_answer"
    _state(request.config).health.outage = Outage("crashed", killing, owner, "connection refused", owner)

@pytest.mark.requirement("SBS-TOKEN-01")
def test_c_after_the_crash(target):
    pass
"""


def test_an_outage_whose_reader_has_finished_is_carried_by_the_next_check(pytester: pytest.Pytester) -> None:
    """A request sent ahead for a check that finished without reading it (its precondition failed, say) must not
    take the target down unreported: the check running when it is noticed carries the finding."""
    pytester.makepyfile(test_orphan=ORPHANED_OUTAGE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:allure_pytest", "--conformance-results", "r.json"
    )
    checks = {r["check"].split("::")[-1]: r for r in json.loads((pytester.path / "r.json").read_text())["checks"]}
    assert {name: r["outcome"] for name, r in checks.items()} == {
        "test_a_owner_that_never_reads_its_answer": "pass",
        "test_b_running_when_the_crash_is_noticed": "fail",
        "test_c_after_the_crash": "not-run",
    }
    carried = checks["test_b_running_when_the_crash_is_noticed"]
    assert carried["requirement"] == "SBS-AVAIL-01"
    assert "a request of test_orphan.py::test_a_owner_that_never_reads_its_answer" in carried["message"]
    assert result.ret == 3
