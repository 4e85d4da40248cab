"""Rate limits: pacing what the run sends, and waiting out 429s within a budget.

A production server that answers 429 (or 503 with Retry-After) is asking the
client to come back later (RFC 6585 §4, RFC 9110 §10.2.3 and §15.6.4); that is
not non-conformance. The recorder retries such answers, waiting what the server
asks, within a per-request number of retries and a per-run total of waiting.
When the budget is spent the request is reported as rate limited (broken), and
the figures appear in the summary so a user can lower `--max-rps` or raise the
budget.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

DEFAULT_BACKOFF = 1.0
"""Seconds to wait after a 429 that does not say how long (doubled on each retry)."""


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); None when unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def asks_to_slow_down(status: int | None, retry_after: str | None) -> bool:
    """429 always; 503 only with Retry-After (without it, 503 is an outage or the server's failure)."""
    return status == 429 or (status == 503 and retry_after is not None)


@dataclass
class RetryBudget:
    """How much a run waits for a rate-limiting target, and what it spent."""

    attempts: int = 2
    """Retries of one request after a rate-limit answer."""
    run_seconds: float = 60.0
    """Total seconds the whole run may spend waiting."""
    waited: float = 0.0
    retries: int = 0
    given_up: int = 0
    """Requests still rate limited when their retries or the run's budget ran out."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wait_for(self, attempt: int, retry_after: str | None) -> float | None:
        """Seconds to wait before retry number `attempt + 1`, or None to give up; reserves the wait."""
        asked = retry_after_seconds(retry_after)
        wait = asked if asked is not None else DEFAULT_BACKOFF * (2**attempt)
        with self._lock:
            if attempt >= self.attempts or wait > self.run_seconds - self.waited:
                self.given_up += 1
                return None
            self.waited += wait
            self.retries += 1
        return wait


class Pacer:
    """At most `max_rps` requests per second across the run (all threads), evenly spaced."""

    def __init__(self, max_rps: float | None = None) -> None:
        self.interval = 1.0 / max_rps if max_rps else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait_turn(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)
