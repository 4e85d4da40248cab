"""Is anything answering at a URL? The probe behind outage detection and `--wait-for-target`.

An answer is a status and the first MiB of a body that arrive within one total
deadline, so a server that trickles its headers or its body counts as not
answering. A gateway's "no server behind me" (502, 504, 503 without
Retry-After) counts as no answer too. Probes are not recorded: they are the
suite asking after the target's health, not evidence about its conformance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from conformance.core.deadline import deadline_transport, request_deadline

PROBE_BODY_BYTES = 1024 * 1024
GATEWAY_DOWN = frozenset({502, 504})
"""Statuses a proxy or load balancer gives when the server behind it does not answer (503 counts without
Retry-After; with it, 503 is the server asking the client to slow down, RFC 9110 §15.6.4)."""


def is_gateway_silence(status: int | None, retry_after: str | None) -> bool:
    return status in GATEWAY_DOWN or (status == 503 and not retry_after)


@dataclass(frozen=True)
class ProbeFailure:
    """Why a probe got no answer: `timeout` (nothing complete in time), `gateway`, or `connect` (refused, reset,
    broken HTTP: the server is not there)."""

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


def probe_url(
    client: httpx.Client, url: str, timeout: float, attempts: int = 2, pause: float = 0.5
) -> ProbeFailure | None:
    """None once `url` answers (`url` is an origin, whose root is asked, or a URL that answered well before)."""
    failure = ProbeFailure("connect", "no attempt")
    target = url if urlsplit(url).path not in ("", "/") else url.rstrip("/") + "/"
    for attempt in range(attempts):
        if attempt:
            time.sleep(pause)
        try:
            with request_deadline(timeout), client.stream("GET", target) as response:
                status, retry_after = response.status_code, response.headers.get("retry-after")
                received = 0
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if received > PROBE_BODY_BYTES:
                        break
            if not is_gateway_silence(status, retry_after):
                return None
            failure = ProbeFailure("gateway", f"HTTP {status} from {target} too")
        except httpx.TimeoutException as exc:
            failure = ProbeFailure("timeout", f"{type(exc).__name__}: nothing complete from {target} in {timeout:g} s")
        except httpx.HTTPError as exc:
            failure = ProbeFailure("connect", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        except (httpx.InvalidURL, ValueError) as exc:
            return ProbeFailure("connect", f"invalid URL {url!r}: {exc}")
    return failure


def probe_origin(url: str, timeout: float, attempts: int = 2, pause: float = 0.5) -> ProbeFailure | None:
    """`probe_url` with a client of its own (no proxy, no TLS verification): for tests and stand-alone use; a run
    probes through its own HttpRecorder, so proxies and TLS settings apply."""
    with httpx.Client(transport=deadline_transport(verify=False), timeout=timeout, trust_env=False) as client:
        return probe_url(client, url, timeout, attempts, pause)
