"""Exchanges sent side by side: truly concurrent, never overlapping a check's own requests, each sent once.

No test here is timed: concurrency is shown with a barrier the jobs can only pass
together, and order with the server's own log of when each request arrived and ended.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conformance.checking.cases import answer_once
from conformance.core.concurrency import ExchangePool, Halted
from conformance.core.health import TargetHealth
from conformance.core.outcomes import collecting_notes, note
from conformance.core.recording import Exchange, HttpRecorder, capturing
from conformance.core.redaction import Redactor
from tests.conftest import SuiteWorker, run_suites


@dataclass
class LoggingServer:
    """A loopback server that logs ("start"/"end", path) per request; /hold waits until released."""

    url: str
    log: list[tuple[str, str]]
    release: threading.Event


@pytest.fixture
def server() -> Iterator[LoggingServer]:
    log: list[tuple[str, str]] = []
    lock = threading.Lock()
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                log.append(("start", self.path))
            if self.path.startswith("/hold"):
                release.wait(10)
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            with lock:
                log.append(("end", self.path))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield LoggingServer(f"http://127.0.0.1:{httpd.server_port}", log, release)
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()


def _recorder(size: int) -> HttpRecorder:
    http = HttpRecorder(timeout=10)
    http.pool = ExchangePool(size)
    return http


def test_a_group_is_in_flight_at_once() -> None:
    pool = ExchangePool(4)
    barrier = threading.Barrier(4, timeout=5)  # passes only when all four jobs wait at it together
    futures = [pool.submit("check", barrier.wait) for _ in range(4)]
    answers = [f.result(timeout=10) for f in futures]
    pool.close()
    assert [a.error for a in answers] == [None] * 4
    assert sorted(a.value for a in answers) == [0, 1, 2, 3]  # type: ignore[type-var]


def test_concurrency_one_sends_each_case_when_asked(server: LoggingServer) -> None:
    http = _recorder(1)
    asked = answer_once(
        lambda case: http.request("GET", f"{server.url}/{case}", purpose=case),
        upcoming=[("a", "check-a"), ("b", "check-b")],
        pool=http.pool,
    )
    asked("a")
    assert [p for kind, p in server.log if kind == "start"] == ["/a"], "nothing is sent ahead with --concurrency 1"
    http.close()


def test_a_checks_own_request_waits_for_everything_sent_ahead(server: LoggingServer) -> None:
    http = _recorder(4)
    asked = answer_once(
        lambda case: http.request("GET", f"{server.url}/{case}", purpose=case),
        upcoming=[("quick", "c1"), ("hold-1", "c2"), ("hold-2", "c3")],
        pool=http.pool,
    )
    assert asked("quick").status == 200  # the group is on its way; two of it are held by the server
    threading.Timer(0.3, server.release.set).start()
    own = http.request("GET", f"{server.url}/own", purpose="the check's own request")
    assert own.status == 200
    own_start = server.log.index(("start", "/own"))
    held_ends = [server.log.index(("end", f"/hold-{n}")) for n in (1, 2)]
    assert all(end < own_start for end in held_ends), server.log
    http.close()


def test_each_case_is_sent_once_and_owned_by_its_first_reader(server: LoggingServer) -> None:
    http = _recorder(4)
    calls: list[str] = []

    def build(case: str) -> Exchange:
        calls.append(case)
        return http.request("GET", f"{server.url}/{case}", purpose=case)

    asked = answer_once(build, upcoming=[("a", "check-a"), ("b", "check-b"), ("c", "check-c")], pool=http.pool)
    with capturing() as first:
        a = asked("a")
    with capturing() as second:
        assert asked("a") is a
    b = asked("b")
    asked("c")
    assert sorted(calls) == ["a", "b", "c"]
    assert (a.owner, b.owner) == ("check-a", "check-b")
    assert [e.id for e in first] == [a.id], "the first reader carries the exchange as evidence"
    assert second == []
    http.close()


def test_an_error_raised_while_sending_ahead_is_raised_in_each_reader_without_a_resend(server: LoggingServer) -> None:
    http = _recorder(2)
    calls: list[str] = []

    def build(case: str) -> Exchange:
        calls.append(case)
        raise LookupError(f"no {case}")

    asked = answer_once(build, upcoming=[("a", "check-a")], pool=http.pool)
    for _ in range(2):
        with pytest.raises(LookupError, match="no a"):
            asked("a")
    assert calls == ["a"]
    http.close()


def test_one_by_one_an_error_is_kept_too_so_a_case_is_never_sent_twice() -> None:
    calls: list[str] = []

    def build(case: str) -> str:
        calls.append(case)
        raise LookupError(f"no {case}")

    asked = answer_once(build, upcoming=[("a", "check-a")], pool=ExchangePool(1))
    for _ in range(3):
        with pytest.raises(LookupError, match="no a"):
            asked("a")
    assert calls == ["a"], "--concurrency 1 and -n must send what concurrency 8 sends, no more"


@pytest.mark.parametrize("size", [1, 2])
def test_an_error_raised_again_for_each_reader_keeps_the_traceback_it_had(size: int) -> None:
    import traceback

    def build(case: str) -> str:
        raise LookupError(case)

    asked = answer_once(build, upcoming=[("a", "check-a")], pool=ExchangePool(size))
    depths = []
    for _ in range(4):
        with pytest.raises(LookupError) as raised:
            asked("a")
        depths.append(len(traceback.extract_tb(raised.value.__traceback__)))
    assert len(set(depths)) == 1, depths


def test_notes_made_while_sending_ahead_go_to_the_check_that_reads_the_answer() -> None:
    pool = ExchangePool(2)

    def build(case: str) -> str:
        note("answer chosen", case)
        return case

    asked = answer_once(build, upcoming=[("a", "check-a"), ("b", "check-b")], pool=pool)
    with collecting_notes() as asking:
        asked("a")
    with collecting_notes() as reading_b:
        asked("b")
    pool.close()
    assert asking.items == [("answer chosen", "a")], "the check that asked gets its own case's notes only"
    assert reading_b.items == [("answer chosen", "b")]


def test_side_by_side_inside_a_job_of_a_full_pool_runs_its_parts_in_turn() -> None:
    pool = ExchangePool(2)

    def case_with_parts(name: str) -> dict[str, str]:
        return pool.side_by_side({part: functools.partial(str, f"{name}{part}") for part in "xy"})

    futures = [pool.submit(f"check-{n}", functools.partial(case_with_parts, n)) for n in "ab"]
    answers = [f.result(timeout=10) for f in futures]  # a deadlock would wait on workers that never free
    pool.close()
    assert [a.error for a in answers] == [None, None]
    assert [a.value for a in answers] == [{"x": "ax", "y": "ay"}, {"x": "bx", "y": "by"}]


def test_a_halted_run_starts_no_more_jobs() -> None:
    pool = ExchangePool(2, halted=lambda: "target down since x")
    answer = pool.submit("check", lambda: "sent").result(timeout=5)
    pool.close()
    assert isinstance(answer.error, Halted) and answer.value is None


def test_side_by_side_returns_by_name_and_cites_every_exchange(server: LoggingServer) -> None:
    http = _recorder(3)
    with capturing() as captured:
        got = http.side_by_side(
            {name: functools.partial(http.request, "GET", f"{server.url}/{name}", purpose=name) for name in "xyz"}
        )
    assert {n: e.purpose for n, e in got.items()} == {"x": "x", "y": "y", "z": "z"}
    assert sorted(e.purpose for e in captured) == ["x", "y", "z"]
    http.close()


def _failed(purpose: str, owner: str, started: float, failure: str = "protocol") -> Exchange:
    exchange = Exchange(purpose, "POST", "http://127.0.0.1:1/token", [], owner=owner)
    exchange.failure, exchange.error = failure, "the connection was reset"
    exchange.started_at, exchange.finished_at = started, started + 0.01
    return exchange


def test_a_crash_among_requests_sent_together_blames_the_first_and_names_the_others() -> None:
    first = _failed("assertion with two parts", "token/x.py::test_a[two-parts]", 1.0)
    later = _failed("assertion without jti", "token/x.py::test_a[missing-jti]", 1.002)
    refused = _failed("sent after the crash", "token/x.py::test_a[late]", 1.005, failure="connect")
    health = TargetHealth(probe=lambda *a, **k: "connection refused")
    health.answered.add("http://127.0.0.1:1")
    health.overlapping = lambda exchange: [first, later, refused]
    health.current_check = "token/x.py::test_a[zzz]"
    health.observe(later)
    outage = health.outage
    assert outage is not None and outage.kind == "crashed"
    assert outage.exchange is first and outage.check == first.owner == outage.reported_by
    assert outage.suspects == (later,), "a refused connection came after the crash: no suspect"


def test_requests_answered_just_before_a_crash_are_named_as_suspects_too() -> None:
    answered = _failed("assertion with a huge header", "token/x.py::test_a[huge]", 0.999)
    answered.failure, answered.error, answered.status = None, None, 400
    cut_off = _failed("assertion without jti", "token/x.py::test_a[missing-jti]", 1.0)
    health = TargetHealth(probe=lambda *a, **k: "connection refused")
    health.answered.add("http://127.0.0.1:1")
    health.overlapping = lambda exchange: [answered, cut_off]
    health.observe(answered)
    health.observe(cut_off)
    outage = health.outage
    assert outage is not None and outage.exchange is cut_off, "the best guess is the request that got no answer"
    assert outage.answered_beside == (answered,), "an answered request may have taken the server down afterwards"


def test_a_request_of_the_check_itself_is_blamed_as_before() -> None:
    own = Exchange("own", "POST", "http://127.0.0.1:1/token", [])
    own.failure, own.error = "protocol", "reset"
    health = TargetHealth(probe=lambda *a, **k: "connection refused")
    health.answered.add("http://127.0.0.1:1")
    health.overlapping = lambda exchange: pytest.fail("a check's own request overlaps nothing")
    health.current_check = "token/x.py::test_b"
    health.observe(own)
    assert health.outage is not None and health.outage.check == "token/x.py::test_b" and not health.outage.suspects


def test_secrets_learnt_from_many_threads_are_all_masked() -> None:
    redactor = Redactor()
    secrets = [f"secret-value-{n:04d}-abcdef" for n in range(400)]

    def learn(part: list[str]) -> None:
        for value in part:
            redactor.add_secret(value)
            redactor.text(value)  # masking while others learn must not lose a secret nor raise

    threads = [threading.Thread(target=learn, args=(secrets[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(secret not in redactor.text(" ".join(secrets)) for secret in secrets)


ACCEPTS_BAD_REGISTRATIONS = (
    "register-accept-any-grant-type",
    "register-accept-unsupported-scope",
    "register-accept-any-auth-method",
    "register-lenient-metadata",
    "register-accept-alg-none",
    "register-accept-expired-statement",
    "register-skip-signature",
    "register-ignore-san",
)


def _outcomes_and_requests(
    tmp_path: Path, keys_dir: Path, worker: SuiteWorker, profile: str, *extra: str, faults: tuple[str, ...] = ()
) -> Any:
    proc, results = run_suites(tmp_path, *extra, profile=profile, keys_dir=keys_dir, worker=worker, faults=faults)
    document = (tmp_path / "results.json").read_text()
    return proc, {check: r["outcome"] for check, r in results.items()}, document


@pytest.mark.parametrize(
    ("profile", "faults"),
    [
        ("smart-backend", ()),
        ("cerner-carequality", ()),
        ("smart-backend", ("reject-rs384",)),
        # The run's token reads nothing: checks behind authorized_read skip, their groups must not be sent anyway.
        ("smart-backend", ("tokens-not-accepted-by-fhir",)),
        # Bad registrations a faulty server accepts each replace the main client's registration: sent side by
        # side, then the main client registers again, so the later checks meet the same registration either way.
        ("udap", ACCEPTS_BAD_REGISTRATIONS),
    ],
    ids=[
        "smart-backend",
        "cerner-carequality",
        "reject-rs384",
        "tokens-not-accepted-by-fhir",
        "udap-accepting-bad-registrations",
    ],
)
def test_side_by_side_and_one_by_one_give_the_same_verdicts_with_the_same_requests(
    profile: str, faults: tuple[str, ...], tmp_path: Path, keys_dir: Path, suite_worker: SuiteWorker
) -> None:
    import json

    runs = {}
    for concurrency in ("1", "8"):
        out = tmp_path / concurrency
        out.mkdir()
        proc, outcomes, document = _outcomes_and_requests(
            out, keys_dir, suite_worker, profile, "--conformance-concurrency", concurrency, faults=faults
        )
        assert proc.returncode == (1 if faults else 0), proc.stdout[-3000:]
        parsed = json.loads(document)
        runs[concurrency] = (outcomes, parsed["requests"], {c["check"]: c["requests"] for c in parsed["checks"]})
    assert runs["1"][0] == runs["8"][0]
    assert runs["1"][1] == runs["8"][1], "sending ahead must send no request twice and none extra"
    if profile == "udap":
        # A group sent ahead is put down to the check that started it; one by one, each case is its own.
        grouped = {c: n for c, n in runs["8"][2].items() if "test_bad_registration_is_refused" in c and n > 2}
        assert grouped, "the bad registrations are sent side by side"
        one_by_one = [n for c, n in runs["1"][2].items() if "test_bad_registration_is_refused" in c]
        assert 2 in one_by_one, "an accepted case costs its reader one more request: the main client again"
