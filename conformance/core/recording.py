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
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from conformance.core.deadline import deadline_transport, request_deadline
from conformance.core.outcomes import NoResponse
from conformance.core.pacing import Pacer, RetryBudget, asks_to_slow_down
from conformance.core.probing import ProbeFailure, probe_url
from conformance.core.proxies import proxy_mounts

if TYPE_CHECKING:
    from conformance.core.concurrency import ExchangePool

ResultT = TypeVar("ResultT")
FormData = Mapping[str, str] | Sequence[tuple[str, str]]
USER_AGENT = "fhir-b2b-conformance/0.1 (+https://github.com/fhir-b2b-conformance)"

_ids = itertools.count(1)
_capture: contextvars.ContextVar[list[Exchange] | None] = contextvars.ContextVar("capture", default=None)
_owner: contextvars.ContextVar[str | None] = contextvars.ContextVar("owner", default=None)


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
    """Why nothing usable came back, as a kind: timeout, connect, tls, protocol (reset or broken HTTP), truncated
    (body over the size limit), rate-limited, redirect, invalid-url or send."""
    truncated: bool = False
    """Only part of the body is kept (it did not arrive whole, or was over the size limit)."""
    partial_status: int | None = None
    """The status of an answer whose body did not arrive whole (reset, deadline, size limit): not judged."""
    retries: list[str] = field(default_factory=list)
    """Rate-limit answers waited out before the recorded one."""
    redirects: list[str] = field(default_factory=list)
    received_at: float | None = None
    """Wall-clock time the response headers arrived (to compare with the server's Date)."""
    owner: str | None = None
    """The check this was sent ahead for (see conformance.core.concurrency); None: the check running sent it."""
    started_at: float = 0.0
    """time.monotonic() when it was sent: orders exchanges that were in flight together."""
    finished_at: float = 0.0
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


@contextmanager
def sending_for(owner: str | None) -> Iterator[None]:
    """Exchanges sent in the block belong to check `owner` (a job sent ahead of the check that will read it)."""
    token = _owner.set(owner)
    try:
        yield
    finally:
        _owner.reset(token)


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


PROXY_REFUSED = (
    "the proxy refused the request (HTTP 407 or a failed CONNECT): give its credentials in http.proxy or "
    "HTTPS_PROXY (http://user:password@host:port), or set --proxy none if the target needs no proxy"
)
UNANSWERED = frozenset({"timeout", "connect", "protocol", "truncated", "rate-limited", "tls", "proxy"})
"""Failure kinds where the network or the target gave nothing to judge (not the suite's own choice, such as a
redirect it refused to follow)."""

EVIDENCE_KEPT = 64 * 1024
"""Bytes of an unusable (truncated or cut-off) body kept as evidence; the rest is dropped at once."""


class _Incomplete(Exception):
    """The response started but did not arrive whole: judged as no answer, never as the server's answer."""

    def __init__(self, kind: str, what: str) -> None:
        super().__init__(what)
        self.kind = kind


def one_after_another(jobs: Mapping[str, Callable[[], ResultT]]) -> dict[str, ResultT]:
    """`side_by_side` without a pool, by the same rules: every job runs even when one raises (the requests sent do
    not depend on the concurrency), then the first error is raised; Ctrl-C stops at once."""
    results: dict[str, ResultT] = {}
    first_error: BaseException | None = None
    for name, job in jobs.items():
        try:
            results[name] = job()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return results


class HttpRecorder:
    """The run's one HTTP client; records each exchange.

    Each attempt is bounded by one total deadline (`timeout`: connect, TLS, headers and body together). A
    rate-limit answer is retried within `retry`; `pacer` spaces requests for rate-limited targets."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        verify: bool | str = True,
        extra_headers: Mapping[str, str] | None = None,
        max_body_bytes: int = 2 * 1024 * 1024,
        max_redirects: int = 5,
        proxy: str | None = None,
        retry: RetryBudget | None = None,
        pacer: Pacer | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.max_redirects = max_redirects
        self.extra_headers = dict(extra_headers or {})
        self.retry = retry or RetryBudget()
        self.pacer = pacer or Pacer()
        self.requests_sent = 0
        self._count_lock = threading.Lock()
        verify_arg: bool | ssl.SSLContext = (
            verify if isinstance(verify, bool) else ssl.create_default_context(cafile=verify)
        )
        # TCP_NODELAY: httpcore writes headers and body separately; with Nagle on, every
        # POST would wait for the server's delayed ACK (~40 ms).
        options: dict[str, Any] = {
            "verify": verify_arg,
            "socket_options": [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        }
        self._client = httpx.Client(
            transport=deadline_transport(**options),
            mounts=proxy_mounts(proxy, lambda url: deadline_transport(proxy=url, **options), environ),
            timeout=httpx.Timeout(timeout),
            verify=verify_arg,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )
        self.observers: list[Callable[[Exchange], None]] = []
        self.pool: ExchangePool | None = None
        """Set when independent exchanges may be sent ahead: a request of the check itself waits for them."""
        self._in_flight: dict[int, Exchange] = {}
        self._recent: deque[Exchange] = deque(maxlen=256)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        self._client.close()

    def side_by_side(self, jobs: Mapping[str, Callable[[], ResultT]]) -> dict[str, ResultT]:
        """Run independent exchanges (or short flows of them) at once, results by name; one after another when
        no pool is set (see conformance.core.concurrency)."""
        if self.pool is not None:
            return self.pool.side_by_side(jobs)
        return one_after_another(jobs)

    def overlapping(self, exchange: Exchange, wait: float | None = None) -> list[Exchange]:
        """Exchanges that were in flight at the same time as `exchange` (itself included), once each has finished
        (waiting at most `wait` seconds, default the timeout): when a target dies, any of them may have killed it."""
        deadline = time.monotonic() + (self.timeout + 1 if wait is None else wait)
        while True:
            with self._count_lock:
                busy = [e for e in self._in_flight.values() if e.started_at <= exchange.finished_at]
                done = [
                    e
                    for e in self._recent
                    if e.started_at <= exchange.finished_at and e.finished_at >= exchange.started_at
                ]
            if not busy or time.monotonic() >= deadline:
                break
            time.sleep(0.01)
        found = {e.id: e for e in [*done, exchange]}
        return sorted(found.values(), key=lambda e: (e.started_at, e.id))

    def probe(self, url: str, attempts: int = 2, pause: float = 0.5) -> ProbeFailure | None:
        """None when `url` answers, through the run's TLS and proxy settings and within its timeout.

        Not recorded, paced or counted: asking after the target's health is not evidence about its conformance."""
        return probe_url(self._client, url, self.timeout, attempts, pause)

    def ping(self, url: str) -> str | None:
        """One probe: None when anything answers, else why not (waiting for a target that is still starting)."""
        failure = self.probe(url, attempts=1)
        return None if failure is None else failure.message

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
        if self.pool is not None:
            self.pool.drain()  # a check's own request never overlaps exchanges sent ahead (their order matters)
        exchange = Exchange(
            purpose=purpose,
            method=method.upper(),
            url=url,
            request_headers=header_list,
            request_body=body,
            owner=_owner.get(),
        )
        exchange.started_at = time.monotonic()
        with self._count_lock:
            self._in_flight[exchange.id] = exchange
        try:
            self._send_within_budget(exchange, follow)
        finally:
            exchange.finished_at = time.monotonic()
            with self._count_lock:
                self._in_flight.pop(exchange.id, None)
                self._recent.append(exchange)
        for observe in self.observers:
            observe(exchange)
        captured = _capture.get()
        if captured is not None:
            captured.append(exchange)
        return exchange

    def _send_within_budget(self, exchange: Exchange, follow: bool) -> None:
        """Send; while the answer asks the client to slow down, wait as asked and send again, within budget."""
        attempt = 0
        while True:
            self.pacer.wait_turn()
            with self._count_lock:
                self.requests_sent += 1
            self._send(exchange, follow)
            retry_after = exchange.response_header("retry-after")
            if not asks_to_slow_down(exchange.status, retry_after):
                return
            wait = self.retry.wait_for(attempt, retry_after)
            if wait is None:
                exchange.error = (
                    f"rate limited: HTTP {exchange.status} (Retry-After: {retry_after or 'none'}) "
                    f"after {attempt} retries; raise http.retry_attempts or http.retry_budget, or lower --max-rps"
                )
                exchange.failure = "rate-limited"
                exchange.status = None
                return
            exchange.retries.append(f"HTTP {exchange.status}, Retry-After {retry_after or 'none'}: waited {wait:g} s")
            time.sleep(wait)
            attempt += 1

    def _send(self, exchange: Exchange, follow: bool) -> None:
        """One attempt, bounded as a whole by the timeout; fills in the exchange's answer or why there is none."""
        exchange.status, exchange.response_headers, exchange.response_body = None, [], b""
        exchange.error = exchange.failure = None
        exchange.truncated = False
        exchange.redirects = []
        started = time.monotonic()
        url = exchange.url
        headers = list(exchange.request_headers)
        try:
            with request_deadline(self.timeout):
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
                                        f"not following a redirect to another host ({target}): "
                                        "the URL carries credentials"
                                    )
                                    exchange.failure = "redirect"
                                    break
                                headers = [(k, v) for k, v in headers if k.lower() in _CROSS_ORIGIN_HEADERS]
                            url = target
                            continue
                        if response.status_code == 407:
                            # The proxy's answer, not the target's: never judged as the server's.
                            exchange.error = PROXY_REFUSED
                            exchange.failure = "proxy"
                            break
                        exchange.status = response.status_code
                        exchange.received_at = time.time()
                        exchange.response_headers = list(response.headers.multi_items())
                        self._read_body(response, exchange)
                    finally:
                        response.close()
                    break
                else:
                    exchange.error = f"more than {self.max_redirects} redirects from {exchange.url}"
                    exchange.failure = "redirect"
        except _Incomplete as exc:
            self._unusable(exchange, exc.kind, str(exc))
        except httpx.ProxyError as exc:
            if "407" in str(exc):
                exchange.error = f"{PROXY_REFUSED} ({exc})"
                exchange.failure = "proxy"
            else:
                # The proxy could not reach the target (CONNECT 502/503/504): the target's silence, probed as such.
                exchange.error = f"the proxy could not reach {exchange.url}: {exc}"
                exchange.failure = "connect"
        except httpx.TimeoutException:
            self._unusable(exchange, "timeout", f"no complete answer within {self.timeout:g} s")
        except httpx.ConnectError as exc:
            exchange.error = _describe_connect_error(exchange.url, exc)
            exchange.failure = "tls" if exchange.error.startswith("TLS certificate") else "connect"
        except httpx.HTTPError as exc:
            cause = "the connection was reset" if _was_reset(exc) else f"HTTP failure ({type(exc).__name__}: {exc})"
            self._unusable(exchange, "protocol", cause)
        except httpx.InvalidURL as exc:
            exchange.error = f"invalid URL {exchange.url!r}: {exc}"
            exchange.failure = "invalid-url"
        except (ValueError, UnicodeError) as exc:
            exchange.error = f"could not send request to {exchange.url}: {exc}"
            exchange.failure = "send"
        exchange.elapsed_ms = (time.monotonic() - started) * 1000

    @staticmethod
    def _unusable(exchange: Exchange, kind: str, cause: str) -> None:
        """No answer to judge. When headers had arrived, say so, and keep only a slice of the body as evidence."""
        if exchange.status is not None:
            received = len(exchange.response_body)
            cause = (
                f"HTTP {exchange.status} headers arrived from {exchange.url}, then {cause} ({received} body bytes kept)"
            )
            exchange.partial_status = exchange.status
            exchange.truncated = True
            exchange.response_body = exchange.response_body[:EVIDENCE_KEPT]
        else:
            cause = f"{cause} ({exchange.url})"
        exchange.status = None
        exchange.error = cause
        exchange.failure = kind

    def _read_body(self, response: httpx.Response, exchange: Exchange) -> None:
        """Read the body into the exchange; what arrived stays there even when the read fails half-way. A body
        over the limit keeps only its first EVIDENCE_KEPT bytes, at once (it is never judged)."""
        body = bytearray()
        try:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.max_body_bytes:
                    received = len(body)
                    del body[EVIDENCE_KEPT:]
                    raise _Incomplete(
                        "truncated",
                        f"the body exceeded http.max_body_bytes ({self.max_body_bytes} bytes), so it was not read "
                        f"to the end and is not judged ({received} bytes received)",
                    )
        finally:
            exchange.response_body = bytes(body)


def _was_reset(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, ConnectionResetError) or "reset" in str(exc).lower() or "peer closed" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


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
