"""Is the target still there? Noticing a server that a request took down, or one never reached.

The recorder reports every exchange here. When a request to an origin that has
answered before gets no answer at all (refused, reset, timed out), the origin is
probed; if the probe gets no answer either, the target is down and the request
that preceded it is the finding: one request took the service down. When the
first requests to the target never connect, the target is unreachable. Either
way the run stops sending: every later check is reported not-run with one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from conformance.core.recording import Exchange

NO_ANSWER = frozenset({"timeout", "connect", "protocol"})
"""Failure kinds that mean the server did not answer (not a TLS, URL or redirect problem of ours)."""


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class Outage:
    """The target stopped answering (`crashed`) or never answered (`unreachable`)."""

    kind: str
    exchange: Exchange
    """The request after which the target went away (for a refused connection: the last one it answered)."""
    check: str | None
    """The check that sent that request."""
    probe_error: str
    reported_by: str | None = None
    """The check that was running when the outage was noticed: its report carries the finding."""
    observed_at: float = field(default_factory=time.time)

    @property
    def summary(self) -> str:
        if self.kind == "unreachable":
            return f"target unreachable: {self.exchange.error}"
        return f"target down since {self.check or 'set-up'}"


def probe_origin(origin: str, timeout: float, attempts: int = 2, pause: float = 0.5) -> str | None:
    """None when the origin answers anything at all (any status counts), else the last error."""
    error = "no attempt"
    for attempt in range(attempts):
        if attempt:
            time.sleep(pause)
        try:
            with httpx.Client(timeout=timeout, verify=False, trust_env=False) as client:
                client.get(origin + "/")
            return None
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return error


@dataclass
class TargetHealth:
    """Watches the run's exchanges; `outage` is set once the target is gone."""

    probe_timeout: float = 5.0
    probe: Callable[..., str | None] = probe_origin
    current_check: str | None = None
    outage: Outage | None = None
    answered: set[str] = field(default_factory=set)
    """Origins that have answered at least once."""
    target_origins: set[str] = field(default_factory=set)
    """Origins of the target (FHIR base, token endpoint, ...): only their silence is judged."""
    last_answered: dict[str, tuple[Exchange, str | None]] = field(default_factory=dict)

    def observe(self, exchange: Exchange) -> None:
        origin = origin_of(exchange.url)
        if exchange.status is not None:
            self.answered.add(origin)
            self.last_answered[origin] = (exchange, self.current_check)
            return
        if self.outage is not None or exchange.failure not in NO_ANSWER:
            return
        # A slow server gets more patience than a reset or refused one: several probes, each as long as a request.
        patience = {"attempts": 3, "pause": 1.0} if exchange.failure == "timeout" else {}
        if origin in self.answered:
            error = self.probe(origin, self.probe_timeout, **patience)
            if error is None:
                return
            blamed, check = exchange, self.current_check
            if exchange.failure == "connect" and origin in self.last_answered:
                # A refused connection never reached the server: it went away after the last request it answered.
                blamed, check = self.last_answered[origin]
            self.outage = Outage("crashed", blamed, check, error, self.current_check)
            return
        never_answered = origin in self.target_origins and not self.answered & self.target_origins
        if never_answered and (
            exchange.failure == "connect" or self.probe(origin, self.probe_timeout, **patience) is not None
        ):
            self.outage = Outage("unreachable", exchange, self.current_check, exchange.error or "", self.current_check)
