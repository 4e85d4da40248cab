"""RFC 7591 dynamic registration of a SMART backend client: register with a JWKS, then authenticate with it.

Only for servers whose smart-configuration advertises `registration_endpoint`;
elsewhere (registration out of band is fine for SMART) every check is not
applicable. The valid registration is sent once and read by every check about
it; it carries no `redirect_uris`, as a client_credentials client has none.
Each bad registration is sent once too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.checking import expect
from conformance.core.outcomes import note
from conformance.core.recording import Exchange
from conformance.crypto.jose import ClientKey, generate_rsa
from conformance.flows import discovery, oauth
from conformance.flows import registration as dcr
from conformance.flows.target import Target
from conformance.runner.sending_ahead import SendAhead

METADATA_ERROR = "invalid_client_metadata"


@pytest.fixture(scope="module")
def registration_endpoint(target: Target, smart_config: dict[str, Any]) -> str:
    """The advertised registration URL; without one, registration is out of band and nothing here applies."""
    advertised = smart_config.get("registration_endpoint")
    expect.applicable(advertised is not None, "smart-configuration does not advertise registration_endpoint")
    url = discovery.resolve(target.base_url, advertised) if isinstance(advertised, str) else None
    expect.precondition(url, f"registration_endpoint {advertised!r} is not a usable URL")
    assert url is not None
    return url


@pytest.fixture(scope="module")
def registration_key(target: Target, registration_endpoint: str) -> ClientKey:
    """A fresh key for the registered client; the redactor learns its private parts before any request."""
    key = generate_rsa()
    for secret in key.secret_strings():
        target.redactor.add_secret(secret)
    return key


@pytest.fixture(scope="module")
def backend_registration(target: Target, registration_endpoint: str, registration_key: ClientKey) -> dcr.Registration:
    """The one valid registration: client_credentials, private_key_jwt, the key's public JWKS, no redirect_uris."""
    metadata = dcr.backend_client_metadata(registration_key, scope=target.config.scope)
    exchange = dcr.register(
        target.http, registration_endpoint, metadata, purpose="register a backend client with a JWKS (RFC 7591)"
    )
    return dcr.Registration(exchange, metadata, registration_key)


@pytest.fixture(scope="module")
def registered(backend_registration: dcr.Registration) -> dict[str, Any]:
    """The registration response body, for checks that only make sense once the server registered the client."""
    exchange = expect.answered(backend_registration.exchange)
    body = backend_registration.body
    expect.precondition(
        backend_registration.registered and body is not None,
        f"the backend client was not registered ({expect.describe(exchange, 160)})",
    )
    assert body is not None
    return body


def _open_registration(exchange: Exchange) -> None:
    """RFC 7591 §3 lets a server require an initial access token, and §2 lets it refuse metadata by policy:
    neither is a defect, so the checks that need an open registration are not applicable or skipped then."""
    challenge = (exchange.response_header("www-authenticate") or "").lower()
    expect.applicable(
        not (exchange.status in (401, 403) and challenge.startswith("bearer")),
        "registration needs an initial access token (RFC 7591 §3); none is configured",
    )
    expect.precondition(
        not (exchange.status == 400 and _mentions_redirect_uris(exchange)),
        "the server demands redirect_uris of a client_credentials client; see test_redirect_uris_are_not_required",
    )


@pytest.mark.requirement("SBS-REG-02")
def test_valid_registration_gets_201_and_a_client_id(backend_registration: dcr.Registration) -> None:
    exchange = backend_registration.exchange
    expect.no_server_error(exchange, "a valid backend-client registration")
    _open_registration(expect.answered(exchange))
    expect.status(exchange, {201}, "a valid registration must be answered 201 Created")
    body = expect.json_object(exchange, "the registration response must be a JSON object")
    if backend_registration.client_id is None:
        expect.fail(
            "no client_id was issued",
            expected="a non-empty client_id string",
            actual=f"client_id {body.get('client_id')!r}",
            exchange=exchange,
        )
    note("client_id_issued_at", body.get("client_id_issued_at", "absent"))


@pytest.mark.requirement("SBS-REG-02M")
def test_registered_metadata_is_returned(backend_registration: dcr.Registration, registered: dict[str, Any]) -> None:
    sent = backend_registration.metadata
    problems = [
        f"{name} {registered.get(name, '(absent)')!r}"
        for name in ("grant_types", "token_endpoint_auth_method")
        if registered.get(name) != sent[name]
    ]
    if problems:
        expect.fail(
            "the response does not return the registered metadata",
            expected=f"grant_types {sent['grant_types']!r}, token_endpoint_auth_method {sent['token_endpoint_auth_method']!r}",
            actual="; ".join(problems),
            exchange=backend_registration.exchange,
        )
    note("registered scope", registered.get("scope", "not stated"))
    note("keys returned", ", ".join(k for k in ("jwks", "jwks_uri") if k in registered) or "none")


@pytest.fixture(scope="module")
def registered_token(
    request: pytest.FixtureRequest, target: Target, backend_registration: dcr.Registration
) -> Exchange:
    """A token request as the new client, its assertion signed with the registered key."""
    client_id = backend_registration.client_id
    expect.precondition(
        client_id, f"the registration issued no client_id ({expect.describe(backend_registration.exchange, 160)})"
    )
    assert client_id is not None
    token_url: str = request.getfixturevalue("token_url")
    granted = (backend_registration.body or {}).get("scope")
    return oauth.request_token(
        target.http,
        token_url,
        backend_registration.key,
        client_id=client_id,
        scope=granted if isinstance(granted, str) and granted else target.config.scope,
        purpose="token request as the newly registered client, signed with its registered key",
    )


@pytest.mark.requirement("SBS-REG-06")
def test_registered_client_gets_a_token(registered_token: Exchange) -> None:
    expect.no_server_error(registered_token, "a token request from a newly registered client")
    expect.status(registered_token, {200}, "the registered client's assertion, signed with its JWKS key, must work")
    grant = oauth.TokenGrant.of(registered_token)
    if grant.access_token is None:
        expect.fail(
            "no access token was issued to the registered client",
            expected="a non-empty access_token",
            actual=expect.describe(registered_token, 160),
            exchange=registered_token,
        )
    note("granted scope", grant.scope)


@dataclass(frozen=True)
class BadMetadata:
    """One unacceptable change to the valid metadata."""

    id: str
    what: str
    overrides: dict[str, Any]
    member: str = ""
    """The member a server may replace instead of refusing (RFC 7591 §2); empty: it must refuse."""

    @property
    def substitutable(self) -> bool:
        return bool(self.member)


BAD_METADATA = [
    BadMetadata(
        "unknown-auth-method",
        "an unknown token_endpoint_auth_method",
        {"token_endpoint_auth_method": "no-such-method"},
        "token_endpoint_auth_method",
    ),
    BadMetadata("unknown-grant-type", "an unknown grant type", {"grant_types": ["no_such_grant"]}, "grant_types"),
    BadMetadata(
        "jwks-and-jwks-uri",
        "both jwks and jwks_uri (RFC 7591 §2: MUST NOT both be present)",
        {"jwks_uri": "https://client.example.org/.well-known/jwks.json"},
    ),
]


@pytest.fixture(scope="module")
def bad_registrations(
    target: Target, registration_endpoint: str, registration_key: ClientKey, send_ahead: SendAhead
) -> Callable[[BadMetadata], Exchange]:
    """Each bad registration, sent once (side by side: a wrongly accepted one only adds a client)."""

    def register(case: BadMetadata) -> Exchange:
        metadata = dcr.backend_client_metadata(registration_key, scope=target.config.scope, **case.overrides)
        return dcr.register(target.http, registration_endpoint, metadata, purpose=f"register with {case.what}")

    return send_ahead(register)


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in BAD_METADATA])
@pytest.mark.requirement("SBS-REG-04")
def test_bad_metadata_is_refused(case: BadMetadata, bad_registrations: Callable[[BadMetadata], Exchange]) -> None:
    exchange = bad_registrations(case)
    expect.no_server_error(exchange, f"a registration with {case.what}")
    _open_registration(expect.answered(exchange))
    if exchange.status == 201 and case.substitutable:
        # RFC 7591 §2: the server may reject or replace metadata; a replacement is fine if the bad value is gone.
        registered = (exchange.json_object() or {}).get(case.member)
        if registered == case.overrides[case.member]:
            expect.fail(
                f"a registration with {case.what} was registered as sent",
                expected=f"400 {METADATA_ERROR}, or the value replaced",
                actual=f"201 with {case.member} {registered!r}",
                exchange=exchange,
            )
        note("server chose", f"replacing {case.member} with {registered!r}")
        return
    expect.status(exchange, {400}, f"a registration with {case.what} must be refused with HTTP 400")
    body = expect.json_object(exchange, "a registration error must be a JSON object")
    error = body.get("error")
    if error != METADATA_ERROR:
        expect.fail(
            f"wrong error code for {case.what}",
            expected=METADATA_ERROR,
            actual=repr(error),
            exchange=exchange,
        )
    note("error code", error)


def _mentions_redirect_uris(exchange: Exchange) -> bool:
    """Whether a refusal blames redirect URIs (invalid_redirect_uri, or redirect_uris in its description)."""
    body = exchange.json_object()
    text = " ".join(str(body.get(k, "")) for k in ("error", "error_description")) if body else exchange.text
    return "redirect_uri" in text.lower()


@pytest.mark.requirement("SBS-REG-07")
def test_redirect_uris_are_not_required(backend_registration: dcr.Registration) -> None:
    exchange = expect.answered(backend_registration.exchange)
    if backend_registration.registered:
        note("registered without redirect_uris", "yes")
        return
    if _mentions_redirect_uris(exchange):
        expect.fail(
            "the server demands redirect_uris from a client_credentials client",
            expected="registration without redirect_uris: RFC 7591 §2 makes redirect_uris required only for "
            "redirect-based flows (authorization code, implicit), and client_credentials has no redirect",
            actual=expect.describe(exchange, 200),
            exchange=exchange,
        )
    expect.precondition(False, f"the registration was refused for another reason ({expect.describe(exchange, 160)})")
