"""Builds the reference server's ASGI app for a profile."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from conformance.mock import carequality, fhir, oauth, smart, udap_server
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


PROFILE_ROUTES = {
    "smart-backend": smart_backend_routes,
    "udap": udap_routes,
    "cerner-carequality": cerner_carequality_routes,
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
    app = Starlette(routes=routes)
    app.state.ctx = ctx
    return app
