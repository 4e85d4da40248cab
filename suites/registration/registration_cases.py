"""Bad registrations: each case breaks one thing in an otherwise valid UDAP registration request.

Error codes follow the cause (UDAP.org DCR §5.2): trust failures are
unapproved_software_statement, signature and claim problems
invalid_software_statement, parameter problems invalid_client_metadata.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization

from conformance.checking import expect
from conformance.core.config import UdapConfig
from conformance.core.recording import Exchange
from conformance.crypto.jose import generate_rsa, hmac_jwt, unsigned_jwt
from conformance.crypto.pki import CertifiedKey
from conformance.flows import udap
from conformance.flows.target import Target

STATEMENT = "invalid_software_statement"
UNAPPROVED = "unapproved_software_statement"
METADATA = "invalid_client_metadata"
FITTING = {
    STATEMENT: frozenset({STATEMENT, UNAPPROVED}),
    UNAPPROVED: frozenset({UNAPPROVED, STATEMENT}),
    METADATA: frozenset({METADATA, STATEMENT}),
}
"""Codes that fit a cause: UDAP DCR §5.2 and RFC 7591 §3.2.2 name them loosely (SHOULD), and client metadata
travels inside the software statement, so either code describes a bad claim there."""


def fitting(codes: frozenset[str]) -> frozenset[str]:
    return frozenset().union(*(FITTING.get(code, frozenset({code})) for code in codes))


@dataclass
class Kit:
    target: Target
    client: udap.UdapClient
    config: UdapConfig
    registration_url: str
    token_url: str

    def claims(self, **overrides: Any) -> dict[str, Any]:
        return udap.software_statement_claims(self.client, self.registration_url, **overrides)

    def post(self, body: Any, purpose: str, content_type: str | None = None) -> Exchange:
        return udap.register(
            self.target.http,
            self.registration_url,
            body,
            purpose=purpose,
            content_type=content_type or self.config.registration_content_type,
        )

    def statement(self, certified: CertifiedKey | None = None, **overrides: Any) -> str:
        return udap.jwt_with_x5c(certified or self.client.certified, self.claims(**overrides))

    def send(self, purpose: str, *, certified: CertifiedKey | None = None, **overrides: Any) -> Exchange:
        return self.post(udap.registration_body(self.statement(certified, **overrides)), purpose)


@dataclass(frozen=True)
class Case:
    id: str
    requirement: str
    what: str
    build: Callable[[Kit], Exchange]
    codes: frozenset[str]
    tolerated: frozenset[str] = frozenset()
    statuses: frozenset[int] = frozenset({400})
    profiles: tuple[str, ...] = ("udap", "cerner-carequality")
    may_accept: bool = False
    """The defect is in a member a server may ignore; accepting it is recorded, not failed."""


def _now() -> int:
    return int(time.time())


def _fixture(kit: Kit, name: str) -> CertifiedKey:
    certified = kit.config.fixtures.get(name)
    expect.precondition(certified, f"no '{name}' certificate is configured (udap.{name}_cert_chain)")
    assert certified is not None
    return certified


def _bad_signature(kit: Kit) -> Exchange:
    impostor = CertifiedKey(kit.client.certified.certificate, generate_rsa().private_key, kit.client.certified.chain)
    return kit.send("software statement signed by a key that is not the certificate's", certified=impostor)


def _untrusted(kit: Kit) -> Exchange:
    return kit.send(
        "software statement from an untrusted community's certificate", certified=_fixture(kit, "untrusted")
    )


def _expired(kit: Kit) -> Exchange:
    return kit.send("software statement with an expired certificate", certified=_fixture(kit, "expired"))


def _no_x5c(kit: Kit) -> Exchange:
    statement = udap.jwt_with_x5c(kit.client.certified, kit.claims(), header={"x5c": None})
    return kit.post(udap.registration_body(statement), "software statement without x5c")


def _x5c_base64url(kit: Kit) -> Exchange:
    chain = [base64.urlsafe_b64encode(base64.b64decode(c)).decode().rstrip("=") for c in kit.client.certified.x5c()]
    statement = udap.jwt_with_x5c(kit.client.certified, kit.claims(), chain=chain)
    return kit.post(udap.registration_body(statement), "software statement whose x5c is base64url")


def _alg_none(kit: Kit) -> Exchange:
    statement = unsigned_jwt({"x5c": kit.client.certified.x5c()}, kit.claims())
    return kit.post(udap.registration_body(statement), "unsigned software statement (alg none)")


def _hs256(kit: Kit) -> Exchange:
    der = kit.client.certified.certificate.public_bytes(serialization.Encoding.DER)
    statement = hmac_jwt({"x5c": kit.client.certified.x5c()}, kit.claims(), der)
    return kit.post(udap.registration_body(statement), "software statement MAC'd HS256 with the certificate")


CASES: list[Case] = [
    Case(
        "bad-signature",
        "UDAP-REGERR-01",
        "the signature is not by the x5c certificate's key",
        _bad_signature,
        frozenset({STATEMENT}),
    ),
    Case(
        "iss-not-a-san",
        "UDAP-REGERR-02",
        "iss is not a URI SAN of the certificate",
        lambda kit: kit.send(
            "software statement whose iss is not in the certificate",
            iss="https://conformance.example.org/not-in-the-cert",
            sub="https://conformance.example.org/not-in-the-cert",
        ),
        frozenset({STATEMENT}),
        frozenset({METADATA, UNAPPROVED}),
    ),
    Case(
        "untrusted-certificate",
        "UDAP-REGERR-03",
        "the certificate chains to no trusted anchor",
        _untrusted,
        frozenset({UNAPPROVED}),
    ),
    Case("expired-certificate", "UDAP-REGERR-04", "the certificate has expired", _expired, frozenset({UNAPPROVED})),
    Case(
        "sub-not-iss",
        "UDAP-REGERR-05",
        "sub differs from iss",
        lambda kit: kit.send(
            "software statement with sub different from iss", sub="https://conformance.example.org/someone-else"
        ),
        frozenset({STATEMENT}),
    ),
    Case(
        "missing-sub",
        "UDAP-REGERR-05",
        "sub is left out",
        lambda kit: kit.send("software statement without sub", sub=None),
        frozenset({STATEMENT}),
    ),
    Case(
        "aud-token-endpoint",
        "UDAP-REGERR-06",
        "aud is the token endpoint",
        lambda kit: kit.send("software statement addressed to the token endpoint", aud=kit.token_url),
        frozenset({STATEMENT}),
    ),
    Case(
        "missing-aud",
        "UDAP-REGERR-06",
        "aud is left out",
        lambda kit: kit.send("software statement without aud", aud=None),
        frozenset({STATEMENT}),
    ),
    Case(
        "expired-statement",
        "UDAP-REGERR-07",
        "exp ten minutes in the past",
        lambda kit: kit.send("expired software statement", exp=_now() - 600, iat=_now() - 900),
        frozenset({STATEMENT}),
    ),
    Case(
        "missing-exp",
        "UDAP-REGERR-07",
        "exp is left out",
        lambda kit: kit.send("software statement without exp", exp=None),
        frozenset({STATEMENT}),
    ),
    Case(
        "long-lived-statement",
        "UDAP-REGERR-08",
        "exp an hour after iat",
        lambda kit: kit.send("software statement living an hour", exp=_now() + 3600),
        frozenset({STATEMENT}),
    ),
    Case(
        "iat-in-future",
        "UDAP-REGERR-09",
        "iat ten minutes ahead",
        lambda kit: kit.send("software statement issued in the future", iat=_now() + 600, exp=_now() + 800),
        frozenset({STATEMENT}),
    ),
    Case("missing-x5c", "UDAP-REGERR-11", "the header has no x5c", _no_x5c, frozenset({STATEMENT})),
    Case(
        "x5c-base64url",
        "UDAP-REGERR-11",
        "x5c is base64url, not standard base64",
        _x5c_base64url,
        frozenset({STATEMENT}),
    ),
    Case("alg-none", "UDAP-REGERR-12", "alg none", _alg_none, frozenset({STATEMENT})),
    Case("hs256-certificate", "UDAP-REGERR-12", "HS256 keyed with the certificate", _hs256, frozenset({STATEMENT})),
    Case(
        "missing-client-name",
        "UDAP-REGERR-13",
        "client_name is left out",
        lambda kit: kit.send("software statement without client_name", client_name=None),
        frozenset({METADATA}),
    ),
    Case(
        "missing-grant-types",
        "UDAP-REGERR-13",
        "grant_types is left out (an empty array would cancel)",
        lambda kit: kit.send("software statement without grant_types", grant_types=None),
        frozenset({METADATA}),
    ),
    Case(
        "unsupported-grant-type",
        "UDAP-REGERR-13",
        "grant_types holds password",
        lambda kit: kit.send("software statement asking for the password grant", grant_types=["password"]),
        frozenset({METADATA}),
    ),
    Case(
        "wrong-auth-method",
        "UDAP-REGERR-13",
        "token_endpoint_auth_method is client_secret_basic",
        lambda kit: kit.send(
            "software statement asking for client_secret_basic", token_endpoint_auth_method="client_secret_basic"
        ),
        frozenset({METADATA}),
    ),
    Case(
        "redirect-uris-with-client-credentials",
        "UDAP-REGERR-13",
        "redirect_uris sent with client_credentials",
        lambda kit: kit.send(
            "client_credentials software statement with redirect_uris", redirect_uris=["https://app.example.org/cb"]
        ),
        frozenset({METADATA}),
    ),
    Case(
        "missing-contacts",
        "UDAP-REGERR-14",
        "contacts is left out",
        lambda kit: kit.send("software statement without contacts", contacts=None),
        frozenset({METADATA}),
        profiles=("udap",),
    ),
    Case(
        "unsupported-scope-only",
        "UDAP-REGERR-15",
        "scope names only an unsupported scope",
        lambda kit: kit.send(
            "software statement asking only for an unsupported scope", scope="system/NotAResource.read"
        ),
        frozenset({METADATA}),
    ),
    Case(
        "missing-udap",
        "UDAP-REGERR-19",
        'the body has no "udap": "1"',
        lambda kit: kit.post(udap.registration_body(kit.statement(), udap=None), "registration without udap"),
        frozenset({METADATA}),
    ),
    Case(
        "body-not-json",
        "UDAP-REGERR-16",
        "the body is not JSON",
        lambda kit: kit.post("software_statement=not-json", "registration whose body is not JSON"),
        frozenset({METADATA}),
        statuses=frozenset({400, 415}),
    ),
    Case(
        "certifications-as-string",
        "UDAP-REGERR-16",
        'certifications is the string "[]"',
        lambda kit: kit.post(
            udap.registration_body(kit.statement(), certifications="[]"), "registration with certifications as a string"
        ),
        frozenset({METADATA}),
        # A server that supports no certifications may ignore the member altogether.
        may_accept=True,
    ),
]
