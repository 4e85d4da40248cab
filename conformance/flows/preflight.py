"""Before any check: can this run judge the target at all?

A run whose credentials the server cannot use (a key whose algorithm it does not
advertise, a token URL that does not answer) would skip almost every check and
exit green. The preflight finds that in two or three requests and says, on one
line, what to change; the run then stops with exit code 3 instead of passing.
An unreachable target is left to the outage watcher (conformance.core.health),
which sees these same requests.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from conformance.core.recording import Exchange, HttpRecorder
from conformance.crypto.jose import ClientKey
from conformance.flows import discovery

SILENT = frozenset({"timeout", "connect", "protocol", "tls"})
"""Failures that mean a well-formed token URL cannot be used from here."""


def unusable_keys(keys: Sequence[ClientKey], advertised: Any, source: str) -> str | None:
    """A problem when the server lists its signing algorithms and none of the configured keys uses one."""
    if not isinstance(advertised, list) or not advertised or not keys:
        return None
    offered = [str(alg) for alg in advertised]
    if any(key.alg in offered for key in keys):
        return None
    have = ", ".join(f"{key.kid} ({key.alg})" for key in keys)
    return (
        f"credentials unusable: no configured key signs with an algorithm the server advertises "
        f"(keys: {have}; {source} lists {', '.join(offered)}); add a key for one of them "
        f"(`conformance keys generate DIR` writes RS384 and ES384 keys), register its public key, and pass it "
        f"with --private-key"
    )


def silent_token_url(http: HttpRecorder, token_url: str | None, where: str) -> str | None:
    """A problem when the token URL gives no HTTP answer at all (any status, even 401 or 405, is an answer)."""
    if not token_url:
        return None
    exchange = http.request("POST", token_url, purpose="preflight: does the token URL answer?", form={})
    if exchange.status is not None or exchange.failure not in SILENT:
        return None  # it answered, or the URL itself is wrong: that is the server's to answer for, checks judge it
    return f"cannot use the token URL {token_url} ({where}): {exchange.error}"


def unusable_connection(exchange: Exchange) -> str | None:
    """A problem when the first request failed for a reason on our side of the connection (an untrusted TLS
    certificate): every check would be broken the same way, so the run stops with that one line instead."""
    if exchange.failure == "tls":
        return f"cannot judge the target: {exchange.error}"
    return None


def token_url_of(base_url: str, target_token_url: str | None, discovered: Any, source: str) -> tuple[str | None, str]:
    """The token URL the checks will use: the discovered one resolved as they resolve it, else the configured
    one. A discovered value that does not resolve is the checks' to judge, not a reason to stop."""
    resolved = discovery.resolve(base_url, discovered) if isinstance(discovered, str) and discovered else None
    if resolved:
        return resolved, f"token_endpoint in {source}"
    return target_token_url, "target.token_url"


def smart_configuration(http: HttpRecorder, base_url: str) -> tuple[Exchange, dict[str, Any]]:
    exchange = discovery.get_smart_configuration(http, base_url)
    return exchange, exchange.json_object() or {}


def wait_for(http: HttpRecorder, url: str, seconds: float, pause: float = 0.5) -> str | None:
    """Poll `url` until anything answers or `seconds` pass; None once it answered, else the last error."""
    deadline = time.monotonic() + seconds
    while True:
        error = http.ping(url)
        if error is None or time.monotonic() + pause > deadline:
            return error
        time.sleep(pause)
