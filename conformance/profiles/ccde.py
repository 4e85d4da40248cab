"""Consumer-centered data exchange (test.fhir.org): Consent, $authorize and the target's JWT instead of a client."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from conformance.flows.target import Target
from conformance.mock import fhir
from conformance.mock.context import MockContext
from conformance.mock.data import DEFAULT_PATIENT_ID
from conformance.mock.server import MockServer
from conformance.mock.settings import MockSettings, ServerLayout
from conformance.mock.systems import ccde, smart
from conformance.profiles.base import EmbeddedRun, Profile, ServeOptions, embedded_config, target_for


def routes(settings: MockSettings) -> list[BaseRoute]:
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


def install(ctx: MockContext) -> None:
    """A CCDE token works only while its authorization and consent do."""
    ctx.token_still_valid = lambda token: ccde.still_authorized(ctx, token)


def start_embedded(profile: Profile, run: EmbeddedRun) -> Target:
    """The reference server plays target and source; no client needs registering."""
    settings = profile.server_settings(run.faults, run.variations, **run.mock_settings)
    server = MockServer(settings).start()
    config = embedded_config(run, server, profile, patient_id=DEFAULT_PATIENT_ID, token_url=settings.token_url)
    return target_for(server, config)


def serve_banner(server: MockServer, options: ServeOptions, registered: list[str]) -> list[str]:
    return ["  no client registration: CCDE authorizes through Consent, $authorize and the target's JWT"]


PROFILE = Profile(
    order=4,
    name="ccde",
    title="Consumer-centered data exchange (test.fhir.org)",
    layout=ServerLayout(token_path="/auth/token"),
    routes=routes,
    embedded=start_embedded,
    suites=("ccde",),
    client_auth="ccde",
    on_app=install,
    serve_banner=serve_banner,
)
