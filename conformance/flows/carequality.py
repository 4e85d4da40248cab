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
    """The Carequality token and register URLs, from whichever advertisement shape the server uses.

    The three shapes and their sources (Cerner's connectathon notes, github MaxPhilips/wgm_notes,
    carequality/test_server_faq.md; the team's catalogue rows CERNER-02 to CERNER-04):
    - a `carequality-oauth-uris` extension with `token` and `register` (draft of 2020-05-14, commit ad7fd53);
    - the SMART `oauth-uris` extension switched to the Carequality URLs by the request header
      `Cerner-Override-OAuth-URIs: on` (final May 2020 notes, commits 3eb1bad and 93c8d07);
    - a `carequality-token` sub-extension inside the SMART `oauth-uris` extension (notes of 2019-12-04).
      No source shows a registration sub-extension for that shape (registration was manual then), so
      the register URL is the extension's standard `register` sub-extension, when there is one.
    """
    if plain:
        vendor = oauth_uris(plain, CAREQUALITY_OAUTH_URIS)
        if vendor:
            return CarequalityEndpoints(vendor.get("token"), vendor.get("register"), "carequality-oauth-uris extension")
        smart = oauth_uris(plain, OAUTH_URIS) or {}
        if "carequality-token" in smart:
            return CarequalityEndpoints(
                smart["carequality-token"], smart.get("register"), "carequality-token inside oauth-uris"
            )
    if plain and overridden:
        before, after = oauth_uris(plain, OAUTH_URIS) or {}, oauth_uris(overridden, OAUTH_URIS) or {}
        if after and after != before:
            return CarequalityEndpoints(after.get("token"), after.get("register"), f"{OVERRIDE_HEADER}: on header")
    return None
