"""RFC 7591 dynamic client registration of a SMART backend client (plain JSON metadata, no software statement).

A backend client has no redirects and no user: it registers `client_credentials`
with `private_key_jwt` and hands over the public half of its key as a `jwks`, so
the server can verify the client assertions it will later sign. Negative checks
start from this valid metadata and change one member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformance.core.recording import Exchange, HttpRecorder
from conformance.crypto.jose import ClientKey, jwks

GRANT_TYPES = ["client_credentials"]
AUTH_METHOD = "private_key_jwt"
CLIENT_NAME = "fhir-b2b-conformance backend client"


def backend_client_metadata(
    key: ClientKey, *, scope: str | None, client_name: str = CLIENT_NAME, **overrides: Any
) -> dict[str, Any]:
    """The metadata a SMART backend client registers; an override of None drops that member.

    No `redirect_uris`: RFC 7591 §2 asks for them only from clients of redirect-based flows.
    """
    metadata: dict[str, Any] = {
        "client_name": client_name,
        "grant_types": list(GRANT_TYPES),
        "token_endpoint_auth_method": AUTH_METHOD,
        "jwks": jwks([key]),
    }
    if scope:
        metadata["scope"] = scope
    for name, value in overrides.items():
        if value is None:
            metadata.pop(name, None)
        else:
            metadata[name] = value
    return metadata


def register(http: HttpRecorder, registration_url: str, metadata: dict[str, Any], *, purpose: str) -> Exchange:
    """POST the metadata as application/json (RFC 7591 §3.1) through the run's recorder, so it is evidence."""
    return http.request(
        "POST", registration_url, purpose=purpose, json_body=metadata, headers={"Accept": "application/json"}
    )


@dataclass
class Registration:
    """What was sent and what came back, with the key the registered client signs with."""

    exchange: Exchange
    metadata: dict[str, Any]
    key: ClientKey

    @property
    def body(self) -> dict[str, Any] | None:
        """The response as a JSON object (None when it is anything else)."""
        return self.exchange.json_object()

    @property
    def registered(self) -> bool:
        """A 2xx answer: the server says it registered the client (RFC 7591 §3.2.1 asks for 201)."""
        return self.exchange.status is not None and 200 <= self.exchange.status < 300

    @property
    def client_id(self) -> str | None:
        """The issued client_id, when it is a non-empty string."""
        value = (self.body or {}).get("client_id")
        return value if isinstance(value, str) and value else None

    def __evidence__(self) -> list[Exchange]:
        return [self.exchange]
