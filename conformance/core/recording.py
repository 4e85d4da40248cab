"""HTTP with a memory: every request the suite makes becomes an `Exchange`.

One `HttpRecorder` (one httpx client) serves a whole run. It never raises for
network trouble: a refused connection, a timeout or a TLS failure is recorded on
the exchange as `error`, and checks turn it into a clear "broken" outcome.
Bodies are read up to a size limit and the whole exchange is bounded in time, so
a target that hangs, trickles or streams gigabytes cannot stall the run.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from conformance.core.outcomes import NoResponse

FormData = Mapping[str, str] | Sequence[tuple[str, str]]
USER_AGENT = "fhir-b2b-conformance/0.1 (+https://github.com/fhir-b2b-conformance)"

_ids = itertools.count(1)
_capture: contextvars.ContextVar[list[Exchange] | None] = contextvars.ContextVar("capture", default=None)


@dataclass
class Exchange:
    """One request and what came back (or why nothing came back)."""

    purpose: str
    method: str
    url: str
    request_headers: list[tuple[str, str]] = field(repr=False)
    request_body: bytes = field(default=b"", repr=False)
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list, repr=False)
    response_body: bytes = field(default=b"", repr=False)
    elapsed_ms: float = 0.0
    error: str | None = None
    failure: str | None = None
    """Why nothing came back, as a kind: timeout, connect, tls, protocol, redirect, invalid-url or send."""
    truncated: bool = False
    redirects: list[str] = field(default_factory=list)
    received_at: float | None = None
    """Wall-clock time the response headers arrived (to compare with the server's Date)."""
    id: int = field(default_factory=lambda: next(_ids))
    _json_cache: Any = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status is not None

    def response_header(self, name: str) -> str | None:
        """Value of a response header (several values joined with ', ')."""
        values = [v for k, v in self.response_headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def request_header(self, name: str) -> str | None:
        values = [v for k, v in self.request_headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    @property
    def media_type(self) -> str:
        """Response media type without parameters, lower case ('' when absent)."""
        return (self.response_header("content-type") or "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.response_body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Parsed JSON body; raises ValueError if the body is not JSON."""
        if self._json_cache is None:
            self._json_cache = json.loads(self.response_body.decode("utf-8-sig"))
        return self._json_cache

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is anything else."""
        try:
            value = self.json()
        except (ValueError, UnicodeDecodeError):
            return None
        return value if isinstance(value, dict) else None

    def require_response(self) -> Exchange:
        """Return self, or raise NoResponse when the target never answered."""
        if self.status is None:
            raise NoResponse(self.error or f"no response from {self.url}", self)
        return self

    def __evidence__(self) -> list[Exchange]:
        return [self]


@contextmanager
def capturing() -> Iterator[list[Exchange]]:
    """Collect every exchange made or cited while the block runs (the plugin wraps each check)."""
    captured: list[Exchange] = []
    token = _capture.set(captured)
    try:
        yield captured
    finally:
        _capture.reset(token)


def cite(*exchanges: Exchange) -> None:
    """Mark exchanges as evidence of the running check (they are attached to its report)."""
    captured = _capture.get()
    if captured is not None:
        captured.extend(exchanges)


_CROSS_ORIGIN_HEADERS = frozenset({"accept", "user-agent", "accept-language"})
_QUERY_CREDENTIALS = ("client_assertion", "client_secret", "access_token", "assertion", "jwt", "code")


def _query_has_credentials(url: str) -> bool:
    from urllib.parse import parse_qsl

    return any(k.lower() in _QUERY_CREDENTIALS for k, _ in parse_qsl(urlsplit(url).query))


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


class HttpRecorder:
    """The run's one HTTP client; records each exchange."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        verify: bool | str = True,
        extra_headers: Mapping[str, str] | None = None,
        max_body_bytes: int = 2 * 1024 * 1024,
        max_redirects: int = 5,
    ) -> None:
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.max_redirects = max_redirects
        self.extra_headers = dict(extra_headers or {})
        verify_arg: bool | ssl.SSLContext = (
            verify if isinstance(verify, bool) else ssl.create_default_context(cafile=verify)
        )
        # TCP_NODELAY: httpcore writes headers and body separately; with Nagle on, every
        # POST would wait for the server's delayed ACK (~40 ms).
        transport = httpx.HTTPTransport(verify=verify_arg, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            verify=verify_arg,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )
        self.exchanges: list[Exchange] = []
        self.observers: list[Callable[[Exchange], None]] = []

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        purpose: str,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        params: FormData | None = None,
        form: FormData | None = None,
        json_body: Any = None,
        content: bytes | str | None = None,
        follow_redirects: bool | None = None,
    ) -> Exchange:
        """Send one request and record it. Never raises for network failures."""
        header_list: list[tuple[str, str]] = list(self.extra_headers.items())
        if headers:
            header_list += list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        body = b""
        if form is not None:
            body = urlencode(list(form.items()) if isinstance(form, Mapping) else list(form)).encode()
            if not any(k.lower() == "content-type" for k, _ in header_list):
                header_list.append(("Content-Type", "application/x-www-form-urlencoded"))
        elif json_body is not None:
            body = json.dumps(json_body).encode()
            if not any(k.lower() == "content-type" for k, _ in header_list):
                header_list.append(("Content-Type", "application/json"))
        elif content is not None:
            body = content.encode() if isinstance(content, str) else content
        if params:
            query = urlencode(list(params.items()) if isinstance(params, Mapping) else list(params))
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        # Redirects are followed only for reads: a POST carrying a secret or an
        # assertion is never re-sent to wherever a Location header points.
        follow = (method.upper() in ("GET", "HEAD")) if follow_redirects is None else follow_redirects
        exchange = Exchange(
            purpose=purpose, method=method.upper(), url=url, request_headers=header_list, request_body=body
        )
        self._send(exchange, follow)
        self.exchanges.append(exchange)
        for observe in self.observers:
            observe(exchange)
        captured = _capture.get()
        if captured is not None:
            captured.append(exchange)
        return exchange

    def _send(self, exchange: Exchange, follow: bool) -> None:
        started = time.monotonic()
        deadline = started + self.timeout
        url = exchange.url
        headers = list(exchange.request_headers)
        try:
            for _ in range(self.max_redirects + 1):
                request = self._client.build_request(
                    exchange.method, url, headers=headers, content=exchange.request_body or None
                )
                response = self._client.send(request, stream=True)
                try:
                    location = response.headers.get("location")
                    if follow and response.is_redirect and location:
                        target = urljoin(url, location)
                        exchange.redirects.append(f"{response.status_code} -> {target}")
                        if not _same_origin(url, target):
                            # Credentials stay with the host they were meant for: only harmless headers
                            # cross, and a URL carrying credentials in its query is not followed at all.
                            if _query_has_credentials(exchange.url):
                                exchange.error = (
                                    f"not following a redirect to another host ({target}): the URL carries credentials"
                                )
                                exchange.failure = "redirect"
                                break
                            headers = [(k, v) for k, v in headers if k.lower() in _CROSS_ORIGIN_HEADERS]
                        url = target
                        continue
                    exchange.status = response.status_code
                    exchange.received_at = time.time()
                    exchange.response_headers = list(response.headers.multi_items())
                    exchange.response_body, exchange.truncated = self._read_body(response, deadline)
                finally:
                    response.close()
                break
            else:
                exchange.error = f"more than {self.max_redirects} redirects from {exchange.url}"
                exchange.failure = "redirect"
        except httpx.TimeoutException:
            exchange.error = f"no answer from {exchange.url} within {self.timeout:g} s"
            exchange.failure = "timeout"
        except httpx.ConnectError as exc:
            exchange.error = _describe_connect_error(exchange.url, exc)
            exchange.failure = "tls" if exchange.error.startswith("TLS certificate") else "connect"
        except httpx.HTTPError as exc:
            exchange.error = f"HTTP failure talking to {exchange.url}: {type(exc).__name__}"
            exchange.failure = "protocol"
        except httpx.InvalidURL as exc:
            exchange.error = f"invalid URL {exchange.url!r}: {exc}"
            exchange.failure = "invalid-url"
        except (ValueError, UnicodeError) as exc:
            exchange.error = f"could not send request to {exchange.url}: {exc}"
            exchange.failure = "send"
        exchange.elapsed_ms = (time.monotonic() - started) * 1000

    def _read_body(self, response: httpx.Response, deadline: float) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"".join(chunks)[: self.max_body_bytes], True
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("body not complete before the deadline")
        return b"".join(chunks), False


def _describe_connect_error(url: str, exc: httpx.ConnectError) -> str:
    reason = str(exc) or type(exc).__name__
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in reason:
        return (
            f"TLS certificate of {parts.hostname} could not be verified ({reason}); "
            "set http.ca_bundle, or http.verify_tls = false for a test server"
        )
    if "refused" in reason.lower():
        return f"could not connect to {origin}: connection refused (is the server running?)"
    return f"could not connect to {origin}: {reason}"
