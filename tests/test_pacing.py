"""Deadlines, rate-limit retries and pacing: what bounds a request and what a rate-limited run spends."""

from __future__ import annotations

import time
from email.utils import formatdate

from pytest_httpx import HTTPXMock

from conformance.core.pacing import Pacer, RetryBudget, retry_after_seconds
from conformance.core.recording import HttpRecorder
from tests.misbehaving_target import MisbehavingTarget


def test_one_deadline_bounds_a_server_that_trickles_its_headers() -> None:
    """Per-read timeouts never fire when a byte arrives every half second; the total deadline does."""
    target = MisbehavingTarget("trickle-headers")
    try:
        started = time.monotonic()
        exchange = HttpRecorder(timeout=1.5).request("GET", f"{target.origin}/fhir/metadata", purpose="read")
        elapsed = time.monotonic() - started
    finally:
        target.stop()
    assert exchange.status is None and exchange.failure == "timeout"
    assert elapsed < 2.5, f"{elapsed:.1f} s for a 1.5 s deadline"


def test_retry_after_is_read_as_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("3") == 3.0
    in_ten = formatdate(time.time() + 10, usegmt=True)
    assert 8 <= (retry_after_seconds(in_ten) or 0) <= 10
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_a_429_is_waited_out_within_the_budget(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="https://as.example/token", status_code=429, headers={"Retry-After": "0"})
    httpx_mock.add_response(url="https://as.example/token", json={"access_token": "x"})
    recorder = HttpRecorder()
    exchange = recorder.request("POST", "https://as.example/token", purpose="token", form={"a": "b"})
    assert exchange.status == 200 and len(exchange.retries) == 1
    assert recorder.requests_sent == 2 and recorder.retry.retries == 1


def test_a_target_that_stays_rate_limited_is_broken_not_failed(httpx_mock: HTTPXMock) -> None:
    for _ in range(3):
        httpx_mock.add_response(url="https://as.example/token", status_code=429, headers={"Retry-After": "0"})
    recorder = HttpRecorder(retry=RetryBudget(attempts=2, run_seconds=5))
    exchange = recorder.request("POST", "https://as.example/token", purpose="token", form={"a": "b"})
    assert exchange.status is None and exchange.failure == "rate-limited"
    assert exchange.error is not None and "rate limited: HTTP 429" in exchange.error and "--max-rps" in exchange.error
    assert recorder.retry.given_up == 1


def test_the_run_budget_caps_the_waiting() -> None:
    budget = RetryBudget(attempts=5, run_seconds=3)
    assert budget.wait_for(0, "2") == 2
    assert budget.wait_for(1, "2") is None, "a wait beyond what is left of the run's budget is not taken"
    assert budget.waited == 2 and budget.given_up == 1


def test_a_503_without_retry_after_is_not_retried(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="https://fhir.example/metadata", status_code=503)
    recorder = HttpRecorder()
    exchange = recorder.request("GET", "https://fhir.example/metadata", purpose="read")
    assert exchange.status == 503 and recorder.requests_sent == 1


def test_max_rps_spaces_requests_evenly() -> None:
    pacer = Pacer(max_rps=20)
    started = time.monotonic()
    for _ in range(6):
        pacer.wait_turn()
    assert time.monotonic() - started >= 0.24, "six turns at 20 per second take at least a quarter second"
