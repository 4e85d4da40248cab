"""UDAP client flows (HL7 FAST Security IG): discovery, software statements, registration, JWT client auth.

Every JWT here carries an `x5c` header (standard base64 DER, leaf first) and is
signed with the certificate's key; the server must verify with that certificate
only. Negative checks start from these valid forms and change one thing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.core.recording import Exchange, HttpRecorder
from conformance.crypto.jose import ASSERTION_TYPE, sign
from conformance.crypto.pki import CertifiedKey

UDAP_VERSION = "1"
DEFAULT_PURPOSE_OF_USE = "urn:oid:2.16.840.1.113883.5.8#TREAT"
MAX_JWT_LIFETIME = 300


@dataclass(frozen=True)
class B2B:
    """What goes into the hl7-b2b authorization extension object."""

    organization_id: str
    organization_name: str
    purpose_of_use: tuple[str, ...] = (DEFAULT_PURPOSE_OF_USE,)

    def extension(self, **overrides: Any) -> dict[str, Any]:
        value: dict[str, Any] = {
            "version": "1",
            "organization_id": self.organization_id,
            "organization_name": self.organization_name,
            "purpose_of_use": list(self.purpose_of_use),
        }
        for name, override in overrides.items():
            if override is None:
                value.pop(name, None)
            else:
                value[name] = override
        return value


@dataclass
class UdapClient:
    """The client's identity in a trust community: its certificate, the URI it is, and its B2B facts."""

    certified: CertifiedKey
    client_uri: str
    b2b: B2B
    scope: str
    client_name: str = "fhir-b2b-conformance"
    contacts: list[str] = field(default_factory=lambda: ["mailto:conformance@example.org"])


def jwt_with_x5c(
    certified: CertifiedKey,
    claims: dict[str, Any],
    *,
    alg: str = "RS256",
    header: dict[str, Any] | None = None,
    chain: Sequence[str] | None = None,
) -> str:
    """Sign claims with the certificate's key and name the certificate chain in x5c."""
    headers: dict[str, Any] = {"x5c": list(chain) if chain is not None else certified.x5c(), "kid": None}
    headers.update(header or {})
    return sign(claims, certified.client_key(alg), header=headers, alg=alg)


def _apply(body: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    for name, value in (overrides or {}).items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def software_statement_claims(client: UdapClient, registration_url: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client.client_uri,
        "sub": client.client_uri,
        "aud": registration_url,
        "iat": now,
        "exp": now + MAX_JWT_LIFETIME,
        "jti": uuid.uuid4().hex,
        "client_name": client.client_name,
        "contacts": list(client.contacts),
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": client.scope,
    }
    return _apply(claims, overrides)


def registration_body(statement: str, *, udap: Any = UDAP_VERSION, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"software_statement": statement, "certifications": [], "udap": udap}
    return _apply(body, extra)


def register(
    http: HttpRecorder,
    registration_url: str,
    body: Any,
    *,
    purpose: str,
    content_type: str = "application/json",
) -> Exchange:
    """POST a registration request (a dict is sent as JSON, bytes/str as they are)."""
    import json

    content = body if isinstance(body, bytes | str) else json.dumps(body)
    return http.request(
        "POST",
        registration_url,
        purpose=purpose,
        content=content,
        headers={"Content-Type": content_type, "Accept": "application/json"},
    )


def authentication_claims(
    client_id: str, token_url: str, b2b: dict[str, Any] | None, **overrides: Any
) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": now,
        "exp": now + MAX_JWT_LIFETIME,
        "jti": uuid.uuid4().hex,
    }
    if b2b is not None:
        claims["extensions"] = {"hl7-b2b": b2b}
    return _apply(claims, overrides)


def token_form(
    assertion: str, scope: str | None, *, udap: bool = True, extra: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    form = [("grant_type", "client_credentials")]
    if scope is not None:
        form.append(("scope", scope))
    form += [("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)]
    if udap:
        form.append(("udap", UDAP_VERSION))
    return form + list(extra)


def get_udap_metadata(
    http: HttpRecorder, base_url: str, *, community: str | None = None, purpose: str = ""
) -> Exchange:
    return http.request(
        "GET",
        f"{base_url.rstrip('/')}/.well-known/udap",
        purpose=purpose or ("read UDAP metadata" + (f" for community {community}" if community else "")),
        params={"community": community} if community else None,
        headers={"Accept": "application/json"},
    )


@dataclass
class Registration:
    """The answer to a registration: exchange, body, the client id it issued."""

    exchange: Exchange
    statement: str

    @property
    def body(self) -> dict[str, Any]:
        return self.exchange.json_object() or {}

    @property
    def client_id(self) -> str | None:
        value = self.body.get("client_id")
        return value if isinstance(value, str) and value else None

    def __evidence__(self) -> list[Exchange]:
        return [self.exchange]


@dataclass
class SignedJwt:
    """A JWS taken apart for checking: header, claims, x5c certificates and whether the x5c leaf signed it."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    certificates: list[Any]
    x5c_problem: str | None
    signature_problem: str | None


def read_signed_jwt(token: str) -> SignedJwt:
    """Decode a JWS that should carry x5c; ValueError if it is not even a compact JWS."""
    import jwt

    from conformance.crypto.jose import decode_unverified
    from conformance.crypto.pki import PkiError, certificates_from_x5c

    header, claims = decode_unverified(token)
    certificates: list[Any] = []
    x5c_problem = signature_problem = None
    try:
        certificates = certificates_from_x5c(header.get("x5c"))
    except PkiError as exc:
        x5c_problem = str(exc)
    if certificates:
        try:
            jwt.PyJWS().decode_complete(token, key=certificates[0].public_key(), algorithms=[str(header.get("alg"))])
        except Exception as exc:
            signature_problem = f"{type(exc).__name__}: {exc}"
    else:
        signature_problem = "no usable x5c certificate to verify with"
    return SignedJwt(token, header, claims, certificates, x5c_problem, signature_problem)
