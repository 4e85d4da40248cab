"""Token endpoint, success path: a valid RS384 or ES384 assertion gets a usable Bearer token."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from conformance.checking import expect
from conformance.core.config import ProtectedRead
from conformance.core.outcomes import SpecWarning, note
from conformance.core.recording import Exchange
from conformance.crypto.jose import ClientKey
from conformance.flows import oauth
from conformance.flows.oauth import TokenGrant
from conformance.flows.scopes import beyond, split_scopes
from conformance.flows.target import Target
from conformance.runner.sending_ahead import SendAhead
from suites.conftest import ReadWith

TOKEN_RESPONSE_MEMBERS = {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
"""The members RFC 6749 §5.1 defines; the client ignores any others (and the check records them)."""


@pytest.fixture(scope="module")
def signed(
    target: Target, token_url: str, client_id: str, signing_algs: list[str], send_ahead: SendAhead
) -> Callable[[str], TokenGrant]:
    """Per signing algorithm, the token request: the algorithms go side by side."""

    def sign(alg: str) -> TokenGrant:
        expect.applicable(alg in signing_algs, f"the server does not advertise {alg}")
        key = target.config.key_for(alg)
        expect.precondition(key, f"no {alg} key is configured (auth.private_keys)")
        assert key is not None
        exchange = oauth.request_token(
            target.http,
            token_url,
            key,
            client_id=client_id,
            scope=target.config.scope,
            purpose=f"token request signed {alg}",
        )
        return TokenGrant.of(exchange)

    return send_ahead(sign, param="grant", name="signed")


@pytest.fixture(scope="module", params=["RS384", "ES384"])
def grant(request: pytest.FixtureRequest, signed: Callable[[str], TokenGrant]) -> TokenGrant:
    return signed(request.param)


@pytest.fixture(scope="module")
def granted(grant: TokenGrant) -> TokenGrant:
    """The grant, for checks that only make sense once a token was issued."""
    expect.answered(grant.exchange)
    expect.precondition(grant.exchange.status == 200, f"no token was issued ({expect.describe(grant.exchange, 120)})")
    return grant


@pytest.mark.requirement("SBS-TOKEN-11")
def test_valid_assertion_gets_a_token(grant: TokenGrant) -> None:
    expect.status(grant.exchange, {200}, "a valid client assertion must get HTTP 200")
    body = expect.json_object(grant.exchange, "the token response must be a JSON object")
    expect.field(body, "access_token", grant.exchange, "the token response must carry an access_token")
    others = sorted(set(body) - TOKEN_RESPONSE_MEMBERS)
    note("other members", ", ".join(others) or "none")


@pytest.mark.requirement("SBS-TOKEN-02")
def test_response_is_application_json(granted: TokenGrant) -> None:
    expect.media_type(granted.exchange, {"application/json"}, "token responses must be application/json")


@pytest.mark.requirement("SBS-TOKEN-03")
def test_response_is_not_cached(granted: TokenGrant) -> None:
    expect.header_has_token(
        granted.exchange, "Cache-Control", "no-store", "token responses must carry Cache-Control: no-store"
    )


@pytest.mark.requirement("SBS-TOKEN-03P")
def test_response_has_pragma_no_cache(granted: TokenGrant) -> None:
    expect.header_has_token(granted.exchange, "Pragma", "no-cache", "token responses should carry Pragma: no-cache")


@pytest.mark.requirement("SBS-TOKEN-04")
def test_access_token_is_a_non_empty_string(granted: TokenGrant) -> None:
    value = (granted.body or {}).get("access_token")
    if not isinstance(value, str) or not value:
        expect.fail(
            "access_token is not a non-empty string",
            expected="a non-empty string",
            actual=repr(value),
            exchange=granted.exchange,
        )


@pytest.mark.requirement("SBS-TOKEN-05")
def test_token_type_is_bearer(granted: TokenGrant) -> None:
    value = (granted.body or {}).get("token_type")
    if not isinstance(value, str) or value.lower() != "bearer":
        expect.fail(
            "token_type is not bearer",
            expected='"Bearer" (any case)',
            actual=repr(value),
            exchange=granted.exchange,
        )
    note("token_type", value)


@pytest.mark.requirement("SBS-TOKEN-06")
def test_expires_in_is_a_positive_number(granted: TokenGrant) -> None:
    value = granted.expires_in
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        expect.fail(
            "expires_in is not a positive number",
            expected="a JSON number > 0",
            actual=repr(value),
            exchange=granted.exchange,
        )
    note("expires_in", value)


@pytest.mark.requirement("SBS-TOKEN-06L")
def test_expires_in_is_at_most_five_minutes(granted: TokenGrant) -> None:
    value = granted.expires_in
    expect.precondition(isinstance(value, int | float) and not isinstance(value, bool), "expires_in is not a number")
    note("expires_in", value)
    if value > 300:
        expect.fail(
            "access tokens live longer than the recommended five minutes",
            expected="expires_in ≤ 300",
            actual=f"expires_in {value}",
            exchange=granted.exchange,
        )


@pytest.mark.requirement("SBS-TOKEN-07")
def test_scope_is_returned_within_request(granted: TokenGrant, target: Target) -> None:
    scope = granted.scope
    if scope is None:
        expect.fail(
            "the token response does not state the granted scope",
            expected="a scope string",
            actual="absent",
            exchange=granted.exchange,
        )
    note("granted scope", scope)
    extra = beyond(split_scopes(scope), target.config.scopes)
    if extra:
        expect.fail(
            "the granted scope goes beyond what was requested",
            expected=f"within {target.config.scope}",
            actual=f"also granted {' '.join(extra)}",
            exchange=granted.exchange,
            requirement="SBS-SCOPE-02W",
        )
    note("granted scope", scope)


@pytest.mark.requirement("SBS-TOKEN-08")
def test_no_refresh_token(granted: TokenGrant) -> None:
    expect.no_member(
        granted.exchange,
        "refresh_token",
        "a refresh_token was issued for client_credentials",
        expected="no refresh_token",
    )


@pytest.fixture(scope="module")
def granted_read(read_protected: ReadWith, granted: TokenGrant, protected_read: ProtectedRead) -> Exchange:
    expect.precondition(granted.access_token, "the token response holds no usable access_token")
    return read_protected(f"Bearer {granted.access_token}", f"{protected_read.path} with the granted token")


@pytest.mark.requirement("SBS-TOKEN-09")
def test_token_reads_the_configured_read(granted_read: Exchange, protected_read: ProtectedRead) -> None:
    expect.configured_read(
        granted_read, protected_read, f"the access token does not read {protected_read.path}, within its scope"
    )


FRESH_JTI_PAIR, UNKNOWN_PARAMETER = "fresh-jti-pair", "unknown-parameter"


@pytest.fixture(scope="module")
def beside(
    target: Target,
    token_url: str,
    client_id: str,
    signing_key: ClientKey,
    access_grant: TokenGrant,
    send_ahead: SendAhead,
) -> Callable[[str], list[Exchange]]:
    """The module's other token requests, independent of each other, side by side (after one token worked): two
    assertions in a row with fresh jti values (in order, one job), and one with an unknown parameter."""

    def token(purpose: str, **options: Any) -> Exchange:
        return oauth.request_token(
            target.http,
            token_url,
            signing_key,
            client_id=client_id,
            scope=target.config.scope,
            purpose=purpose,
            **options,
        )

    def send(what: str) -> list[Exchange]:
        if what == FRESH_JTI_PAIR:
            prefix = f"conformance-{uuid.uuid4().hex[:12]}-"  # distinct jti values that share a long prefix
            return [
                token(f"token request {n} with a fresh jti", claims={"jti": prefix + uuid.uuid4().hex}) for n in (1, 2)
            ]
        assert what == UNKNOWN_PARAMETER
        return [token("token request with an unknown parameter", extra=[("foo", "bar")])]

    return send_ahead(send, name="beside")


@pytest.fixture(scope="module")
def unauthenticated_read(
    read_protected: ReadWith, authorized_read: Exchange, protected_read: ProtectedRead
) -> Exchange:
    return read_protected(None, f"{protected_read.path} without a token")


@pytest.mark.requirement("SBS-BEARER-01")
def test_fhir_request_without_token_gets_401(unauthenticated_read: Exchange) -> None:
    status = expect.status(unauthenticated_read, {401, 400, 403}, "a FHIR read without a token must be refused")
    expect.bearer_challenge(unauthenticated_read, "a FHIR read without a token")
    note("status", status)
    if status != 401:
        raise SpecWarning(
            "a FHIR read without a token was refused, but not with 401",
            expected="401 with WWW-Authenticate: Bearer",
            actual=expect.describe(unauthenticated_read, 120),
            exchange=unauthenticated_read,
        )


@pytest.fixture(scope="module")
def fresh_jti_pair(beside: Callable[[str], list[Exchange]]) -> list[Exchange]:
    """Two assertions in a row with distinct jti values that share a long prefix (after one token worked)."""
    return beside(FRESH_JTI_PAIR)


@pytest.mark.requirement("SBS-TOKEN-13")
@pytest.mark.asks(FRESH_JTI_PAIR, of="beside")
def test_consecutive_assertions_with_fresh_jti_are_accepted(fresh_jti_pair: list[Exchange]) -> None:
    for exchange in fresh_jti_pair:
        expect.status(exchange, {200}, "each assertion with a new jti must be accepted (no false replay)")


@pytest.fixture(scope="module")
def extra_parameter_exchange(beside: Callable[[str], list[Exchange]]) -> Exchange:
    return beside(UNKNOWN_PARAMETER)[0]


@pytest.mark.requirement("SBS-TOKEN-14")
@pytest.mark.asks(UNKNOWN_PARAMETER, of="beside")
def test_unknown_parameters_are_ignored(extra_parameter_exchange: Exchange) -> None:
    expect.status(extra_parameter_exchange, {200}, "an unknown request parameter must be ignored")
