"""UDAP token endpoint: x5c client assertions, the hl7-b2b extension, certificate binding.

The server must verify the assertion with the x5c certificate only (never a jwk
or kid in the header), trust only the community's chain, and bind the
registration to the certificate's SAN: a trusted certificate for another SAN
cannot act as the registered client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.checking import expect
from conformance.core.config import ProtectedRead, UdapConfig
from conformance.core.outcomes import CheckFailure, note
from conformance.core.recording import Exchange
from conformance.crypto.jose import ASSERTION_TYPE, generate_rsa, unsigned_jwt
from conformance.crypto.pki import CertifiedKey
from conformance.flows import oauth, udap
from conformance.flows.oauth import TokenGrant
from conformance.flows.target import Target
from conformance.runner.sending_ahead import SendAhead
from suites.conftest import ReadWith
from suites.udap_support import b2b_for


@pytest.fixture(scope="module")
def granted(udap_grant: TokenGrant) -> TokenGrant:
    expect.answered(udap_grant.exchange)
    expect.precondition(
        udap_grant.exchange.status == 200, f"no UDAP token ({expect.describe(udap_grant.exchange, 120)})"
    )
    return udap_grant


@pytest.mark.requirement("UDAP-TOK-01")
def test_registered_client_gets_a_bearer_token(udap_grant: TokenGrant) -> None:
    expect.status(udap_grant.exchange, {200}, "a registered client's x5c assertion must get a token")
    body = expect.json_object(udap_grant.exchange, "the token response must be JSON")
    note("token_type", body.get("token_type"))
    note("Content-Type", udap_grant.exchange.response_header("content-type"))
    if not body.get("access_token") or str(body.get("token_type", "")).lower() != "bearer":
        expect.fail(
            "the token response lacks a Bearer access_token",
            expected="access_token and token_type Bearer",
            actual=expect.short_json({k: v for k, v in body.items() if k != "access_token"}),
            exchange=udap_grant.exchange,
        )


@pytest.mark.requirement("UDAP-TOK-02")
def test_token_response_is_not_cached(granted: TokenGrant) -> None:
    expect.header_has_token(
        granted.exchange, "Cache-Control", "no-store", "token responses must carry Cache-Control: no-store"
    )
    try:
        expect.header_has_token(granted.exchange, "Pragma", "no-cache", "token responses should carry Pragma: no-cache")
    except CheckFailure as missing:
        # RFC 6749 §5.1 says MUST, RFC 9111 §5.4 deprecates Pragma: graded SHOULD (see SBS-TOKEN-03P).
        missing.requirement = "SBS-TOKEN-03P"
        raise


@pytest.mark.requirement("UDAP-TOK-03")
def test_token_lives_at_most_an_hour(granted: TokenGrant) -> None:
    value = granted.expires_in
    expect.precondition(isinstance(value, int | float) and not isinstance(value, bool), "expires_in is not a number")
    note("expires_in", value)
    if value > 3600:
        expect.fail(
            "the access token lives longer than 60 minutes",
            expected="expires_in ≤ 3600",
            actual=f"expires_in {value}",
            exchange=granted.exchange,
        )
    note("expires_in", value)


@pytest.mark.requirement("UDAP-TOK-04")
def test_granted_scope_is_stated(granted: TokenGrant) -> None:
    """UDAP §7.3: scope is required when the grant differs from the request; absent, it equals the request."""
    body = granted.body or {}
    if "scope" not in body:
        note("scope", "not stated (so the grant equals the request)")
        return
    if not isinstance(body["scope"], str) or not body["scope"].split():
        expect.fail(
            "the token response states an empty or malformed scope although it issued a token",
            expected="the granted scopes, space-delimited",
            actual=repr(body["scope"]),
            exchange=granted.exchange,
        )
    note("scope", granted.scope)


@pytest.mark.requirement("UDAP-TOK-22")
def test_no_refresh_token(granted: TokenGrant) -> None:
    expect.no_member(
        granted.exchange, "refresh_token", "a refresh_token was issued for client_credentials", expected="none"
    )


@pytest.fixture(scope="module")
def configured_reads(
    read_protected: ReadWith, udap_access_token: str, protected_read: ProtectedRead
) -> tuple[Exchange, Exchange]:
    with_token = read_protected(f"Bearer {udap_access_token}", f"{protected_read.path} with the UDAP token")
    without = read_protected(None, f"{protected_read.path} without a token")
    return with_token, without


@pytest.mark.requirement("UDAP-TOK-23")
def test_token_reads_the_configured_read(
    configured_reads: tuple[Exchange, Exchange], protected_read: ProtectedRead
) -> None:
    with_token, without = configured_reads
    expect.configured_read(with_token, protected_read, f"the UDAP token does not read {protected_read.path}")
    expect.status(without, {401}, "the same read without a token must get 401")


# --- refusals ---------------------------------------------------------------------------------------------


@dataclass
class Kit:
    target: Target
    client: udap.UdapClient
    config: UdapConfig
    client_id: str
    token_url: str
    required_extensions: list[str] | None = None
    """udap_authorization_extensions_required from the metadata (None when there is no metadata)."""

    def b2b(self) -> dict[str, Any] | None:
        return b2b_for(self.target, self.client)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        return udap.authentication_claims(self.client_id, self.token_url, self.b2b(), **overrides)

    def post(self, assertion: str, purpose: str, *, form: list[tuple[str, str]] | None = None) -> Exchange:
        return oauth.post_token(
            self.target.http, self.token_url, form or udap.token_form(assertion, self.client.scope), purpose=purpose
        )

    def send(
        self,
        purpose: str,
        *,
        certified: CertifiedKey | None = None,
        header: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> Exchange:
        assertion = udap.jwt_with_x5c(certified or self.client.certified, self.claims(**overrides), header=header)
        return self.post(assertion, purpose)

    def fixture(self, name: str) -> CertifiedKey:
        certified = self.config.fixtures.get(name)
        expect.precondition(certified, f"no '{name}' certificate is configured (udap.{name}_cert_chain)")
        assert certified is not None
        return certified


@dataclass(frozen=True)
class Case:
    id: str
    requirement: str
    what: str
    build: Callable[[Kit], Exchange]
    codes: frozenset[str] = frozenset({"invalid_client"})
    profiles: tuple[str, ...] = ("udap", "cerner-carequality")


def _now() -> int:
    return int(time.time())


def _header_jwk(kit: Kit) -> Exchange:
    """The converse of 'verify with x5c only': no x5c, the signing key offered as a header jwk."""
    rogue = generate_rsa()
    from conformance.crypto.jose import sign

    assertion = sign(kit.claims(), rogue, header={"jwk": rogue.public_jwk(), "kid": None}, alg="RS256")
    return kit.post(assertion, "assertion without x5c, signed by a key offered in a jwk header")


def _b2b_missing(kit: Kit) -> Exchange:
    expect.applicable(
        kit.required_extensions is not None and "hl7-b2b" in kit.required_extensions,
        "the metadata does not list hl7-b2b in udap_authorization_extensions_required",
    )
    return kit.send("assertion without extensions", extensions=None)


def _wrong_assertion_type(kit: Kit) -> Exchange:
    assertion = udap.jwt_with_x5c(kit.client.certified, kit.claims())
    form = [
        (k, "urn:example:wrong" if k == "client_assertion_type" else v)
        for k, v in udap.token_form(assertion, kit.client.scope)
    ]
    return kit.post(assertion, "wrong client_assertion_type", form=form)


def _b2b(**overrides: Any) -> Callable[[Kit], Exchange]:
    def build(kit: Kit) -> Exchange:
        extension = kit.client.b2b.extension(**overrides)
        return kit.send(f"assertion with hl7-b2b {overrides}", extensions={"hl7-b2b": extension})

    return build


CASES: list[Case] = [
    Case(
        "other-san-certificate",
        "UDAP-TOK-07",
        "a trusted certificate with another SAN claims the registered client",
        lambda kit: kit.send("assertion signed by another trusted certificate", certified=kit.fixture("other")),
    ),
    Case(
        "untrusted-certificate",
        "UDAP-TOK-06",
        "the certificate chains to no trusted anchor",
        lambda kit: kit.send("assertion from an untrusted community's certificate", certified=kit.fixture("untrusted")),
    ),
    Case(
        "expired-certificate",
        "UDAP-TOK-06",
        "the certificate has expired",
        lambda kit: kit.send("assertion with an expired certificate", certified=kit.fixture("expired")),
    ),
    Case(
        "no-x5c",
        "UDAP-TOK-13",
        "the header has no x5c",
        lambda kit: kit.send("assertion without x5c", header={"x5c": None}),
    ),
    Case(
        "alg-none",
        "UDAP-TOK-13",
        "alg none",
        lambda kit: kit.post(
            unsigned_jwt({"x5c": kit.client.certified.x5c()}, kit.claims()), "unsigned assertion (alg none)"
        ),
    ),
    Case("jwk-instead-of-x5c", "UDAP-TOK-14", "no x5c; a jwk in the header names the signing key", _header_jwk),
    Case(
        "iss-not-sub",
        "UDAP-TOK-08",
        "sub differs from iss",
        lambda kit: kit.send("assertion with a foreign sub", sub="someone-else"),
    ),
    Case(
        "unknown-client",
        "UDAP-TOK-08",
        "iss = sub = an unregistered client id",
        lambda kit: kit.send(
            "assertion from an unregistered client", iss="conformance-unregistered", sub="conformance-unregistered"
        ),
    ),
    Case(
        "aud-fhir-base",
        "UDAP-TOK-10",
        "aud is the FHIR base URL",
        lambda kit: kit.send("assertion for the FHIR base", aud=kit.target.base_url),
    ),
    Case(
        "expired-assertion",
        "UDAP-TOK-11",
        "exp in the past",
        lambda kit: kit.send("expired assertion", exp=_now() - 600, iat=_now() - 900),
    ),
    Case(
        "long-lived-assertion",
        "UDAP-TOK-11L",
        "exp an hour after iat",
        lambda kit: kit.send("assertion living an hour", exp=_now() + 3600),
    ),
    Case(
        "wrong-assertion-type",
        "UDAP-TOK-16",
        "client_assertion_type is wrong",
        _wrong_assertion_type,
        frozenset({"invalid_client", "invalid_request"}),
    ),
    Case(
        "missing-assertion",
        "UDAP-TOK-16",
        "client_assertion is left out",
        lambda kit: kit.post(
            "x",
            "no client_assertion",
            form=[
                ("grant_type", "client_credentials"),
                ("scope", kit.client.scope),
                ("client_assertion_type", ASSERTION_TYPE),
                ("udap", "1"),
            ],
        ),
        frozenset({"invalid_client", "invalid_request"}),
    ),
    Case(
        "b2b-missing",
        "UDAP-B2B-03",
        "no hl7-b2b extension although the metadata requires it",
        _b2b_missing,
        frozenset({"invalid_grant"}),
        profiles=("udap",),
    ),
    Case(
        "b2b-no-organization",
        "UDAP-B2B-04",
        "hl7-b2b without organization_id",
        _b2b(organization_id=None),
        frozenset({"invalid_grant"}),
        profiles=("udap",),
    ),
    Case(
        "b2b-empty-purpose",
        "UDAP-B2B-04",
        "hl7-b2b with purpose_of_use []",
        _b2b(purpose_of_use=[]),
        frozenset({"invalid_grant"}),
        profiles=("udap",),
    ),
    Case(
        "b2b-purpose-string",
        "UDAP-B2B-04",
        "hl7-b2b with purpose_of_use as a string",
        _b2b(purpose_of_use="TREAT"),
        frozenset({"invalid_grant"}),
        profiles=("udap",),
    ),
    Case(
        "b2b-version-2",
        "UDAP-B2B-04",
        'hl7-b2b version "2"',
        _b2b(version="2"),
        frozenset({"invalid_grant"}),
        profiles=("udap",),
    ),
    Case(
        "extensions-not-object",
        "UDAP-B2B-04",
        "extensions is a string",
        lambda kit: kit.send("assertion whose extensions is a string", extensions="hl7-b2b"),
        frozenset({"invalid_grant", "invalid_request"}),
        profiles=("udap",),
    ),
]


@pytest.fixture(scope="module")
def kit(
    target: Target,
    udap_client: udap.UdapClient,
    udap_config: UdapConfig,
    udap_client_id: str,
    udap_token_url: str,
    udap_grant: TokenGrant,
    udap_metadata_exchange: Exchange,
) -> Kit:
    metadata = udap_metadata_exchange.json_object() if udap_metadata_exchange.status == 200 else None
    required = metadata.get("udap_authorization_extensions_required") if metadata else None
    return Kit(
        target,
        udap_client,
        udap_config,
        udap_client_id,
        udap_token_url,
        required if isinstance(required, list) else None,
    )


@pytest.fixture(scope="module")
def refused(kit: Kit, send_ahead: SendAhead) -> Callable[[Case], Exchange]:
    """Each case sent once (the group side by side); every check reads the recorded answer."""
    return send_ahead(lambda case: case.build(kit))


def _params() -> list[Any]:
    return [
        pytest.param(
            case, id=case.id, marks=[pytest.mark.profiles(*case.profiles), pytest.mark.requirement(case.requirement)]
        )
        for case in CASES
    ]


@pytest.mark.parametrize("case", _params())
def test_request_is_refused(case: Case, refused: Callable[[Case], Exchange]) -> None:
    exchange = expect.answered(refused(case))
    expect.no_server_error(exchange, case.what)
    if (exchange.status or 0) < 300 or "access_token" in (exchange.json_object() or {}):
        expect.fail(
            f"a defective token request was accepted: {case.what}",
            expected=" or ".join(sorted(case.codes)),
            actual=expect.describe(exchange),
            exchange=exchange,
        )


@pytest.mark.parametrize("case", _params())
def test_refusal_uses_the_right_code(case: Case, refused: Callable[[Case], Exchange]) -> None:
    exchange = expect.answered(refused(case))
    expect.precondition(400 <= (exchange.status or 0) < 500, f"the {case.id} request was not refused with a 4xx")
    status = expect.status(exchange, {400, 401}, f"refusal of '{case.what}' must be 400 (401 for invalid_client)")
    body = expect.json_object(exchange, "token errors must be JSON")
    error = body.get("error")
    if status == 401 and error != "invalid_client":
        expect.fail(
            f"HTTP 401 with another error than invalid_client for: {case.what}",
            expected="400, or 401 only with invalid_client (RFC 6749 §5.2)",
            actual=f"HTTP {status} {error!r}",
            exchange=exchange,
        )
    note("answer", f"HTTP {status} {error}")
    # UDAP.org JWT client auth §7.2: certificate and signature denials should use invalid_request or invalid_client.
    fitting = case.codes | ({"invalid_request"} if "invalid_client" in case.codes else set())
    if error not in fitting:
        expect.fail(
            f"the error code does not fit the cause: {case.what}",
            expected=" or ".join(sorted(fitting)),
            actual=f"HTTP {status} {error!r}",
            exchange=exchange,
            requirement="UDAP-TOK-CODE",
        )


@dataclass
class Replay:
    first: Exchange
    again: Exchange


@pytest.fixture(scope="module")
def replayed_assertion(
    target: Target, udap_client: udap.UdapClient, udap_client_id: str, udap_token_url: str
) -> Replay:
    """One fresh client assertion sent twice within its lifetime."""
    claims = udap.authentication_claims(udap_client_id, udap_token_url, b2b_for(target, udap_client))
    form = udap.token_form(udap.jwt_with_x5c(udap_client.certified, claims), udap_client.scope)
    first = oauth.post_token(target.http, udap_token_url, form, purpose="a fresh UDAP client assertion")
    again = oauth.post_token(target.http, udap_token_url, form, purpose="the same UDAP client assertion again")
    return Replay(first, again)


@pytest.mark.requirement("UDAP-TOK-12")
def test_replayed_assertion_is_answered(replayed_assertion: Replay) -> None:
    """UDAP lets the server deny a replayed assertion (MAY); either answer is recorded, a crash fails."""
    expect.precondition(replayed_assertion.first.status == 200, "the fresh assertion got no token")
    exchange = expect.answered(replayed_assertion.again)
    expect.no_server_error(exchange, "a replayed client assertion")
    status = expect.status(exchange, {200, 400, 401}, "a replayed assertion must be accepted or refused")
    if status == 200:
        note("server chose", "accepting the replay")
    else:
        error = expect.json_object(exchange, "a refusal must be an OAuth error").get("error")
        note("server chose", f"refusal (HTTP {status} {error})")
