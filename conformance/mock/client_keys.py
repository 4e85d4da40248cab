"""Fetches and caches clients' JWKS URLs the way the SMART asymmetric profile asks.

The cache honours the client's Cache-Control: `no-store`/`no-cache` mean fetch
every time, `max-age=N` keeps the set N seconds, no header means no caching.
"""

from __future__ import annotations

import functools
import re
import ssl
import time
from typing import Any

import httpx


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every fetch: building it (loading the CA bundle) cost ~15 ms per fetch."""
    return httpx.create_ssl_context(trust_env=False)


class JwksUnavailable(Exception):
    """The JWKS URL could not be fetched or did not hold a JWKS."""


class JwksCache:
    def __init__(self, *, timeout: float = 3.0, cache_forever: bool = False) -> None:
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self._timeout = timeout
        self.cache_forever = cache_forever
        self.fetches: list[str] = []

    async def get(self, url: str) -> dict[str, Any]:
        cached = self._entries.get(url)
        if cached and (self.cache_forever or cached[0] > time.monotonic()):
            return cached[1]
        self.fetches.append(url)
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, trust_env=False, verify=_tls_context()
            ) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise JwksUnavailable(f"JWKS URL {url} could not be fetched: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise JwksUnavailable(f"JWKS URL {url} answered HTTP {response.status_code}")
        try:
            jwks = response.json()
        except (ValueError, RecursionError):  # a hostile JWKS URL can nest JSON deeper than the parser follows
            raise JwksUnavailable(f"JWKS URL {url} did not return JSON") from None
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise JwksUnavailable(f"JWKS URL {url} did not return a JWKS")
        lifetime = _cache_lifetime(response.headers.get("cache-control", ""))
        if lifetime > 0 or self.cache_forever:
            self._entries[url] = (time.monotonic() + lifetime, jwks)
        else:
            self._entries.pop(url, None)
        return jwks


def _cache_lifetime(cache_control: str) -> float:
    value = cache_control.lower()
    if "no-store" in value or "no-cache" in value:
        return 0
    match = re.search(r"max-age\s*=\s*(\d+)", value)
    return float(match.group(1)) if match else 0
