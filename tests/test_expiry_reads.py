"""Reading after a credential ended: judged at the first refusal, or at a deadline that allows whole-second clocks
and a little leeway (conformance.flows.expiry)."""

from __future__ import annotations

import pytest

from conformance.core.recording import Exchange
from conformance.flows import expiry
from conformance.flows.expiry import GRACE, read_until_refused


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


def _server(clock: Clock, honoured_until: float, sent: list[float]) -> object:
    def read() -> Exchange:
        sent.append(clock.now)
        clock.now += 0.01  # the round trip
        return Exchange(
            "read", "GET", "http://127.0.0.1/fhir/Patient/1", [], status=200 if clock.now < honoured_until else 401
        )

    return read


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock()
    monkeypatch.setattr(expiry.time, "sleep", found.sleep)
    return found


def test_a_server_that_stops_on_time_is_judged_at_once(clock: Clock) -> None:
    sent: list[float] = []
    after = read_until_refused(_server(clock, 101.0, sent), ends_at=101.0, now=clock)  # type: ignore[arg-type]
    assert after.last.status == 401 and after.reads == 1
    assert sent == [pytest.approx(101.05)]


def test_a_whole_second_clock_is_read_again_until_it_refuses(clock: Clock) -> None:
    sent: list[float] = []
    after = read_until_refused(_server(clock, 101.9, sent), ends_at=101.0, now=clock)  # type: ignore[arg-type]
    assert after.last.status == 401, "honoured 0.9 s past the end is within the grace: not judged a failure"
    assert 1 < after.reads <= 4 and sent == sorted(sent)
    assert after.seconds_past_the_end < GRACE + 0.05


def test_a_server_that_never_stops_is_judged_at_the_deadline(clock: Clock) -> None:
    sent: list[float] = []
    after = read_until_refused(_server(clock, 1e9, sent), ends_at=101.0, now=clock)  # type: ignore[arg-type]
    assert after.last.status == 200
    assert sent[-1] == pytest.approx(101.0 + GRACE), "the last read is at the deadline, not before"
    assert after.reads <= 5, "a handful of reads, not a busy loop"


def test_the_users_longer_leeway_moves_the_deadline(clock: Clock) -> None:
    sent: list[float] = []
    after = read_until_refused(_server(clock, 1e9, sent), ends_at=101.0, deadline=130.0, now=clock)  # type: ignore[arg-type]
    assert sent[-1] == pytest.approx(130.0)
    assert after.reads <= 10


def test_no_answer_stops_the_reads(clock: Clock) -> None:
    calls: list[float] = []

    def read() -> Exchange:
        calls.append(clock.now)
        return Exchange("read", "GET", "http://127.0.0.1/", [], error="connection refused", failure="connect")

    after = read_until_refused(read, ends_at=101.0, now=clock)
    assert after.reads == 1 and after.last.status is None
