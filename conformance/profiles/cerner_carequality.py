"""Carequality on Cerner: UDAP registration and token under the FHIR base, advertised in the CapabilityStatement."""

from __future__ import annotations

from functools import partial

from starlette.routing import BaseRoute

from conformance.mock.data import CERNER_PATIENT_ID
from conformance.mock.settings import MockSettings, ServerLayout
from conformance.mock.systems import carequality
from conformance.mock.systems.carequality import CERNER_TENANT
from conformance.profiles import udap_community
from conformance.profiles.base import ConfigNeeds, Profile

FHIR_PATH = f"/beta/{CERNER_TENANT}"


def routes(settings: MockSettings) -> list[BaseRoute]:
    strict = "fhir-accepts-no-accept-header" not in settings.faults
    return udap_community.routes(settings, carequality.metadata, require_explicit_json=strict)


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
    embedded=partial(udap_community.start_embedded, require_b2b=False, patient_id=CERNER_PATIENT_ID),
    suites=("registration", "udap_token", "carequality"),
    client_auth="udap",
    needs=ConfigNeeds(udap=True),
    serve_prepare=partial(udap_community.serve_preparer, require_b2b=False),
    serve_banner=udap_community.serve_banner,
    preflight=udap_community.preflight_check,
    key_material=udap_community.KEYS,
)
