"""Runs the reference server under uvicorn: in a background thread (embedded runs, tests) or in the foreground."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance.mock.app import create_app
from conformance.mock.context import MockContext
from conformance.mock.settings import MockSettings
from conformance.mock.store import Store


def bind_socket(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto says TCP, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class QuietEndings:
    """Ends a request quietly when its client left mid-body, or when Ctrl-C stops the server under it.

    Either way uvicorn would log the exception (ClientDisconnect from Starlette's
    `request.body()`, or the CancelledError it sends a request that outlives the
    graceful-shutdown timeout) as an application error with a traceback. A client
    that left needs no answer; one still sending while the server stops gets 503.
    """

    def __init__(self, app: ASGIApp, stopping: Callable[[], bool]) -> None:
        self.app, self.stopping = app, stopping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except ClientDisconnect:
            return
        except asyncio.CancelledError:
            if scope["type"] != "http" or not self.stopping():
                raise
            if not started:
                body = b"the server is shutting down"
                headers = [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ]
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": body})


class MockServer:
    """The reference server on a loopback port (0 picks a free one)."""

    def __init__(
        self,
        settings: MockSettings,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        store: Store | None = None,
        prepare: Callable[[MockSettings], None] | None = None,
    ):
        """Bind the port; `prepare` then sees the final URLs (e.g. to issue a certificate for them)."""
        self.settings = settings
        self.host = host
        self._sock = bind_socket(host, port)
        self.port: int = self._sock.getsockname()[1]
        settings.public_url = f"http://{host}:{self.port}"
        self._sockets = [self._sock]
        self.auth_port: int | None = None
        if settings.separate_auth_server:
            auth_sock = bind_socket(host, 0 if port == 0 else port + 1)
            self.auth_port = auth_sock.getsockname()[1]
            settings.auth_url = f"http://{host}:{self.auth_port}"
            self._sockets.append(auth_sock)
        if prepare is not None:
            prepare(settings)
        self.app: Starlette = create_app(settings, store)
        self.ctx.crash = self.crash
        config = uvicorn.Config(
            QuietEndings(self.app, stopping=lambda: self._server.should_exit),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            date_header=not settings.clock_offset,  # a skewed clock dates its own responses (ServerClock)
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def ctx(self) -> MockContext:
        ctx: MockContext = self.app.state.ctx
        return ctx

    @property
    def fhir_base(self) -> str:
        return self.settings.fhir_base

    def start(self, timeout: float = 10.0) -> MockServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": self._sockets}, name="mock-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the reference server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        """Run in the foreground until interrupted (Ctrl-C)."""
        self._server.run(sockets=self._sockets)

    def crash(self) -> None:
        """Stop answering at once, as a server process that died would: drop every connection, stop listening.

        Called from a handler (on the server's event loop) by a fault that emulates a crash.
        """
        self._server.should_exit = True
        self._server.force_exit = True
        for listener in getattr(self._server, "servers", []):
            listener.close()
        for connection in list(self._server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        for sock in self._sockets:
            sock.close()

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
