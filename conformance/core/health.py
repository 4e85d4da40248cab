"""Is the target still there? Noticing a server that a request took down, or one never reached.

The recorder reports every exchange here. When a request to an origin that has
answered before gets no answer at all (refused, reset, timed out), the origin is
probed; if the probe gets no answer either, the target is down and the request
that preceded it is the finding: one request took the service down. When the
first requests to the target never connect, the target is unreachable. Either
way the run stops sending: every later check is reported not-run with one line.

Behind a reverse proxy a dead server does not go silent: the proxy answers 502,
504 or 503 without Retry-After. Such a gateway answer from an origin that gave
real answers before is probed the same way, by asking again for a URL that
answered well earlier; a probe that gets a gateway answer too counts as none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from conformance.core.probing import ProbeFailure, is_gateway_silence, probe_origin
from conformance.core.recording import Exchange

NO_ANSWER = frozenset({"timeout", "connect", "protocol"})
"""Failure kinds that mean the server did not answer (not a TLS, URL or redirect problem of ours)."""
UNUSABLE_AFTER = 2
"""Answers in a row that never arrive whole (over the size limit, cut off) before a target that has never given
a usable one is declared unusable: judging it further would only repeat the same broken line per check."""


def origin_of(url: str) -> str:
    """scheme://host:port of a URL (the URL itself when it does not parse: a target may advertise anything)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
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
    """The check that carries the finding: the one running when it was noticed, or, for an exchange sent ahead,
    the check that reads its answer."""
    observed_at: float = field(default_factory=time.time)
    suspects: tuple[Exchange, ...] = ()
    """Other requests in flight with it that got no answer either: when requests are sent side by side, any of
    them may be the one that took the target down (`--concurrency 1` names it exactly)."""
    answered_beside: tuple[Exchange, ...] = ()
    """Requests in flight with it that were answered before the target went away: a request can be answered and
    still take the server down afterwards, so these are suspects too."""

    @property
    def what_happened(self) -> str:
        """The request's own result: its transport error, or the gateway status that stood for no answer."""
        if self.exchange.status is not None:
            return f"HTTP {self.exchange.status} from a gateway: no server answers behind it"
        return f"no answer ({self.exchange.error})"

    @property
    def summary(self) -> str:
        if self.kind == "unusable":
            return f"target unusable: no answer arrives whole ({self.exchange.error})"
        if self.kind == "unresponsive":
            return f"target unresponsive since {self.check or 'set-up'}: nothing answers within the timeout"
        if self.kind == "unreachable":
            if self.exchange.status is not None:
                return f"target unreachable: {self.what_happened}"
            return f"target unreachable: {self.exchange.error}"
        return f"target down since {self.check or 'set-up'}"


@dataclass
class TargetHealth:
    """Watches the run's exchanges; `outage` is set once the target is gone."""

    probe_timeout: float = 5.0
    probe: Callable[..., ProbeFailure | str | None] = probe_origin
    current_check: str | None = None
    outage: Outage | None = None
    answered: set[str] = field(default_factory=set)
    """Origins that have answered at least once."""
    target_origins: set[str] = field(default_factory=set)
    """Origins of the target (FHIR base, token endpoint, ...): only their silence is judged."""
    last_answered: dict[str, tuple[Exchange, str | None]] = field(default_factory=dict)
    unusable_in_a_row: int = 0
    answered_well: dict[str, str] = field(default_factory=dict)
    """Per origin, a GET URL that once got a 2xx: asking it again tells a dead backend from one bad request."""
    overlapping: Callable[[Exchange], list[Exchange]] | None = None
    """The exchanges in flight with a given one (the recorder's), to name every suspect when several were."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _judged: set[int] = field(default_factory=set, repr=False)

    def halted(self) -> str | None:
        """Why the run stopped sending, or None."""
        outage = self.outage
        return outage.summary if outage is not None else None

    def _owner(self, exchange: Exchange) -> str | None:
        return exchange.owner or self.current_check

    def observe(self, exchange: Exchange) -> None:
        """Judge one finished exchange (called from every thread that sends; one at a time)."""
        with self._lock:
            try:
                self._observe(exchange)
            finally:
                self._judged.add(exchange.id)

    def _observe(self, exchange: Exchange) -> None:
        origin = origin_of(exchange.url)
        if exchange.status is not None and is_gateway_silence(exchange.status, exchange.response_header("retry-after")):
            self._gateway_answer(exchange, origin)
            return
        if exchange.status is not None:
            self.unusable_in_a_row = 0
            self.answered.add(origin)
            self.last_answered[origin] = (exchange, self._owner(exchange))
            if exchange.method == "GET" and 200 <= exchange.status < 300:
                self.answered_well.setdefault(origin, exchange.url)
            return
        if self.outage is None and exchange.partial_status is not None and origin in self.target_origins:
            self.unusable_in_a_row += 1
            if self.unusable_in_a_row >= UNUSABLE_AFTER and not self.answered & self.target_origins:
                owner = self._owner(exchange)
                self.outage = Outage("unusable", exchange, owner, "", owner)
                return
        if self.outage is not None or exchange.failure not in NO_ANSWER:
            return
        # A slow server gets more patience than a reset or refused one: several probes, each as long as a request.
        patience = {"attempts": 3, "pause": 1.0} if exchange.failure == "timeout" else {}
        if origin in self.answered:
            error = self.probe(origin, self.probe_timeout, **patience)
            if error is None:
                return
            if exchange.failure == "timeout" and getattr(error, "kind", "connect") == "timeout":
                # Slow everywhere is not a crash: nothing was refused or reset. The run cannot go on (every request
                # would wait out its timeout), but the target is not failed for it: the checks are broken/not run.
                owner = self._owner(exchange)
                self.outage = Outage("unresponsive", exchange, owner, str(error), owner)
                return
            blamed, check, reporter = exchange, self._owner(exchange), self._owner(exchange)
            beside = self._beside(exchange)
            # Cut off, not refused (a refused one came after the end and proves nothing), and not already found
            # harmless (a probe after it got an answer).
            suspects = [
                e
                for e in beside
                if e.status is None and e.failure in ("protocol", "timeout") and e.id not in self._judged
            ]
            if suspects:
                # Sent side by side: the earliest request that was cut off is the likeliest; all are named. Its
                # reader has not finished (its answer waits for this judgement), so it carries the finding.
                blamed = suspects[0]
                check = reporter = self._owner(blamed)
            elif exchange.failure == "connect" and origin in self.last_answered:
                # A refused connection never reached the server: it went away after the last request it answered.
                blamed, check = self.last_answered[origin]
            around = beside if blamed is exchange else self._beside(blamed)
            answered = tuple(e for e in around if e.status is not None and e.id != blamed.id)
            self.outage = Outage(
                "crashed", blamed, check, str(error), reporter, suspects=tuple(suspects[1:]), answered_beside=answered
            )
            return
        never_answered = origin in self.target_origins and not self.answered & self.target_origins
        if never_answered and (
            exchange.failure == "connect" or self.probe(origin, self.probe_timeout, **patience) is not None
        ):
            owner = self._owner(exchange)
            self.outage = Outage("unreachable", exchange, owner, exchange.error or "", owner)

    def _gateway_answer(self, exchange: Exchange, origin: str) -> None:
        """A proxy saying the server behind it is gone: an outage only when a request that used to work fails too."""
        if self.outage is not None:
            return
        if origin in self.answered:
            error = self.probe(self.answered_well.get(origin, origin), self.probe_timeout)
            if error is not None:
                owner = self._owner(exchange)
                self.outage = Outage("crashed", exchange, owner, f"gateway answer; {error}", owner)
            return
        if origin in self.target_origins and not self.answered & self.target_origins:
            error = self.probe(origin, self.probe_timeout)
            if error is not None:
                owner = self._owner(exchange)
                self.outage = Outage("unreachable", exchange, owner, str(error), owner)

    def _beside(self, exchange: Exchange) -> list[Exchange]:
        """Requests sent ahead that were in flight with this one (itself included), earliest first; empty for a
        request sent on its own."""
        if exchange.owner is None or self.overlapping is None:
            return []
        return self.overlapping(exchange)
