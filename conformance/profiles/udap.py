"""UDAP JWT-based client authentication for B2B: signed metadata, dynamic registration, x5c assertions, hl7-b2b."""

from __future__ import annotations

from functools import partial

from starlette.routing import BaseRoute

from conformance.mock.settings import MockSettings, ServerLayout
from conformance.mock.systems import smart
from conformance.profiles import udap_community
from conformance.profiles.base import ConfigNeeds, Profile


def routes(settings: MockSettings) -> list[BaseRoute]:
    return udap_community.routes(settings, smart.metadata)


PROFILE = Profile(
    order=1,
    name="udap",
    title="UDAP B2B (x5c client assertions, dynamic registration)",
    layout=ServerLayout(publishes_udap_metadata=True, needs_udap=True),
    routes=routes,
    embedded=partial(udap_community.start_embedded, require_b2b=True),
    suites=("udap_discovery", "registration", "udap_token"),
    client_auth="udap",
    needs=ConfigNeeds(udap=True, udap_trust_anchors=True),
    serve_prepare=partial(udap_community.serve_preparer, require_b2b=True),
    serve_banner=udap_community.serve_banner,
    preflight=udap_community.preflight_check,
    key_material=udap_community.KEYS,
)
