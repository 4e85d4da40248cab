"""Reading with a credential after it has ended (a token past expires_in, a CCDE authorization past its duration).

Waiting a fixed time and reading once is slow or wrong: a server that keeps time
in whole seconds, or allows the small clock-skew leeway RFC 7519 §4.1.4 permits,
may honour the credential up to a second or so after it ended, while a server that
stops it on time could be judged at once. So the read is tried just after the end
and again, at growing intervals, until a deadline that covers whole-second clocks
and a second of leeway (or the user's own checks.expiry_wait); the last answer is
the one judged. A compliant server is judged as soon as it refuses; only one that
still honours the credential at the deadline is failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from conformance.core.recording import Exchange

GRACE = 2.25
"""Seconds past the end a server may still honour the credential: a clock compared in whole seconds (up to 1 s
late) plus one second of leeway, and a margin."""

LEEWAY_HINT = (
    "a server may honour it a little past its end (whole-second clocks; RFC 7519 §4.1.4 allows a small leeway for "
    "clock skew); for a longer leeway set checks.expiry_wait to the lifetime plus that leeway"
)

FIRST_TRY = 0.05
"""Seconds past the end of the first read."""


@dataclass(frozen=True)
class AfterTheEnd:
    last: Exchange
    """The answer judged: the first refusal, or the read at the deadline."""
    reads: int
    seconds_past_the_end: float
    """When the judged read was sent, counted from the credential's end."""

    @property
    def still_honoured(self) -> bool:
        """The last read, at the deadline, still worked."""
        return self.last.status is not None and 200 <= self.last.status < 300

    def what_the_server_did(self) -> tuple[str, str]:
        """A note (name, value) recording the server's choice."""
        when = f"{self.seconds_past_the_end:.2f} s past the end ({self.reads} read(s))"
        if self.last.status is None:
            return "no answer", when
        return ("still honoured" if self.still_honoured else "refused"), when


def read_until_refused(
    read: Callable[[], Exchange],
    ends_at: float,
    *,
    deadline: float | None = None,
    now: Callable[[], float] = time.monotonic,
) -> AfterTheEnd:
    """Read after `ends_at` (a time.monotonic() value) until a refusal or the deadline: ends_at + GRACE, or the
    given `deadline` when that is later (the user allowed for a longer leeway).

    A read that gets no answer stops the polling: the check judges that exchange as it would any.
    """
    deadline = max(ends_at + GRACE, deadline if deadline is not None else 0.0)
    pause = 0.25
    when = ends_at + FIRST_TRY
    reads = 0
    while True:
        time.sleep(max(0.0, when - now()))
        sent = now()
        exchange = read()
        reads += 1
        refused = exchange.status is None or not 200 <= exchange.status < 300
        if refused or sent >= deadline:
            return AfterTheEnd(exchange, reads, sent - ends_at)
        when = min(deadline, max(now(), sent + pause))
        pause *= 2
