"""Finding Carequality endpoints on a Cerner-style server from its CapabilityStatement.

Three shapes were used while Cerner built this (2019-2020); the suite accepts
each and says which one it found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformance.flows.discovery import OAUTH_URIS, oauth_uris

CAREQUALITY_OAUTH_URIS = "https://fhir-ehr.cerner.com/r4/StructureDefinition/carequality-oauth-uris"
OVERRIDE_HEADER = "Cerner-Override-OAuth-URIs"


@dataclass(frozen=True)
class CarequalityEndpoints:
    token: str | None
    register: str | None
    shape: str

    @property
    def complete(self) -> bool:
        return bool(self.token and self.register)


def find_endpoints(plain: dict[str, Any] | None, overridden: dict[str, Any] | None) -> CarequalityEndpoints | None:
    """The Carequality token and register URLs, from whichever advertisement shape the server uses."""
    if plain:
        vendor = oauth_uris(plain, CAREQUALITY_OAUTH_URIS)
        if vendor:
            return CarequalityEndpoints(vendor.get("token"), vendor.get("register"), "carequality-oauth-uris extension")
        smart = oauth_uris(plain, OAUTH_URIS) or {}
        if "carequality-token" in smart:
            return CarequalityEndpoints(
                smart["carequality-token"], smart.get("carequality-register"), "carequality-token inside oauth-uris"
            )
    if plain and overridden:
        before, after = oauth_uris(plain, OAUTH_URIS) or {}, oauth_uris(overridden, OAUTH_URIS) or {}
        if after and after != before:
            return CarequalityEndpoints(after.get("token"), after.get("register"), f"{OVERRIDE_HEADER}: on header")
    return None
