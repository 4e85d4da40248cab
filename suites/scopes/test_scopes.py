"""Scope handling: what is granted, how it is stated, and whether the FHIR API enforces it.

Narrowing a request and refusing it with invalid_scope both conform; the
checks accept either and record which the server chose. They fail only when
a token could reach beyond what the client asked for and was allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conformance.checking import expect
from conformance.core.config import ProtectedRead
from conformance.core.outcomes import SpecWarning, note
from conformance.core.recording import Exchange
from conformance.core.redaction import derived_secret
from conformance.crypto.jose import ClientKey
from conformance.flows import oauth
from conformance.flows.expiry import read_until_refused
from conformance.flows.oauth import TokenGrant
from conformance.flows.scopes import beyond, is_v2, parse_scope, permits, split_scopes
from conformance.flows.target import Target
from conformance.runner.sending_ahead import SendAhead
from suites.conftest import ExpiryProbe, ReadWith, expect_refused_by_the_deadline

V1_PATIENT, V2_PATIENT, WILDCARD = "system/Patient.read", "system/Patient.rs", "system/*.read"
UNKNOWN_TYPE = "system/NotAResource.read"
COMMA_SEPARATED = "system/Patient.read,system/Observation.read"
UNKNOWN_PLAIN_SCOPE = "conformance-unknown-scope"
"""A scope string no server defines (not a SMART scope at all)."""


@pytest.fixture(scope="module")
def request_scope(
    target: Target,
    token_url: str,
    client_id: str,
    signing_key: ClientKey,
    access_grant: TokenGrant,
    send_ahead: SendAhead,
) -> Callable[[str | None], TokenGrant]:
    """Ask for a scope once per distinct value (None: no scope parameter) and keep the answer. The scopes that
    checks ask unconditionally (`asks`) go side by side: independent token requests, each with a fresh jti;
    those asked only when the server advertises something are sent when asked."""

    def ask(scope: str | None) -> TokenGrant:
        exchange = oauth.request_token(
            target.http,
            token_url,
            signing_key,
            client_id=client_id,
            scope=scope,
            purpose=f"token request for scope {scope!r}" if scope is not None else "token request without scope",
        )
        return TokenGrant.of(exchange)

    return send_ahead(ask)


def _granted_or_refused(grant: TokenGrant, what: str) -> list[str] | None:
    """Granted scopes on 200, None on an invalid_scope refusal; fails on anything else."""
    exchange = expect.answered(grant.exchange)
    if exchange.status == 200:
        if grant.scope is None:
            expect.fail(
                f"the grant for {what} does not state its scope",
                expected="a scope member",
                actual="absent",
                exchange=exchange,
            )
        return split_scopes(grant.scope)
    expect.status(exchange, {400}, f"a refusal of {what} must be HTTP 400")
    error = (exchange.json_object() or {}).get("error")
    if error != "invalid_scope":
        expect.fail(
            f"a refusal of {what} must say invalid_scope",
            expected="invalid_scope",
            actual=repr(error),
            exchange=exchange,
        )
    return None


def _no_more_than_the_client_may_have(granted: list[str], target: Target, grant: TokenGrant, what: str) -> None:
    """The unauthorized scope granted fails (SHALL: the grant stays within the pre-authorization); anything
    else beyond the configured scopes may be the client's default pre-authorization, so it warns."""
    unauthorized = target.config.unauthorized_scope
    wildcard = [s for s in granted if (parsed := parse_scope(s)) is not None and parsed.resource == "*"]
    if unauthorized in granted or wildcard:
        expect.fail(
            f"{what} was answered with a scope the client may not have",
            expected=f"no {unauthorized} (and no wildcard) in the grant",
            actual=f"granted {' '.join(granted)}",
            exchange=grant.exchange,
        )
    outside = beyond(granted, target.config.scopes)
    if outside:
        expect.fail(
            f"{what} was answered with more than the configured scopes",
            expected=f"within {target.config.scope}",
            actual=f"also {' '.join(outside)}",
            exchange=grant.exchange,
            requirement="SBS-SCOPE-02W",
        )


def _within(granted: list[str], requested: list[str]) -> list[str]:
    """Granted scopes that no requested scope covers (an exact echo always counts as covered)."""
    return beyond(granted, requested)


@pytest.mark.requirement("SBS-SCOPE-02")
def test_granted_scope_is_stated_and_within_request(access_grant: TokenGrant, target: Target) -> None:
    granted = _granted_or_refused(access_grant, "the configured scopes")
    assert granted is not None
    beyond = _within(granted, target.config.scopes)
    note("granted scope", " ".join(granted))
    if beyond:
        expect.fail(
            "the token grants scopes that were not requested",
            expected=f"within {target.config.scope}",
            actual=f"also {' '.join(beyond)}",
            exchange=access_grant.exchange,
            requirement="SBS-SCOPE-02W",
        )


@pytest.mark.requirement("SBS-SCOPE-01")
def test_unauthorized_scope_is_never_granted(request_scope: Callable[[str | None], TokenGrant], target: Target) -> None:
    unauthorized = target.config.unauthorized_scope
    requested = [*target.config.scopes, unauthorized]
    grant = request_scope(" ".join(requested))
    granted = _granted_or_refused(grant, f"a request including {unauthorized}")
    if granted is None:
        note("server chose", "invalid_scope for the whole request")
        return
    if unauthorized in granted or _within(granted, target.config.scopes):
        expect.fail(
            "a scope the client is not authorized for was granted",
            expected=f"no {unauthorized} (narrowing) or invalid_scope",
            actual=f"granted {' '.join(granted)}",
            exchange=grant.exchange,
        )
    note("server chose", f"narrowing to {' '.join(granted)}")


@pytest.mark.requirement("SBS-SCOPE-06")
@pytest.mark.asks(f"{V1_PATIENT} {UNKNOWN_TYPE}")
def test_unknown_resource_scope_is_dropped_or_refused(request_scope: Callable[[str | None], TokenGrant]) -> None:
    grant = request_scope(f"{V1_PATIENT} {UNKNOWN_TYPE}")
    granted = _granted_or_refused(grant, f"a request including {UNKNOWN_TYPE}")
    if granted is None:
        note("server chose", "invalid_scope")
        return
    if UNKNOWN_TYPE in granted:
        expect.fail(
            "a scope for a resource type that does not exist was granted",
            expected=f"{UNKNOWN_TYPE} dropped, or invalid_scope",
            actual=f"granted {' '.join(granted)}",
            exchange=grant.exchange,
        )
    note("server chose", "dropping the unknown scope")


@pytest.mark.requirement("SBS-SCOPE-08")
@pytest.mark.asks(COMMA_SEPARATED)
def test_comma_separated_scope_grant_is_stated(
    request_scope: Callable[[str | None], TokenGrant], target: Target
) -> None:
    """RFC 6749 §3.3 lets the server choose what it grants for an odd scope string, as long as it says so."""
    grant = request_scope(COMMA_SEPARATED)
    granted = _granted_or_refused(grant, "a comma-separated scope list")
    if granted is not None:
        _no_more_than_the_client_may_have(granted, target, grant, "a comma-separated scope string")
    note("server chose", "invalid_scope" if granted is None else f"granting {' '.join(granted) or 'nothing'}")


@pytest.mark.requirement("SBS-SCOPE-15")
@pytest.mark.asks(UNKNOWN_PLAIN_SCOPE)
def test_plain_unknown_scope_is_dropped_or_refused(
    request_scope: Callable[[str | None], TokenGrant], target: Target
) -> None:
    grant = request_scope(UNKNOWN_PLAIN_SCOPE)
    granted = _granted_or_refused(grant, f"the unknown scope {UNKNOWN_PLAIN_SCOPE}")
    if granted is not None and UNKNOWN_PLAIN_SCOPE in granted:
        expect.fail(
            "a scope the server does not know was granted",
            expected=f"{UNKNOWN_PLAIN_SCOPE} dropped (with the granted scope stated) or invalid_scope",
            actual=f"granted {' '.join(granted)}",
            exchange=grant.exchange,
        )
    if granted is not None:
        _no_more_than_the_client_may_have(granted, target, grant, f"the unknown scope {UNKNOWN_PLAIN_SCOPE}")
    note("server chose", "invalid_scope" if granted is None else f"granting {' '.join(granted) or 'nothing'}")


def _advertised(smart_config: dict[str, Any], capability: str, scope_filter: Callable[[str], bool]) -> bool:
    capabilities = expect.items(smart_config.get("capabilities"))
    scopes = expect.items(smart_config.get("scopes_supported"))
    return capability in capabilities or any(isinstance(s, str) and scope_filter(s) for s in scopes)


@pytest.mark.requirement("SBS-SCOPE-04")
def test_v1_scope_works_and_comes_back_in_v1_form(
    request_scope: Callable[[str | None], TokenGrant], smart_config: dict[str, Any]
) -> None:
    expect.applicable(
        _advertised(smart_config, "permission-v1", lambda s: parse_scope(s) is not None and not is_v2(s)),
        "the server advertises no SMART v1 scopes",
    )
    grant = request_scope(V1_PATIENT)
    expect.status(grant.exchange, {200}, f"{V1_PATIENT} must be granted when v1 scopes are advertised")
    if V1_PATIENT not in split_scopes(grant.scope):
        expect.fail(
            "a v1 scope did not come back in v1 form",
            expected=f"scope {V1_PATIENT}",
            actual=f"scope {grant.scope!r}",
            exchange=grant.exchange,
        )


@pytest.mark.requirement("SBS-SCOPE-03")
def test_v2_scope_works(
    request_scope: Callable[[str | None], TokenGrant], smart_config: dict[str, Any], target: Target
) -> None:
    expect.applicable(_advertised(smart_config, "permission-v2", is_v2), "the server advertises no SMART v2 scopes")
    # The server advertising v2 says nothing about what this client may have: the v2 scope must be configured.
    expect.applicable(
        target.config.v2_scopes, "no SMART v2 scope the client is authorized for is configured (auth.v2_scopes)"
    )
    wanted = target.config.v2_scopes[0]
    grant = request_scope(wanted)
    expect.status(grant.exchange, {200}, f"{wanted} must be granted when v2 scopes are advertised")
    granted = split_scopes(grant.scope)
    if not granted or _within(granted, [wanted]):
        expect.fail(
            "the v2 grant is not stated within the request",
            expected=f"scope {wanted}",
            actual=repr(grant.scope),
            exchange=grant.exchange,
        )


@pytest.mark.requirement("SBS-SCOPE-13")
def test_advertised_wildcard_scope_works(
    request_scope: Callable[[str | None], TokenGrant], smart_config: dict[str, Any]
) -> None:
    expect.applicable(
        WILDCARD in expect.items(smart_config.get("scopes_supported")), f"{WILDCARD} is not in scopes_supported"
    )
    grant = request_scope(WILDCARD)
    expect.status(grant.exchange, {200}, f"{WILDCARD} is advertised, so it must be granted")
    granted = split_scopes(grant.scope)
    if not granted or _within(granted, [WILDCARD]):
        expect.fail(
            "the wildcard grant does not state a scope within the request",
            expected=f"{WILDCARD} or resource scopes it covers",
            actual=repr(grant.scope),
            exchange=grant.exchange,
        )
    note("granted for wildcard", grant.scope)


@pytest.mark.requirement("SBS-SCOPE-07")
@pytest.mark.asks(None)
def test_missing_scope_is_refused_or_default_is_stated(request_scope: Callable[[str | None], TokenGrant]) -> None:
    grant = request_scope(None)
    exchange = expect.answered(grant.exchange)
    if exchange.status == 200:
        if not grant.scope:
            expect.fail(
                "a default grant without a stated scope", expected="scope stated", actual="absent", exchange=exchange
            )
        raise SpecWarning(
            "a request without scope was granted a default scope (SMART requires the scope parameter)",
            expected="400 invalid_request or invalid_scope",
            actual=f"granted {grant.scope}",
            exchange=exchange,
        )
    expect.status(exchange, {400}, "a request without scope must be refused with 400 (or granted a stated default)")
    error = (exchange.json_object() or {}).get("error")
    if error not in ("invalid_request", "invalid_scope"):
        expect.fail(
            "wrong error code for a missing scope",
            expected="invalid_request or invalid_scope",
            actual=repr(error),
            exchange=exchange,
        )
    note("error code", error)


@pytest.mark.requirement("SBS-SCOPE-11")
@pytest.mark.asks(f"{V1_PATIENT} offline_access")
def test_offline_access_gives_no_refresh_token(request_scope: Callable[[str | None], TokenGrant]) -> None:
    grant = request_scope(f"{V1_PATIENT} offline_access")
    expect.no_member(
        expect.answered(grant.exchange),
        "refresh_token",
        "offline_access produced a refresh token for a backend client",
        expected="no refresh_token (offline_access dropped or refused)",
    )


def _type_token(request_scope: Callable[[str | None], TokenGrant], resource_type: str) -> TokenGrant:
    """A token for one resource type: SMART v1 read scope first, the v2 form when v1 is refused."""
    grant = request_scope(f"system/{resource_type}.read")
    if not grant.access_token:
        grant = request_scope(f"system/{resource_type}.rs")
    return grant


@pytest.fixture(scope="module")
def scoped_type(protected_read: ProtectedRead) -> str:
    """The resource type of the configured read: the scope checks ask for tokens that do or do not cover it."""
    expect.precondition(
        protected_read.resource_type,
        f"the configured read {protected_read.path} names no resource type (set target.reads to a typed read)",
    )
    assert protected_read.resource_type is not None
    return protected_read.resource_type


@pytest.fixture(scope="module")
def type_only_token(request_scope: Callable[[str | None], TokenGrant], scoped_type: str) -> str:
    grant = _type_token(request_scope, scoped_type)
    expect.precondition(grant.access_token, f"no token for system/{scoped_type}.read could be obtained")
    assert grant.access_token is not None
    return grant.access_token


@pytest.fixture(scope="module")
def out_of_scope_read(
    request_scope: Callable[[str | None], TokenGrant],
    read_protected: ReadWith,
    existing_read: Exchange,
    protected_read: ProtectedRead,
    scoped_type: str,
) -> Exchange:
    """The configured read with a token for another resource type only."""
    other = "Observation" if scoped_type != "Observation" else "Patient"
    grant = _type_token(request_scope, other)
    expect.precondition(grant.access_token, f"no token for system/{other}.read could be obtained")
    expect.precondition(
        not any(permits(grant.scope or "", scoped_type, perm) for perm in "rs"),
        f"the token asked for system/{other}.read was granted a scope covering {scoped_type} ({grant.scope})",
    )
    return read_protected(f"Bearer {grant.access_token}", f"{protected_read.path} with a token for {other} only")


@pytest.mark.requirement("SBS-TOKEN-09")
def test_type_scoped_token_reads_the_configured_read(
    read_protected: ReadWith, existing_read: Exchange, type_only_token: str, protected_read: ProtectedRead
) -> None:
    exchange = read_protected(f"Bearer {type_only_token}", f"{protected_read.path} with a token for its type only")
    expect.configured_read(
        exchange, protected_read, f"a token scoped to its resource type does not read {protected_read.path}"
    )


@pytest.mark.requirement("SBS-SCOPE-14")
def test_token_without_the_type_scope_is_refused(out_of_scope_read: Exchange, scoped_type: str) -> None:
    status = expect.answered(out_of_scope_read).status
    body = out_of_scope_read.json_object() or {}
    entries = [e for e in expect.objects(body.get("entry")) if isinstance(e.get("resource"), dict)]
    if (
        status == 200
        and body.get("resourceType") == "Bundle"
        and not any(e["resource"].get("resourceType") == scoped_type for e in entries)
    ):
        note("server chose", f"an answer without {scoped_type} resources (the search was narrowed to the scope)")
        return
    if status is not None and 200 <= status < 300:
        expect.fail(
            f"a token without {scoped_type} scope read {scoped_type} data",
            expected="403 (or 401 insufficient_scope, or 404)",
            actual=expect.describe(out_of_scope_read),
            exchange=out_of_scope_read,
        )
    challenge = out_of_scope_read.response_header("www-authenticate") or ""
    expect.status(out_of_scope_read, {401, 403, 404}, "an out-of-scope read must be refused")
    note("status", status)
    if status == 401:
        # Refusing is the resource server's SHALL (checked above); the refusal's shape is RFC 6750's SHOULD.
        expect.fail(
            "an out-of-scope read is refused with 401, not 403",
            expected='403 with WWW-Authenticate: Bearer error="insufficient_scope"',
            actual=f"401, WWW-Authenticate: {challenge or '(none)'}",
            exchange=out_of_scope_read,
            requirement="SBS-SCOPE-14S",
        )


def _bad_token_read(read_protected: ReadWith, authorized_read: Exchange, token: str, what: str) -> Exchange:
    """The configured read with a bad token; `authorized_read` first proves there is something to protect."""
    return read_protected(f"Bearer {token}", f"read with {what}")


def _expect_invalid_token(exchange: Exchange, what: str) -> None:
    """Refusing the token and sending a Bearer challenge are SHALL; RFC 6750 §3.1 makes the 401 itself a SHOULD."""
    status = expect.answered(exchange).status or 0
    expect.no_server_error(exchange, f"a request with {what}")
    if not 400 <= status < 500:
        expect.fail(
            f"a request with {what} was not refused",
            expected="401 (a refusal)",
            actual=expect.describe(exchange),
            exchange=exchange,
        )
    expect.bearer_challenge(exchange, f"a request with {what}")
    note("status", status)
    if status != 401:
        expect.fail(
            f"a request with {what} got {status}, not 401",
            expected="401 (RFC 6750 §3.1: invalid_token SHOULD be 401)",
            actual=expect.describe(exchange, 120),
            exchange=exchange,
            requirement="SBS-BEARER-401",
        )


GARBAGE, TAMPERED = "garbage-token", "tampered-token"


@pytest.fixture(scope="module")
def bad_token_reads(
    read_protected: ReadWith, authorized_read: Exchange, access_token: str, send_ahead: SendAhead
) -> Callable[[str], Exchange]:
    """The configured read with a garbage token and with a tampered one: independent reads, side by side, once
    `authorized_read` has proved there is something to protect."""

    def read(what: str) -> Exchange:
        if what == GARBAGE:
            return read_protected("Bearer not-a-token-0123456789", "read with a garbage token")
        assert what == TAMPERED
        middle = len(access_token) // 2
        flipped = "A" if access_token[middle] != "A" else "B"
        tampered = derived_secret(access_token[:middle] + flipped + access_token[middle + 1 :])
        return read_protected(f"Bearer {tampered}", "read with a tampered token")

    return send_ahead(read, name="bad-token")


@pytest.fixture(scope="module")
def garbage_token_read(bad_token_reads: Callable[[str], Exchange]) -> Exchange:
    return bad_token_reads(GARBAGE)


@pytest.mark.requirement("SBS-BEARER-02")
@pytest.mark.asks(GARBAGE, of="bad-token")
def test_garbage_token_gets_401(garbage_token_read: Exchange) -> None:
    _expect_invalid_token(garbage_token_read, "a garbage token")


@pytest.mark.requirement("SBS-BEARER-02E")
def test_invalid_token_challenge_names_the_error(garbage_token_read: Exchange) -> None:
    expect.precondition(garbage_token_read.status == 401, "the garbage token did not get 401")
    challenge = garbage_token_read.response_header("www-authenticate") or ""
    if 'error="invalid_token"' not in challenge.replace(" ", ""):
        expect.fail(
            "the challenge does not say invalid_token",
            expected='WWW-Authenticate: Bearer error="invalid_token"',
            actual=challenge or "(absent)",
            exchange=garbage_token_read,
        )


@pytest.mark.requirement("SBS-BEARER-02")
@pytest.mark.asks(TAMPERED, of="bad-token")
def test_tampered_token_gets_401(bad_token_reads: Callable[[str], Exchange]) -> None:
    _expect_invalid_token(bad_token_reads(TAMPERED), "a tampered token")


@pytest.mark.late
@pytest.mark.requirement("SBS-BEARER-03")
def test_expired_token_gets_401(
    expiry_probe: ExpiryProbe, target: Target, read_protected: ReadWith, authorized_read: Exchange
) -> None:
    expect.applicable(expiry_probe.grant, expiry_probe.reason)
    assert expiry_probe.grant is not None
    grant = expiry_probe.grant
    expect.answered(grant.exchange)
    expect.precondition(
        grant.access_token, f"the short-lived client got no token ({expect.describe(grant.exchange, 120)})"
    )
    lifetime = grant.expires_in
    expect.precondition(
        isinstance(lifetime, int | float) and lifetime <= target.config.expiry_wait,
        f"its token lives {lifetime} s, longer than checks.expiry_wait ({target.config.expiry_wait:g} s)",
    )
    token = grant.access_token
    assert token is not None
    ends_at = expiry_probe.obtained_at + float(lifetime)
    after = read_until_refused(
        lambda: _bad_token_read(read_protected, authorized_read, token, "an expired token"),
        ends_at,
        deadline=expiry_probe.obtained_at + target.config.expiry_wait,
    )
    note(*after.what_the_server_did())
    expect_refused_by_the_deadline(
        after, f"an expired token still works {after.seconds_past_the_end:.1f} s past expires_in", "a refusal (401)"
    )
    _expect_invalid_token(after.last, f"an expired token ({after.seconds_past_the_end:.1f} s past expires_in)")


@pytest.mark.requirement("SBS-BEARER-07")
def test_lowercase_bearer_scheme_is_accepted(
    read_protected: ReadWith, existing_read: Exchange, access_token: str
) -> None:
    exchange = read_protected(f"bearer {access_token}", "read with the scheme written 'bearer'")
    expect.status(exchange, set(range(200, 300)), "the Bearer scheme name is case-insensitive")
    note("status", exchange.status)
