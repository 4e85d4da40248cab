"""Carequality on Cerner: UDAP registration and token under the FHIR base, advertised in the CapabilityStatement."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from conformance.flows.target import Target
from conformance.mock import fhir
from conformance.mock.data import CERNER_PATIENT_ID
from conformance.mock.settings import MockSettings, ServerLayout
from conformance.mock.systems import carequality
from conformance.mock.systems import udap as udap_server
from conformance.mock.systems.carequality import CERNER_TENANT
from conformance.profiles import udap_community
from conformance.profiles.base import ConfigNeeds, EmbeddedRun, Profile, ServeOptions

FHIR_PATH = f"/beta/{CERNER_TENANT}"


def routes(settings: MockSettings) -> list[BaseRoute]:
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


def start_embedded(profile: Profile, run: EmbeddedRun) -> Target:
    return udap_community.start_embedded(profile, run, require_b2b=False, patient_id=CERNER_PATIENT_ID)


def serve_prepare(options: ServeOptions) -> udap_community.Preparer:
    return udap_community.serve_preparer(options, require_b2b=False)


PROFILE = Profile(
    order=2,
    name="cerner-carequality",
    title="Carequality on Cerner (UDAP under the FHIR base)",
    layout=ServerLayout(
        fhir_path=FHIR_PATH,
        token_path=f"{FHIR_PATH}/Authorization/token",
        register_path=f"{FHIR_PATH}/Authorization/register",
        needs_udap=True,
        registration_media_types=("application/json", "application/fhir+json"),
        registration_udap_values=("1", 1),
        registration_needs_contact=False,
    ),
    routes=routes,
    embedded=start_embedded,
    suites=("registration", "udap_token", "carequality"),
    client_auth="udap",
    needs=ConfigNeeds(udap=True),
    serve_prepare=serve_prepare,
    serve_banner=udap_community.serve_banner,
)
