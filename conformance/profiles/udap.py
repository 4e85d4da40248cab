"""UDAP JWT-based client authentication for B2B: signed metadata, dynamic registration, x5c assertions, hl7-b2b."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from conformance.flows.target import Target
from conformance.mock import fhir
from conformance.mock.settings import MockSettings, ServerLayout
from conformance.mock.systems import smart
from conformance.mock.systems import udap as udap_server
from conformance.profiles import udap_community
from conformance.profiles.base import ConfigNeeds, EmbeddedRun, Profile, ServeOptions


def routes(settings: MockSettings) -> list[BaseRoute]:
    base = settings.fhir_path
    return [
        Route(f"{base}/metadata", smart.metadata, methods=["GET"]),
        Route(f"{base}/.well-known/udap", udap_server.udap_metadata, methods=["GET"]),
        Route(settings.register_path, udap_server.register, methods=["POST"]),
        Route(settings.token_path, udap_server.udap_token, methods=["GET", "POST"]),
        Route(base + "/{type}/{id}", fhir.make_read(), methods=["GET"]),
        Route(base + "/{type}", fhir.make_search(), methods=["GET"]),
    ]


def start_embedded(profile: Profile, run: EmbeddedRun) -> Target:
    return udap_community.start_embedded(profile, run, require_b2b=True)


def serve_prepare(options: ServeOptions) -> udap_community.Preparer:
    return udap_community.serve_preparer(options, require_b2b=True)


PROFILE = Profile(
    order=1,
    name="udap",
    title="UDAP B2B (x5c client assertions, dynamic registration)",
    layout=ServerLayout(publishes_udap_metadata=True, needs_udap=True),
    routes=routes,
    embedded=start_embedded,
    suites=("udap_discovery", "registration", "udap_token"),
    client_auth="udap",
    needs=ConfigNeeds(udap=True, udap_trust_anchors=True),
    serve_prepare=serve_prepare,
    serve_banner=udap_community.serve_banner,
)
