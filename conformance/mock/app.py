"""Builds the reference server's ASGI app for the system a profile hands it."""

from __future__ import annotations

import time
from email.utils import formatdate

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance.mock.client_keys import JwksCache
from conformance.mock.context import MockContext
from conformance.mock.echo import EchoRequests
from conformance.mock.latency import Latency
from conformance.mock.settings import MockSettings
from conformance.mock.store import Store


def create_app(settings: MockSettings, store: Store | None = None) -> Starlette:
    """The ASGI app; usable in-process (tests) or under uvicorn (`conformance mock`)."""
    ctx = MockContext(
        settings=settings,
        store=store or Store(settings.db_path),
        jwks_cache=JwksCache(cache_forever="jwks-cache-forever" in settings.faults),
    )
    if settings.layout.needs_udap and settings.udap is None:
        raise ValueError(f"profile {settings.profile} needs UDAP settings (a signing certificate and trust anchors)")
    routes = settings.system.server_routes(settings)
    app = Starlette(
        routes=routes,
        middleware=_middleware(settings),
    )
    app.state.ctx = ctx
    settings.system.install(ctx)
    return app


def _middleware(settings: MockSettings) -> list[Middleware]:
    """Only the wrappers a setting switches on: each costs every request a layer of ASGI calls."""
    chosen = []
    if settings.latency_ms > 0:
        chosen.append(Middleware(Latency, settings=settings))
    if settings.clock_offset:
        chosen.append(Middleware(ServerClock, settings=settings))
    if settings.echo_requests:
        chosen.append(Middleware(EchoRequests, settings=settings))
    return chosen


class PortDispatch:
    """Two servers in one: requests that arrive on the authorization port see only the auth routes."""

    def __init__(self, settings: MockSettings, fhir_app: ASGIApp, auth_app: ASGIApp) -> None:
        self.settings, self.fhir_app, self.auth_app = settings, fhir_app, auth_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") or ("", 0)
        auth_port = int(self.settings.auth_url.rsplit(":", 1)[-1]) if self.settings.auth_url else -1
        app = self.auth_app if server[1] == auth_port else self.fhir_app
        await app(scope, receive, send)


class ServerClock:
    """Dates responses by the server's own clock, which a setting can skew (for the clock-skew diagnosis)."""

    def __init__(self, app: ASGIApp, settings: MockSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.settings.clock_offset:
            await self.app(scope, receive, send)
            return

        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                when = formatdate(time.time() + self.settings.clock_offset, usegmt=True).encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                message["headers"] = [*headers, (b"date", when)]
            await send(message)

        await self.app(scope, receive, dated)
