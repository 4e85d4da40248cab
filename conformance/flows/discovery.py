"""Discovery flows: fetch the CapabilityStatement and smart-configuration, find OAuth endpoints.

Clients are lenient where the specs let them be (a relative token URL is
resolved against the FHIR base), so the checks can report a defect while the
rest of the run still reaches the token endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from conformance.core.recording import Exchange, HttpRecorder

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
FHIR_JSON = "application/fhir+json"


def well_known_url(base_url: str, name: str) -> str:
    """SMART appends .well-known after the FHIR base path, even when the base has a path."""
    return f"{base_url.rstrip('/')}/.well-known/{name}"


def get_capability_statement(http: HttpRecorder, base_url: str, *, headers: dict[str, str] | None = None) -> Exchange:
    return http.request(
        "GET",
        f"{base_url.rstrip('/')}/metadata",
        purpose="read the CapabilityStatement",
        headers={"Accept": FHIR_JSON, **(headers or {})},
    )


def get_smart_configuration(http: HttpRecorder, base_url: str, accept: str | None = "application/json") -> Exchange:
    headers = {"Accept": accept} if accept is not None else {}
    return http.request(
        "GET",
        well_known_url(base_url, "smart-configuration"),
        purpose=f"read smart-configuration (Accept: {accept or 'none'})",
        headers=headers,
    )


def security_extensions(capability: dict[str, Any]) -> list[dict[str, Any]]:
    """Every extension under rest[].security."""
    found: list[dict[str, Any]] = []
    rests = capability.get("rest")
    for rest in rests if isinstance(rests, list) else []:
        security = rest.get("security") if isinstance(rest, dict) else None
        extensions = security.get("extension") if isinstance(security, dict) else None
        found += [e for e in extensions if isinstance(e, dict)] if isinstance(extensions, list) else []
    return found


def oauth_uris(capability: dict[str, Any], extension_url: str = OAUTH_URIS) -> dict[str, str] | None:
    """Sub-extension name → valueUri of the oauth-uris extension (None when absent)."""
    for extension in security_extensions(capability):
        if str(extension.get("url", "")).lower() == extension_url.lower():
            uris: dict[str, str] = {}
            subs = extension.get("extension")
            for sub in subs if isinstance(subs, list) else []:
                if isinstance(sub, dict) and isinstance(sub.get("url"), str) and isinstance(sub.get("valueUri"), str):
                    uris.setdefault(sub["url"], sub["valueUri"])
            return uris
    return None


@dataclass
class Endpoints:
    """Where the run sends token requests, and how it found out."""

    token_url: str | None
    source: str
    advertised_token_url: str | None = None


def resolve_token_endpoint(base_url: str, smart_config: Exchange, capability: Exchange) -> Endpoints:
    """The token URL from smart-configuration, else from the CapabilityStatement's oauth-uris."""
    document = smart_config.json_object() if smart_config.status == 200 else None
    if document and isinstance(document.get("token_endpoint"), str):
        advertised = document["token_endpoint"]
        return Endpoints(resolve(base_url, advertised), "smart-configuration", advertised)
    statement = capability.json_object() if capability.status == 200 else None
    uris = oauth_uris(statement) if statement else None
    if uris and "token" in uris:
        return Endpoints(resolve(base_url, uris["token"]), "CapabilityStatement oauth-uris", uris["token"])
    return Endpoints(None, "not found")


def resolve(base_url: str, url: str) -> str | None:
    """An advertised URL made absolute against the FHIR base, as a lenient client would; None if unusable."""
    try:
        absolute = urljoin(base_url.rstrip("/") + "/", url)
        parts = urlsplit(absolute)
        _ = parts.port
    except ValueError:
        return None
    return absolute if parts.scheme in ("http", "https") and parts.hostname else None
