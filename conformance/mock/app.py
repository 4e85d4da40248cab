"""Builds the reference server's ASGI app for a profile."""

from __future__ import annotations

import time
from email.utils import formatdate

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance.mock import carequality, ccde, cerner_system, fhir, oauth, smart, udap_server
from conformance.mock.client_keys import JwksCache
from conformance.mock.context import MockContext
from conformance.mock.settings import MOCK_PROFILES, MockSettings
from conformance.mock.store import Store


def smart_backend_routes(settings: MockSettings) -> list[BaseRoute]:
    base = settings.fhir_path
    return [
        Route(f"{base}/metadata", smart.metadata, methods=["GET"]),
        Route(f"{base}/.well-known/smart-configuration", smart.smart_configuration, methods=["GET"]),
        Route("/token", oauth.token_endpoint(oauth.private_key_jwt), methods=["GET", "POST"]),
        Route(base + "/{type}/{id}", fhir.make_read(), methods=["GET"]),
        Route(base + "/{type}", fhir.make_search(), methods=["GET"]),
    ]


def udap_routes(settings: MockSettings) -> list[BaseRoute]:
    base = settings.fhir_path
    return [
        Route(f"{base}/metadata", smart.metadata, methods=["GET"]),
        Route(f"{base}/.well-known/udap", udap_server.udap_metadata, methods=["GET"]),
        Route(settings.register_path, udap_server.register, methods=["POST"]),
        Route(settings.token_path, udap_server.udap_token, methods=["GET", "POST"]),
        Route(base + "/{type}/{id}", fhir.make_read(), methods=["GET"]),
        Route(base + "/{type}", fhir.make_search(), methods=["GET"]),
    ]


def cerner_carequality_routes(settings: MockSettings) -> list[BaseRoute]:
    base = settings.fhir_path
    strict = "fhir-accepts-no-accept-header" not in settings.faults
    return [
        Route(f"{base}/metadata", carequality.metadata, methods=["GET"]),
        Route(f"{base}/.well-known/udap", udap_server.udap_metadata, methods=["GET"]),
        Route(settings.register_path, udap_server.register, methods=["POST"]),
        Route(settings.token_path, udap_server.udap_token, methods=["GET", "POST"]),
        Route(base + "/{type}/{id}", fhir.make_read(require_explicit_json=strict), methods=["GET"]),
        Route(base + "/{type}", fhir.make_search(require_explicit_json=strict), methods=["GET"]),
    ]


def cerner_system_routes(settings: MockSettings) -> list[BaseRoute]:
    fhir_routes = [
        Route("/r4/{tenant}/metadata", cerner_system.metadata, methods=["GET"]),
        Route("/r4/{tenant}/.well-known/smart-configuration", cerner_system.smart_configuration, methods=["GET"]),
        Route("/r4/{tenant}/{type}/{id}", cerner_system.make_fhir("read"), methods=["GET"]),
        Route("/r4/{tenant}/{type}", cerner_system.make_fhir("search"), methods=["GET"]),
    ]
    auth_routes = [
        Route(cerner_system.TOKEN_PATH.replace("{tenant}", "{tenant}"), cerner_system.token, methods=["GET", "POST"]),
        Route("/errors/{reason}/instances/{instance}", cerner_system.error_page, methods=["GET"]),
    ]
    return [Mount("", app=PortDispatch(settings, Router(fhir_routes), Router(auth_routes)))]


class PortDispatch:
    """Two servers in one: requests that arrive on the authorization port see only the auth routes."""

    def __init__(self, settings: MockSettings, fhir_app: ASGIApp, auth_app: ASGIApp) -> None:
        self.settings, self.fhir_app, self.auth_app = settings, fhir_app, auth_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") or ("", 0)
        auth_port = int(self.settings.auth_url.rsplit(":", 1)[-1]) if self.settings.auth_url else -1
        app = self.auth_app if server[1] == auth_port else self.fhir_app
        await app(scope, receive, send)


def ccde_routes(settings: MockSettings) -> list[BaseRoute]:
    base = settings.fhir_path
    return [
        Route(f"{base}/metadata", smart.metadata, methods=["GET"]),
        Route(base + "/$jwt", ccde.server_jwt, methods=["GET"]),
        Route(base + "/$connect", ccde.connect, methods=["POST"]),
        Route(base + "/Consent", ccde.create_consent, methods=["POST"]),
        Route(base + "/Consent/{id}/$authorize", ccde.authorize, methods=["POST"]),
        Route(base + "/Consent/{id}", ccde.revoke_consent, methods=["DELETE"]),
        Route(settings.token_path, ccde.token, methods=["GET", "POST"]),
        Route(base + "/{type}/{id}", fhir.make_read(visible=ccde.visible), methods=["GET"]),
        Route(base + "/{type}", fhir.make_search(visible=ccde.visible), methods=["GET"]),
    ]


PROFILE_ROUTES = {
    "smart-backend": smart_backend_routes,
    "udap": udap_routes,
    "cerner-carequality": cerner_carequality_routes,
    "cerner-system-account": cerner_system_routes,
    "ccde": ccde_routes,
}


def create_app(settings: MockSettings, store: Store | None = None) -> Starlette:
    """The ASGI app; usable in-process (tests) or under uvicorn (`conformance mock`)."""
    if settings.profile not in MOCK_PROFILES:
        raise ValueError(f"unknown profile {settings.profile!r}; choose one of {', '.join(MOCK_PROFILES)}")
    ctx = MockContext(
        settings=settings,
        store=store or Store(settings.db_path),
        jwks_cache=JwksCache(cache_forever="jwks-cache-forever" in settings.faults),
    )
    if settings.profile not in PROFILE_ROUTES:
        raise ValueError(f"profile {settings.profile!r} is not implemented by the reference server yet")
    if settings.profile in ("udap", "cerner-carequality") and settings.udap is None:
        raise ValueError(f"profile {settings.profile} needs UDAP settings (a signing certificate and trust anchors)")
    routes = PROFILE_ROUTES[settings.profile](settings)
    app = Starlette(routes=routes, middleware=[Middleware(ServerClock, settings=settings)])
    app.state.ctx = ctx
    if settings.profile == "ccde":
        ctx.token_still_valid = lambda token: ccde.still_authorized(ctx, token)
    return app


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
