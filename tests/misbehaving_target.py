"""A loopback target that misbehaves on purpose: hangs, trickles, resets, lies about its body, rate-limits, dies.

Raw sockets, so it can do what no well-behaved framework lets a handler do
(send a status line one byte at a time, reset a connection half-way through a
body). Proxy modes forward to a real server (the reference server) and
misbehave only now and then, so the suite has something to judge.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

MODES = (
    "hang",
    "trickle-headers",
    "slow-body",
    "reset",
    "reset-mid-body",
    "http-500",
    "html",
    "bad-json",
    "huge",
    "redirect-elsewhere",
    "echo",
    "rate-limited",
    "dies",
    "gateway-dies",
    "goes-slow",
    "flaky",
    "untrusted-tls",
)


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class MisbehavingTarget:
    """Serve `mode` on a loopback port; proxy modes forward to `upstream` (an origin, e.g. http://127.0.0.1:PORT)."""

    mode: str
    upstream: str | None = None
    elsewhere: str | None = None
    """redirect-elsewhere: the origin the redirects point to."""
    after: int = 25
    """dies, gateway-dies: requests forwarded before misbehaving."""
    received: list[Request] = field(default_factory=list)
    _sock: socket.socket = field(init=False)
    _stopped: threading.Event = field(default_factory=threading.Event)
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._tls: ssl.SSLContext | None = None
        if self.mode == "untrusted-tls":
            self._tls = _self_signed_context()
            self.origin = f"https://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._sock.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            request = _read_request(conn)
            if request is None:
                return
            self.received.append(request)
            with self._lock:
                self._count += 1
                count = self._count
            handler: Callable[[socket.socket, Request, int], None] = getattr(self, "_" + self.mode.replace("-", "_"))
            handler(conn, request, count)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    # --- modes that never give a usable answer ---------------------------------------------------------------

    def _hang(self, conn: socket.socket, request: Request, count: int) -> None:
        self._stopped.wait(60)

    def _trickle_headers(self, conn: socket.socket, request: Request, count: int) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 200:
            if self._stopped.wait(0.5):
                return
            conn.sendall(bytes([byte]))

    def _slow_body(self, conn: socket.socket, request: Request, count: int) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{")
        for _ in range(399):
            if self._stopped.wait(0.5):
                return
            conn.sendall(b" ")

    def _reset(self, conn: socket.socket, request: Request, count: int) -> None:
        _abort(conn)

    def _reset_mid_body(self, conn: socket.socket, request: Request, count: int) -> None:
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"a":')
        time.sleep(0.05)
        _abort(conn)

    def _huge(self, conn: socket.socket, request: Request, count: int) -> None:
        size = 50 * 1024 * 1024
        conn.sendall(
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode() + b"["
        )
        chunk = b"0," * 32768
        sent = 1
        while sent < size - 1:
            piece = chunk[: min(len(chunk), size - 1 - sent)]
            conn.sendall(piece)
            sent += len(piece)
        conn.sendall(b"]")

    # --- modes that answer, badly ----------------------------------------------------------------------------

    def _untrusted_tls(self, conn: socket.socket, request: Request, count: int) -> None:
        """Reached only by a client that does not verify certificates: the suite verifies by default."""
        _respond(conn, 200, b'{"resourceType": "CapabilityStatement"}', "application/json")

    def _http_500(self, conn: socket.socket, request: Request, count: int) -> None:
        _respond(conn, 500, b'{"error":"server_error"}', "application/json")

    def _html(self, conn: socket.socket, request: Request, count: int) -> None:
        _respond(conn, 200, b"<html><body>Welcome to our portal</body></html>", "text/html")

    def _bad_json(self, conn: socket.socket, request: Request, count: int) -> None:
        _respond(conn, 200, b'{"resourceType": "CapabilityStatement", ', "application/json")

    def _redirect_elsewhere(self, conn: socket.socket, request: Request, count: int) -> None:
        _respond(conn, 302, b"", "text/plain", [("Location", f"{self.elsewhere}{request.target}")])

    def _echo(self, conn: socket.socket, request: Request, count: int) -> None:
        """An error page that repeats everything it received (some do): the report must not."""
        echoed = {
            "error": "invalid_request",
            "error_description": "echo: "
            + " | ".join(f"{k}: {v}" for k, v in request.headers)
            + " | "
            + request.body.decode("latin-1"),
            "received": {"target": request.target, "headers": request.headers, "body": request.body.decode("latin-1")},
        }
        _respond(conn, 400, json.dumps(echoed).encode(), "application/json")

    # --- proxy modes: a real server behind, misbehaving now and then ----------------------------------------

    def _rate_limited(self, conn: socket.socket, request: Request, count: int) -> None:
        if count % 25 == 3:
            _respond(conn, 429, b'{"error":"slow down"}', "application/json", [("Retry-After", "1")])
            return
        self._forward(conn, request)

    def _dies(self, conn: socket.socket, request: Request, count: int) -> None:
        if count > self.after:
            _abort(conn)
            self.stop()
            return
        self._forward(conn, request)

    def _gateway_dies(self, conn: socket.socket, request: Request, count: int) -> None:
        if count > self.after:
            _respond(conn, 502, b"<html>502 Bad Gateway</html>", "text/html")
            return
        self._forward(conn, request)

    def _goes_slow(self, conn: socket.socket, request: Request, count: int) -> None:
        """Alive but too slow from some point on: the connection is accepted, the answer never comes in time."""
        if count > self.after:
            self._stopped.wait(60)
            return
        self._forward(conn, request)

    def _flaky(self, conn: socket.socket, request: Request, count: int) -> None:
        """A healthy server behind a network that cuts one answer in eleven mid-body."""
        if count % 11 == 5:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n{")
            _abort(conn)
            return
        self._forward(conn, request)

    def _forward(self, conn: socket.socket, request: Request) -> None:
        assert self.upstream is not None
        headers = [(k, v) for k, v in request.headers if k.lower() not in ("host", "connection", "content-length")]
        with httpx.Client(timeout=30, trust_env=False) as client:
            answer = client.request(
                request.method, self.upstream + request.target, headers=headers, content=request.body
            )
        passed = [
            (k, v)
            for k, v in answer.headers.multi_items()
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")
        ]
        _respond(conn, answer.status_code, answer.content, None, passed)


def _self_signed_context() -> ssl.SSLContext:
    """A TLS server context with a fresh self-signed certificate for 127.0.0.1 (trusted by no one)."""
    import datetime
    import ipaddress
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "untrusted.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as pem:
        pem.write(certificate.public_bytes(serialization.Encoding.PEM))
        pem.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem.name)
    return context


def _read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    length = int(next((v for k, v in headers if k.lower() == "content-length"), "0") or 0)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Request(method, target, headers, rest[:length])


def _respond(
    conn: socket.socket,
    status: int,
    body: bytes,
    content_type: str | None,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    lines = [f"HTTP/1.1 {status} X"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{k}: {v}" for k, v in headers or []]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def _abort(conn: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashing process or a dropping load balancer would."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
